"""Self-reenactment benchmark of chapter 6: classical warps against the trained model.

    .venv/bin/python benchmarks/reenact_benchmark.py [--videos DIR_OR_FILE ...] [--json PATH]
                                                      [--max-frames N] [--methods m1,m2]

Self-reenactment is the one animation task with a ground truth: the first frame of a talking-head
video is the photo, and every later frame is rebuilt from that photo and the frame's own 68
landmarks. The face crop (256x256) is taken once, from the first frame, and every frame is compared
in that crop, so head motion counts. Methods, side by side in one run on the same frames:

* ``still``: the photo itself (no motion at all);
* ``similarity``: the photo moved rigidly by the least-squares similarity ks -> kp_t;
* ``piecewise_affine``: a Delaunay mesh of the landmarks, each triangle warped affinely
  (scikit-image ``PiecewiseAffineTransform``);
* ``thin_plate``: the thin-plate-spline warp of chapter 3;
* ``model``: the trained refiner + generator of chapter 4 (skipped, with a note, if the weights
  are missing).

Metrics per frame, averaged over the frames of a video, then over videos (the "mean" row):
L1 (pixels in [0, 1]), perceptual distance (chapter 1's VGG pyramid), AKD (pixels of the 256 crop:
landmarks found in the output vs those of the true frame), AED (dlib identity embedding of the
output vs the true frame; < 0.6 = same person), fps (frames rendered per second by the method,
landmarks given; tracking is common to all methods and excluded).

``--json PATH`` writes ``{"mean": {METHOD: {"l1", "perceptual", "akd", "aed", "fps"}},
"videos": {NAME: {METHOD: {...}}}}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    VIDEO_SUFFIXES,
    add_methods_argument,
    keep_validation_clips,
    load_model_or_skip,
    media_files,
    parse_methods,
)
from results_file import write_json  # noqa: E402

from didlearn import animate, data, protocol  # noqa: E402
from didlearn.composite import compose_crop  # noqa: E402

SIZE = protocol.REENACT_SIZE


def video_paths(sources: list[str] | None) -> list[Path]:
    """Video files of the given folders/files; default: the bundled clip."""
    return media_files(sources, VIDEO_SUFFIXES) or [data.sample_driving_video()]


def render_timed(render, photo, ks, kps, batch: int = 8) -> tuple[np.ndarray, float]:
    """All crops of one method (its motion composed at the crop's size), and its frames per
    second (after one warm-up batch)."""

    def crops(k):
        return compose_crop(photo, render(photo, ks, k))

    crops(kps[:batch])  # warm-up: tracing, XLA compilation, model loading
    out, t0 = [], time.perf_counter()
    for i in range(0, len(kps), batch):
        out.append(crops(kps[i : i + batch]))
    seconds = time.perf_counter() - t0
    return np.concatenate(out), len(kps) / max(seconds, 1e-9)


def benchmark(
    paths: list[Path],
    methods: list[str],
    max_frames: int | None,
    every: int = 1,
    weights: Path | None = None,
) -> dict:
    methods, models = load_model_or_skip(methods, weights)
    renderers = {m: animate.make_renderer(m, models) for m in methods}
    results: dict = {"mean": {}, "videos": {}}
    for path in paths:
        t0 = time.perf_counter()
        clip = protocol.prepare_self_reenactment(path, max_frames, every, SIZE)
        kps = clip.kps
        refs = protocol.self_reenactment_references(clip.truth, kps)
        row = {}
        for m, render in renderers.items():
            outputs, fps = render_timed(render, clip.photo, clip.ks, kps)
            row[m] = {**protocol.score_self_reenactment(outputs, clip.truth, refs), "fps": fps}
        results["videos"][path.stem] = row
        print(table({path.stem: row}), f"\n({len(kps)} frames, {time.perf_counter() - t0:.0f} s)\n")
    results["mean"] = protocol.mean_over(results["videos"])
    return results


def table(rows: dict) -> str:
    """Markdown table: one block of rows per video."""
    return protocol.markdown_table(rows, protocol.REENACT_SCORES, first="video")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="*", help="folders or files (default: the bundled clip)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per video")
    parser.add_argument("--every", type=int, default=1, help="score every K-th frame")
    add_methods_argument(parser)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="only the validation clips among --videos (optimize.VALIDATION_CLIPS: no training "
        "run sees their people)",
    )
    args = parser.parse_args(argv)
    methods = parse_methods(parser, args.methods)
    paths = video_paths(args.videos)
    if args.validation:
        paths = keep_validation_clips(paths)
    results = benchmark(paths, methods, args.max_frames, args.every, args.weights)
    print("mean over videos:")
    print(table({"mean": results["mean"]}))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
