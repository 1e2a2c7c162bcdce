"""Cross-identity benchmark of chapter 6: what a user gets — someone else's WHOLE photo, animated.

    .venv/bin/python benchmarks/cross_benchmark.py [--portraits DIR_OR_FILE ...]
        [--videos DIR_OR_FILE ...] [--frames N] [--methods m1,m2] [--json PATH]

Every portrait is driven by every clip (default: the bundled portrait and the bundled clip) with
:class:`didlearn.animate.Animator`: relative mode, pasted back into the whole photo, every method
side by side in one run on the same target landmarks. The whole output frames are scored by
:class:`didlearn.protocol.CrossIdentityScorer` (detail kept, frame 0 vs the photo, identity,
motion carried out, jitter, face-likeness: see :mod:`didlearn.protocol`), and ``fps`` is end to
end: decoded driving frames -> finished whole frames (decoding, tracking, transfer, rendering,
paste-back; one warm-up batch first, scoring not counted).

``--json PATH`` writes ``{"mean": {METHOD: {...}}, "pairs": {"PORTRAIT|VIDEO": {METHOD: {...}}}}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import (  # noqa: E402
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    add_methods_argument,
    keep_validation_clips,
    load_model_or_skip,
    media_files,
    parse_methods,
)
from results_file import write_json  # noqa: E402

from didlearn import data, faces, protocol  # noqa: E402


def benchmark(
    portraits: list[Path],
    videos: list[Path],
    methods: list[str],
    frames,
    weights: Path | None = None,
) -> dict:
    methods, models = load_model_or_skip(methods, weights)
    photos = (
        [(p.stem, data.load_image(p)) for p in portraits]
        if portraits
        else [("astronaut", data.sample_portrait())]
    )
    results: dict = {"mean": {}, "pairs": {}}
    for name, photo in photos:
        landmarks = faces.face_landmarks(photo)
        for video in videos or [data.sample_driving_video()]:
            t0 = time.perf_counter()
            pair = f"{name}|{video.stem}"
            row = {
                m: protocol.cross_identity(photo, video, m, models, frames, landmarks)
                for m in methods
            }
            results["pairs"][pair] = row
            size = f"{photo.shape[1]}x{photo.shape[0]}"
            print(table({pair: row}), f"\n({size}, {time.perf_counter() - t0:.0f} s)\n", flush=True)
    results["mean"] = protocol.mean_over(results["pairs"])
    return results


def table(rows: dict) -> str:
    """Markdown table: one block of rows per pair."""
    return protocol.markdown_table(rows, protocol.CROSS_SCORES, first="pair")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portraits", nargs="*", help="folders or images (default: bundled)")
    parser.add_argument("--videos", nargs="*", help="folders or clips (default: the bundled clip)")
    parser.add_argument("--frames", type=int, default=None, help="driving frames per clip")
    add_methods_argument(parser)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="only the validation clips among --videos (optimize.VALIDATION_CLIPS: no training "
        "run sees their people)",
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    methods = parse_methods(parser, args.methods)
    portraits = media_files(args.portraits, IMAGE_SUFFIXES)
    videos = media_files(args.videos, VIDEO_SUFFIXES)
    if args.validation:
        videos = keep_validation_clips(videos)
    results = benchmark(portraits, videos, methods, args.frames, args.weights)
    print("mean over pairs:")
    print(table({"mean": results["mean"]}))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
