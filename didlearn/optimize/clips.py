"""Training data: talking-head clips as face crops (cached), augmented random pairs in tf.data.

::

    video ─► prepare_clip (reenactment.crop_clip, as uint8) ─► prepare_clips (cache keyed by the
        video's bytes; memory-mapped) ─► pair_dataset: a person, a clip of theirs, two frames
        ─► augment_pair (flip, crop, colour) ─► batches
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..landmarks import MIRROR
from .split import person_of


@dataclass
class Clip:
    """One video ready for training: face crops and their landmarks.

    Attributes:
        name: the video's file stem.
        frames: ``(T, S, S, 3)`` uint8 crops, all with the first frame's crop square (as in the
            self-reenactment benchmark, so head motion stays in the picture). From the cache a
            read-only memory map: training reads the frames it draws, not the whole set.
        landmarks: ``(T, 68, 2)`` float32 landmarks in crop pixels.
        person: who the clip shows (:func:`split.person_of`); pairs are drawn evenly by person.
    """

    name: str
    frames: np.ndarray
    landmarks: np.ndarray
    person: str = ""

    def __post_init__(self) -> None:
        self.person = self.person or person_of(self.name)


def prepare_clip(path: str | os.PathLike, size: int = 256, max_frames: int | None = None) -> Clip:
    """Decode a video, track its landmarks and crop every frame like the benchmark does
    (:func:`reenactment.crop_clip`), stored as uint8 (:func:`data.quantize`)."""
    from ..data import quantize
    from ..reenactment import crop_clip

    crops = crop_clip(path, size, max_frames=max_frames)
    return Clip(Path(path).stem, quantize(crops.frames), crops.landmarks.astype(np.float32))


#: Files of one prepared clip in the cache folder (``<cache>/<stem>_<size>_<max_frames>/``).
CACHE_FILES = ("frames.npy", "landmarks.npy", "source.json")


def video_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a video file's bytes: what a cached clip was prepared from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_folder(cache: str | os.PathLike, path: Path, size: int, max_frames: int | None) -> Path:
    return Path(cache, f"{path.stem}_{size}_{max_frames}")


def load_cached_clip(folder: Path, digest: str) -> Clip | None:
    """The clip cached in ``folder`` if it was prepared from a video with this ``digest``
    (None otherwise: missing, incomplete, or the video has changed since)."""
    try:
        source = json.loads((folder / "source.json").read_text())
    except (OSError, ValueError):
        return None
    if source.get("sha256") != digest:
        return None
    frames = np.load(folder / "frames.npy", mmap_mode="r")
    return Clip(source["name"], frames, np.load(folder / "landmarks.npy"))


def save_cached_clip(folder: Path, clip: Clip, digest: str) -> None:
    """Write a prepared clip into ``folder``, all files or none (``source.json`` last, so a
    folder without it is never read)."""
    from ..data import atomic_output, atomic_outputs

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.json").unlink(missing_ok=True)  # stale until the new arrays are in
    paths = [folder / name for name in CACHE_FILES[:2]]
    with atomic_outputs(paths, overwrite=True) as (frames, points):
        np.save(frames, clip.frames)
        np.save(points, clip.landmarks)
    with atomic_output(folder / "source.json", overwrite=True) as meta:
        meta.write_text(json.dumps({"name": clip.name, "sha256": digest}) + "\n")


def prepare_clips(
    paths: Sequence[str | os.PathLike],
    size: int = 256,
    max_frames: int | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Clip]:
    """:func:`prepare_clip` for several videos, once: the ``cache`` folder keeps each result,
    keyed by the video's bytes (:func:`video_digest`), so reruns and resumed runs reuse it and
    a changed video is prepared again."""
    from tqdm.auto import tqdm

    from ..errors import MissingResourceError

    clips = []
    for path in tqdm([Path(p) for p in paths], desc="videos", unit="video", disable=not progress):
        if cache is None:
            clips.append(prepare_clip(path, size, max_frames))
            continue
        folder, digest = _cache_folder(cache, path, size, max_frames), video_digest(path)
        cached = load_cached_clip(folder, digest)
        if cached is None:
            save_cached_clip(folder, prepare_clip(path, size, max_frames), digest)
            cached = load_cached_clip(folder, digest)
        if cached is None:
            raise MissingResourceError(f"{folder}: the clip just prepared cannot be read back")
        clips.append(cached)
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

    Every *person* is drawn equally often (one actor's nine clips do not outweigh a person
    with one, and a long clip does not outweigh a short one), then one of their clips with a
    chance proportional to its frames, then two of its frames at random. ``seed`` drives the
    pair choice (a NumPy generator) and the augmentation's per-pair seeds
    (``tf.data.Dataset.random``, whose stream, like every TF op seed, is combined with TF's
    global seed when one is set).

    Returns:
        batches of ``(B, S, S, 3)`` float32 frames and ``(B, 68, 2)`` landmarks.
    """
    size = clips[0].frames.shape[1]
    people = sorted({c.person for c in clips})
    by_person = [[c for c in clips if c.person == p] for p in people]

    def pairs() -> Iterator[tuple[np.ndarray, ...]]:
        rng = np.random.default_rng(seed)
        while True:
            theirs = by_person[rng.integers(len(people))]
            lengths = np.array([len(c.frames) for c in theirs], dtype=float)
            c = theirs[rng.choice(len(theirs), p=lengths / lengths.sum())]
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
