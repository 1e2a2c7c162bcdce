"""Training data: talking-head clips as face crops (cached), augmented random pairs in tf.data.

::

    video ─► prepare_clip (reenactment.crop_clip, as uint8) ─► prepare_clips (.npz cache)
        ─► pair_dataset: random frame pairs ─► augment_pair (flip, crop, colour) ─► batches
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..landmarks import MIRROR


@dataclass
class Clip:
    """One video ready for training: face crops and their landmarks.

    Attributes:
        name: the video's file stem.
        frames: ``(T, S, S, 3)`` uint8 crops, all with the first frame's crop square (as in the
            self-reenactment benchmark, so head motion stays in the picture).
        landmarks: ``(T, 68, 2)`` float32 landmarks in crop pixels.
    """

    name: str
    frames: np.ndarray
    landmarks: np.ndarray


def prepare_clip(path: str | os.PathLike, size: int = 256, max_frames: int | None = None) -> Clip:
    """Decode a video, track its landmarks and crop every frame like the benchmark does
    (:func:`reenactment.crop_clip`), stored as uint8 (:func:`data.quantize`)."""
    from ..data import quantize
    from ..reenactment import crop_clip

    crops = crop_clip(path, size, max_frames=max_frames)
    return Clip(Path(path).stem, quantize(crops.frames), crops.landmarks.astype(np.float32))


def prepare_clips(
    paths: Sequence[str | os.PathLike],
    size: int = 256,
    max_frames: int | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Clip]:
    """:func:`prepare_clip` for several videos; ``cache`` folder keeps the results (``.npz``)."""
    from tqdm.auto import tqdm

    from ..data import atomic_output

    clips = []
    for path in tqdm(list(paths), desc="videos", unit="video", disable=not progress):
        stored = Path(cache, f"{Path(path).stem}_{size}_{max_frames}.npz") if cache else None
        if stored is not None and stored.is_file():
            z = np.load(stored)
            clips.append(Clip(Path(path).stem, z["frames"], z["landmarks"]))
            continue
        clip = prepare_clip(path, size, max_frames)
        if stored is not None:
            with atomic_output(stored, overwrite=True) as tmp:
                np.savez(tmp, frames=clip.frames, landmarks=clip.landmarks)
        clips.append(clip)
    return clips


def augment_pair(
    source: tf.Tensor, driving: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """The same random flip, crop and colour jitter on both frames (and their landmarks).

    Args:
        source, driving: ``(S, S, 3)`` uint8 or float frames; ks, kd: ``(68, 2)`` landmarks.
        seed: ``(2,)`` int seed of the stateless random ops (one per pair: reproducible).

    Returns:
        float32 frames in [0, 1] and the moved landmarks.
    """
    s = tf.shape(source)[0]
    sf = tf.cast(s, tf.float32)
    # convert each frame first: tf.stack of NumPy uint8 arrays would give int32 (scaled by 2^31)
    frames = [
        tf.image.convert_image_dtype(tf.convert_to_tensor(x), tf.float32) for x in (source, driving)
    ]
    images = tf.stack(frames)
    points = tf.stack([tf.cast(ks, tf.float32), tf.cast(kd, tf.float32)])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    # flip: mirror the pixels, the x coordinates and the landmark order (left eye <-> right eye)
    flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    mirrored = tf.gather(tf.stack([sf - 1 - points[..., 0], points[..., 1]], -1), MIRROR, axis=1)
    points = tf.where(flip, mirrored, points)
    # small crop: a square of 85-100 % of the side, resized back to S
    u = tf.random.stateless_uniform([3], seeds[1])
    side = 0.85 + 0.15 * u[0]
    y0, x0 = (1 - side) * u[1], (1 - side) * u[2]
    box = tf.stack([y0, x0, y0 + side, x0 + side])[None]
    images = tf.image.crop_and_resize(images, tf.tile(box, [2, 1]), [0, 1], tf.stack([s, s]))
    origin = tf.stack([x0, y0]) * (sf - 1)
    points = (points - origin) / side

    # colour: one brightness/contrast/saturation/hue change for both frames (same seed)
    def jitter(img: tf.Tensor) -> tf.Tensor:
        img = tf.image.stateless_random_brightness(img, 0.08, seeds[2])
        img = tf.image.stateless_random_contrast(img, 0.85, 1.15, seeds[3])
        img = tf.image.stateless_random_saturation(img, 0.8, 1.2, seeds[2])
        return tf.image.stateless_random_hue(img, 0.02, seeds[3])

    images = tf.clip_by_value(tf.stack([jitter(images[0]), jitter(images[1])]), 0.0, 1.0)
    return images[0], images[1], points[0], points[1]


def pair_dataset(
    clips: Sequence[Clip], batch: int = 4, seed: int = 0, augment: bool = True
) -> tf.data.Dataset:
    """Endless ``tf.data`` batches ``(source, driving, ks, kd)`` of random frame pairs.

    Every clip is drawn equally often (a short clip, like the bundled one, is not drowned by
    long ones), then two of its frames at random. ``seed`` drives the pair choice (a NumPy
    generator) and the augmentation's per-pair seeds (``tf.data.Dataset.random``, whose stream,
    like every TF op seed, is combined with TF's global seed when one is set).

    Returns:
        batches of ``(B, S, S, 3)`` float32 frames and ``(B, 68, 2)`` landmarks.
    """
    size = clips[0].frames.shape[1]

    def pairs() -> Iterator[tuple[np.ndarray, ...]]:
        rng = np.random.default_rng(seed)
        while True:
            c = clips[rng.integers(len(clips))]
            i, j = rng.integers(len(c.frames), size=2)
            yield c.frames[i], c.frames[j], c.landmarks[i], c.landmarks[j]

    frame = tf.TensorSpec((size, size, 3), tf.uint8)
    points = tf.TensorSpec((68, 2), tf.float32)
    ds = tf.data.Dataset.from_generator(pairs, output_signature=(frame, frame, points, points))
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)
    if augment:
        ds = ds.map(lambda p, sd: augment_pair(*p, sd), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(
            lambda p, sd: (
                tf.image.convert_image_dtype(p[0], tf.float32),
                tf.image.convert_image_dtype(p[1], tf.float32),
                p[2],
                p[3],
            )
        )
    return ds.batch(batch, drop_remainder=True).prefetch(2)
