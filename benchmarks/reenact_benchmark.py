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
from results_file import write_json  # noqa: E402

from didlearn import animate, data, faces, metrics  # noqa: E402

METHODS = ("still", "similarity", "piecewise_affine", "thin_plate", "model")
KEYS = ("l1", "perceptual", "akd", "aed", "fps")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
SIZE = 256


def video_paths(sources: list[str] | None) -> list[Path]:
    """Video files of the given folders/files; default: the bundled clip."""
    if not sources:
        return [data.sample_driving_video()]
    paths: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
        else:
            paths.append(p)
    if not paths:
        sys.exit(f"error: no videos ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(sources)}")
    return paths


def prepare(path: Path, max_frames: int | None, every: int = 1):
    """The photo crop, its keypoints, the true crops and their keypoints (crop pixels).

    ``every``: keep every ``every``-th later frame (the metrics cost ~1 s per frame and method
    on 2 CPU cores, mostly the VGG perceptual distance; a sample of frames measures the same).

    Returns:
        ``(photo (S,S,3), ks (68,2), truth (T-1,S,S,3), kps (T-1,68,2))``.
    """
    video = data.read_video(path, max_frames=max_frames)
    track = faces.track_landmarks(video.frames, smoothing=False, fps=video.fps)
    lm0 = track.landmarks[0]
    first = faces.crop_face(video.frames[0], lm0, SIZE)
    # every frame cropped with the FIRST frame's square (same matrix, same anti-alias blur)
    later = range(1, len(video.frames), every)
    truth = np.stack([faces.crop_face(video.frames[i], lm0, SIZE).image for i in later])
    kps = first.to_crop(track.landmarks[list(later)])
    return first.image, first.to_crop(lm0), truth, kps


def render_timed(render, photo, ks, kps, batch: int = 8) -> tuple[np.ndarray, float]:
    """All frames of one method, and its frames per second (after one warm-up batch)."""
    render(photo, ks, kps[:batch])  # warm-up: tracing, XLA compilation, model loading
    out, t0 = [], time.perf_counter()
    for i in range(0, len(kps), batch):
        out.append(render(photo, ks, kps[i : i + batch]))
    seconds = time.perf_counter() - t0
    return np.concatenate(out), len(kps) / max(seconds, 1e-9)


def _box(kp: np.ndarray) -> tuple[float, float, float, float]:
    """A face box from landmarks (their bounding box; used when the detector misses the face)."""
    lo, hi = kp.min(axis=0), kp.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def score(outputs: np.ndarray, truth: np.ndarray, refs: list) -> dict:
    """Mean L1, perceptual distance, AKD and AED of rendered frames against the true frames.

    ``refs``: per true frame ``(landmarks, face box, embedding)`` from :func:`references`.
    """
    from didlearn.features import perceptual_distance

    perceptual = np.concatenate(
        [
            perceptual_distance(outputs[i : i + 8], truth[i : i + 8], per_image=True).numpy()
            for i in range(0, len(outputs), 8)
        ]
    )
    akd, aed = [], []
    for out, true, (lm, box, emb) in zip(outputs, truth, refs, strict=True):
        found = metrics.find_face(out, box)  # one detection for both metrics
        akd.append(metrics.akd(out, true, driving_landmarks=lm, output_box=found))
        aed.append(metrics.aed(out, true, reference_embedding=emb, output_box=found))
    return {
        "l1": float(np.mean(np.abs(outputs - truth))),
        "perceptual": float(perceptual.mean()),
        "akd": float(np.mean(akd)),
        "aed": float(np.mean(aed)),
    }


def references(truth: np.ndarray, kps: np.ndarray) -> list:
    """Per true frame: landmarks, face box and dlib embedding, found the way outputs' are.

    The tracked landmarks ``kps`` only supply a fallback box when the detector misses the face.
    """
    refs = []
    for frame, kp in zip(truth, kps, strict=True):
        box = metrics.find_face(frame, _box(kp))
        refs.append(
            (
                metrics.landmarks_of(frame, box),
                box,
                metrics.face_embedding(frame, box),
            )
        )
    return refs


def benchmark(
    paths: list[Path], methods: list[str], max_frames: int | None, every: int = 1
) -> dict:
    renderers = {}
    for m in methods:
        if m == "model":
            try:
                _, models = animate.load_models("model")
            except Exception as err:  # missing weights or module: report, run the rest
                print(f"note: skipping 'model' ({err})", file=sys.stderr)
                continue
            renderers[m] = animate.make_renderer("model", models)
        else:
            renderers[m] = animate.make_renderer(m)
    results: dict = {"mean": {}, "videos": {}}
    for path in paths:
        t0 = time.perf_counter()
        photo, ks, truth, kps = prepare(path, max_frames, every)
        refs = references(truth, kps)
        row = {}
        for m, render in renderers.items():
            outputs, fps = render_timed(render, photo, ks, kps)
            row[m] = {**score(outputs, truth, refs), "fps": fps}
        results["videos"][path.stem] = row
        print(table({path.stem: row}), f"\n({len(kps)} frames, {time.perf_counter() - t0:.0f} s)\n")
    for m in renderers:
        rows = [v[m] for v in results["videos"].values()]
        results["mean"][m] = {k: float(np.mean([r[k] for r in rows])) for k in KEYS}
    return results


def table(videos: dict) -> str:
    """Markdown table: one block of rows per video."""
    lines = [
        "| video | method | L1 ↓ | perceptual ↓ | AKD ↓ (px) | AED ↓ | fps ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in videos.items():
        for m, r in row.items():
            lines.append(
                f"| {name} | {m} | {r['l1']:.4f} | {r['perceptual']:.3f} | {r['akd']:.2f} "
                f"| {r['aed']:.3f} | {r['fps']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="*", help="folders or files (default: the bundled clip)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per video")
    parser.add_argument("--every", type=int, default=1, help="score every K-th frame")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    results = benchmark(video_paths(args.videos), methods, args.max_frames, args.every)
    print("mean over videos:")
    print(table({"mean": results["mean"]}))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
