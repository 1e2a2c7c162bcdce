"""What the benchmark scripts share: their inputs (media folders, methods) and the model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from didlearn import animate, renderers
from didlearn.data import IMAGE_SUFFIXES, VIDEO_SUFFIXES  # noqa: F401  (the scripts' media)


def media_files(sources: list[str] | None, suffixes: tuple[str, ...]) -> list[Path]:
    """Files with one of ``suffixes`` in the given folders, or the given files themselves
    (empty when no sources are given; exits when sources give no file)."""
    paths: list[Path] = []
    for s in sources or []:
        p = Path(s)
        paths += (
            sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes) if p.is_dir() else [p]
        )
    if sources and not paths:
        sys.exit(f"error: no files ({', '.join(suffixes)}) in {', '.join(sources)}")
    return paths


def add_methods_argument(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """``--methods``: comma-separated registered renderers (default: all but ``exclude``), and
    ``--weights``: the trained models' folder (default: the shipped weights)."""
    default = [m for m in renderers.renderer_names() if m not in exclude]
    parser.add_argument(
        "--methods",
        default=",".join(default),
        help=f"comma-separated renderers, of {', '.join(renderers.renderer_names())}",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="folder of the trained models' weights (default: the shipped ones), e.g. a "
        "training run's --out",
    )


def keep_validation_clips(paths: list[Path]) -> list[Path]:
    """The clips among ``paths`` that no training run uses (``optimize.VALIDATION_CLIPS``)."""
    from didlearn.optimize.split import split_videos

    return split_videos(paths)[1]


def parse_methods(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """Comma-separated renderer names, checked against the registry (:mod:`didlearn.renderers`)."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    known = renderers.renderer_names()
    unknown = set(methods) - set(known)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(known)}")
    return methods


def needs_models(methods: list[str]) -> bool:
    """Whether any of ``methods`` renders with the trained models."""
    return any(renderers.renderer_entry(m).needs_models for m in methods)


def load_model_or_skip(methods: list[str], weights: Path | None = None) -> tuple[list[str], object]:
    """``(methods, models)``: the models (shipped, or those in the ``weights`` folder) if a method
    needs them, or, when they cannot be loaded, those methods dropped with a note (the other
    methods still run)."""
    if not needs_models(methods):
        return methods, None
    try:
        if weights is not None:
            from didlearn import generator

            return methods, generator.load_models(weights)
        return methods, animate.load_models("model")[1]
    except Exception as err:  # missing weights or module: report, run the rest
        print(f"note: skipping the trained model's renderers ({err})", file=sys.stderr)
        return [m for m in methods if not renderers.renderer_entry(m).needs_models], None
