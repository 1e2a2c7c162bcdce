"""What the benchmark scripts share: their inputs (media folders, methods) and the model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from didlearn import animate

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")


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


def parse_methods(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """Comma-separated renderer names, checked against :data:`didlearn.animate.METHODS`."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = set(methods) - set(animate.METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(animate.METHODS)}")
    return methods


def load_model_or_skip():
    """The shipped models, or None with a note (missing weights: the other methods still run)."""
    try:
        return animate.load_models("model")[1]
    except Exception as err:  # missing weights or module: report, run the rest
        print(f"note: skipping 'model' ({err})", file=sys.stderr)
        return None
