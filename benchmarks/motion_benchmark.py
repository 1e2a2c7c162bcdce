"""Benchmark of chapter 3: landmark speed, thin-plate flow speed, and landmark jitter.

    .venv/bin/python benchmarks/motion_benchmark.py [--frames 120] [--no-extra]

Prints three tables:

1. landmarks per second on the driving clip (and the 512x512 talking heads in
   /work/shared/data/videos when present): the detector on every frame vs the tracker (shape
   predictor in a box from the previous landmarks, detector only when the face is lost);
2. thin-plate-spline flow at 256x256 (68 landmarks + 32 border anchors), milliseconds per frame,
   eager vs tf.function, batch 1 and 8, full resolution and coarse evaluation (``step``);
3. jitter = mean frame-to-frame landmark acceleration |x[t+1] - 2x[t] + x[t-1]| (pixels) with and
   without the one-euro filter, and the mean distance of the smoothed landmarks to the raw ones
   (the price of smoothing: lag).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from didlearn import faces, motion
from didlearn.data import read_video, sample_driving_video

EXTRA = Path("/work/shared/data/videos")


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    fn()  # warm-up (model loading, tracing, XLA compilation)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def clips(max_frames: int, extra: bool) -> list[tuple[str, np.ndarray, float]]:
    out = []
    video = read_video(sample_driving_video(), max_frames=max_frames)
    out.append(("carphone 176x144", video.frames, video.fps))
    if extra and EXTRA.is_dir():
        for path in sorted(EXTRA.glob("*.mp4"))[:3]:
            video = read_video(path, max_frames=max_frames)
            h, w = video.frames.shape[1:3]
            out.append((f"{path.stem} {w}x{h}", video.frames, video.fps))
    return out


def landmark_speed(name: str, frames: np.ndarray, fps: float) -> list[dict]:
    rows = []

    def detector_every_frame():
        lms = []
        for f in frames:
            try:
                lms.append(faces.face_landmarks(f))
            except faces.NoFaceFoundError:
                lms.append(lms[-1] if lms else np.zeros((68, 2), np.float32))
        return np.stack(lms)

    dt, det = _timed(detector_every_frame)
    rows.append(
        dict(
            clip=name,
            method="detector every frame",
            fps=len(frames) / dt,
            detections=len(frames),
            jitter=faces.jitter(det),
            lag=float("nan"),
        )
    )
    dt, raw = _timed(lambda: faces.track_landmarks(frames, smoothing=False, fps=fps))
    rows.append(
        dict(
            clip=name,
            method="tracker, raw",
            fps=len(frames) / dt,
            detections=raw.detections,
            jitter=faces.jitter(raw.landmarks),
            lag=0.0,
        )
    )
    dt, smooth = _timed(lambda: faces.track_landmarks(frames, smoothing=True, fps=fps))
    lag = float(np.linalg.norm(smooth.landmarks - raw.landmarks, axis=-1).mean())
    rows.append(
        dict(
            clip=name,
            method="tracker + one-euro",
            fps=len(frames) / dt,
            detections=smooth.detections,
            jitter=faces.jitter(smooth.landmarks),
            lag=lag,
        )
    )
    return rows


def tps_speed(size: int = 256) -> list[dict]:
    rng = np.random.default_rng(0)
    ks = rng.uniform(60, 196, (68, 2)).astype(np.float32)
    rows = []
    for batch in (1, 8):
        kss = np.repeat(ks[None], batch, 0)
        kps = kss + rng.normal(0, 3, kss.shape).astype(np.float32)
        for step in (1, 2, 4):
            eager = lambda s=step, a=kss, b=kps: motion.tps_flow(a, b, size, size, step=s).numpy()  # noqa: E731
            graph_fn = tf.function(lambda a, b, s=step: motion.tps_flow(a, b, size, size, step=s))
            graph = lambda a=kss, b=kps, g=graph_fn: g(a, b).numpy()  # noqa: E731
            for mode, fn in (("eager", eager), ("tf.function", graph)):
                dt, _ = _timed(fn, repeat=10)
                rows.append(dict(mode=mode, batch=batch, step=step, ms=1000 * dt / batch))
    return rows


def tps_accuracy(size: int = 256) -> list[dict]:
    """Error of the coarse evaluation (step) against step 1 on the real transfer of the clip."""
    from didlearn.data import sample_portrait

    photo = sample_portrait()
    lm = faces.face_landmarks(photo)
    crop = faces.crop_face(photo, lm, size=size)
    ks = crop.to_crop(lm)
    video = read_video(sample_driving_video())
    kd = faces.track_landmarks(video.frames, fps=video.fps).landmarks
    kp = motion.transfer_relative(ks, kd, kd[0])[::4]
    src = np.broadcast_to(ks, kp.shape)
    full = motion.tps_flow(src, kp, size, size).numpy()
    rows = []
    for step in (2, 4, 8):
        err = np.linalg.norm(
            motion.tps_flow(src, kp, size, size, step=step).numpy() - full, axis=-1
        )
        rows.append(
            dict(
                step=step,
                mean=float(err.mean()),
                p99=float(np.percentile(err, 99)),
                max=float(err.max()),
            )
        )
    return rows


def end_to_end(size: int = 256, batch: int = 8) -> dict:
    """TPS-only animation of the portrait by the clip: tracking + transfer + TPS + warp."""
    from didlearn.data import sample_portrait

    photo = sample_portrait()
    lm = faces.face_landmarks(photo)
    crop = faces.crop_face(photo, lm, size=size)
    ks = crop.to_crop(lm)
    video = read_video(sample_driving_video())
    out = {}
    for step in (1, 4):
        motion.warp_sequence(crop.image, ks, np.repeat(ks[None], batch, 0), batch=batch, step=step)
        t0 = time.perf_counter()
        kd = faces.track_landmarks(video.frames, fps=video.fps).landmarks
        kp = motion.transfer_relative(ks, kd, kd[0])
        motion.warp_sequence(crop.image, ks, kp, batch=batch, step=step)
        out[step] = len(kp) / (time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--no-extra", action="store_true", help="only the bundled clip")
    args = parser.parse_args()

    rows = []
    for name, frames, fps in clips(args.frames, not args.no_extra):
        rows += landmark_speed(name, frames, fps)
    print("\nLandmarks (68 points, dlib) — speed and jitter")
    print(
        f"{'clip':28s} {'method':22s} {'frames/s':>9s} {'detector runs':>13s} "
        f"{'jitter px':>9s} {'lag px':>7s}"
    )
    for r in rows:
        print(
            f"{r['clip']:28s} {r['method']:22s} {r['fps']:9.1f} {r['detections']:13d} "
            f"{r['jitter']:9.3f} {r['lag']:7.2f}"
        )

    print("\nThin-plate-spline flow, 256x256, 68 keypoints + 32 anchors — ms per frame")
    print(f"{'mode':12s} {'batch':>5s} {'step':>4s} {'ms/frame':>9s}")
    for r in tps_speed():
        print(f"{r['mode']:12s} {r['batch']:5d} {r['step']:4d} {r['ms']:9.2f}")

    print("\nCoarse TPS evaluation vs step 1 (portrait driven by the clip), error in px")
    print(f"{'step':>4s} {'mean':>7s} {'p99':>7s} {'max':>7s}")
    for r in tps_accuracy():
        print(f"{r['step']:4d} {r['mean']:7.3f} {r['p99']:7.3f} {r['max']:7.2f}")

    e2e = end_to_end()
    print("\nTPS-only animation, 256x256 (track + transfer + TPS + warp, batch 8, eager)")
    for step, fps in e2e.items():
        print(f"  step {step}: {fps:6.1f} frames/s")


if __name__ == "__main__":
    main()
