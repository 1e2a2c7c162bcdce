"""Gradient optimization (chapter 5): losses, training data, the train step, fitting, fine-tuning.

Training is *self-reenactment*: two frames of the same talking-head video, a source and a
driving frame, with their landmarks. The models animate the source with the driving frame's
landmarks, and the loss compares the result with the driving frame itself, which is the right
answer::

    video folder ─► prepare_clips (crop, landmarks; cached) ─► pair_dataset (tf.data, augmented)
        ─► (source, driving, ks, kd) batches ─► train_step (GradientTape) ─► Adam ─► weights

Losses (all means, so they do not depend on the batch or image size):

* ``l1``: ``mean |frame - driving|`` (pixels in [0, 1]);
* ``perceptual``: chapter 1's VGG pyramid distance (``features.perceptual_distance``);
* ``keypoint``: the refined backward flow must carry every target landmark back onto the photo's
  landmark: ``mean |kd + F(kd) - ks| / S``. The output's landmarks then sit at the driving
  landmarks, and the refiner cannot trade face geometry for a lower pixel loss;
* ``colour``: ``mean |C - driving|`` for the decoder's painting ``C`` on its own. In the frame
  ``M·warp + (1-M)·C`` the painting only counts where the mask lets it, and the mask starts at
  0.98 everywhere, so without this term ``C`` never learns to paint and the mask never has a
  reason to open (the first shipped weights ended with M = 1.00 everywhere and a yellow ``C``);
* ``paint``: ``mean (1 - M)``, a price on every painted pixel. ``C`` is smooth (the decoder
  works at half resolution), so blending it in a little almost everywhere shaves a little L1
  off, and blurs the edges of the eyes, brows, lips and jaw that a viewer (and a landmark
  detector) reads. With a price, the mask opens only where the warp has nothing right to
  show: background a turning head uncovers, the inside of an opening mouth.

``python -m didlearn.optimize --videos DIR ... --steps N --out FOLDER`` trains from the command
line (this is how the shipped weights were made: see ``didlearn/weights/MODEL_CARD.md``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import generator
from .generator import AnimationModels
from .motion import area_ratio_tensor, outside_face

#: Index of each dlib landmark's mirror image (left eye <-> right eye, ...), for flips.
MIRROR_68 = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # eyebrows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]  # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48]  # outer lips, top
    + [59, 58, 57, 56, 55]  # outer lips, bottom
    + [64, 63, 62, 61, 60]  # inner lips, top
    + [67, 66, 65]  # inner lips, bottom
)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms, and the scales of the perceptual pyramid.

    The VGG passes cost far more than the models: on a 2-core CPU a batch of 4 takes about
    4 s a step with the pyramid at 1/2, 1/4, 1/8 of the crop and well under half that at 1/4 and
    1/8 only. The coarse scales judge structure (where the eyes and mouth are, the face's
    shape); pixel L1 at full resolution covers the finest detail, and the fusion keeps the
    photo's own sharp pixels wherever the warp is right. On a GPU, add 1.0 and 0.5 back.
    """

    l1: float = 1.0
    perceptual: float = 0.1
    keypoint: float = 10.0
    colour: float = 0.5
    paint: float = 0.05
    # off by default: a stage trained with fold = 10 removed the shipped model's folds, but the
    # mask painted the uncovered background blurrily instead, and AKD got worse (MODEL_CARD)
    fold: float = 0.0
    perceptual_scales: tuple[float, ...] = (0.25, 0.125)


def keypoint_loss(flow: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor) -> tf.Tensor:
    """``mean |kd + F(kd) - ks| / S``: where each target landmark reads from, vs the photo's."""
    size = tf.cast(tf.shape(flow)[2], tf.float32)
    return tf.reduce_mean(tf.abs(generator.keypoint_leftover(flow, ks, kd))) / size


def fold_loss(flow: tf.Tensor, landmarks: tf.Tensor | None = None) -> tf.Tensor:
    """``mean(max(0, -det(I + ∇F)))``: how much the backward warp folds over itself.

    A fold shows the same photo pixels in two places: beside a turned head, a mirrored ghost of
    the cheek. With the driving ``landmarks`` (``(B, 68, 2)`` pixels) only folds outside the face
    outline are priced: inside it a fold stands in for an occlusion the warp cannot express (lips
    closing over the teeth), and the landmarks need it (MODEL_CARD).
    """
    folded = tf.nn.relu(-area_ratio_tensor(flow))[..., None]
    if landmarks is not None:
        folded *= outside_face(landmarks, flow.shape[1], flow.shape[2])
    return tf.reduce_mean(folded)


def compute_losses(
    out: dict[str, tf.Tensor],
    target: tf.Tensor,
    ks: tf.Tensor,
    kd: tf.Tensor,
    weights: LossWeights = LossWeights(),
) -> dict[str, tf.Tensor]:
    """The loss terms of one batch and their weighted sum ``total`` (float32 scalars).

    Args:
        out: :func:`generator.forward` output (``frame``, ``flow``, ``colour``).
        target: ``(B, S, S, 3)`` the true driving frames.
        ks, kd: ``(B, N, 2)`` photo and driving landmarks (crop pixels).
    """
    from .features import perceptual_distance

    frame = tf.cast(out["frame"], tf.float32)
    target = tf.stop_gradient(tf.cast(target, tf.float32))
    losses = {"l1": tf.reduce_mean(tf.abs(frame - target))}
    if weights.perceptual:
        losses["perceptual"] = perceptual_distance(frame, target, scales=weights.perceptual_scales)
    if weights.keypoint:
        losses["keypoint"] = keypoint_loss(tf.cast(out["flow"], tf.float32), ks, kd)
    if weights.colour:
        losses["colour"] = tf.reduce_mean(tf.abs(tf.cast(out["colour"], tf.float32) - target))
    if weights.paint:
        # a price on painting: without it the mask blends the blurry C in everywhere it shaves
        # a little L1 off, which blurs the eyes, brows and jaw line the landmarks sit on
        losses["paint"] = tf.reduce_mean(1.0 - tf.cast(out["mask"], tf.float32))
    if weights.fold:
        losses["fold"] = fold_loss(out["flow"], kd)
    losses["total"] = tf.add_n([getattr(weights, k) * v for k, v in losses.items()])
    return losses


# --------------------------------------------------------------------------------------------
# Training data
# --------------------------------------------------------------------------------------------


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
    """Decode a video, track its landmarks and crop every frame like the benchmark does."""
    from . import data, faces

    video = data.read_video(path, max_frames=max_frames)
    track = faces.track_landmarks(video.frames, smoothing=False, fps=video.fps)
    crops = [faces.crop_face(f, track.landmarks[0], size) for f in video.frames]
    frames = np.stack([c.image for c in crops])
    return Clip(
        Path(path).stem,
        (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8),
        crops[0].to_crop(track.landmarks).astype(np.float32),
    )


def prepare_clips(
    paths: Sequence[str | os.PathLike],
    size: int = 256,
    max_frames: int | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Clip]:
    """:func:`prepare_clip` for several videos; ``cache`` folder keeps the results (``.npz``)."""
    from tqdm.auto import tqdm

    clips = []
    for path in tqdm(list(paths), desc="videos", unit="video", disable=not progress):
        stored = Path(cache, f"{Path(path).stem}_{size}_{max_frames}.npz") if cache else None
        if stored is not None and stored.is_file():
            z = np.load(stored)
            clips.append(Clip(Path(path).stem, z["frames"], z["landmarks"]))
            continue
        clip = prepare_clip(path, size, max_frames)
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            tmp = stored.with_suffix(".tmp.npz")
            np.savez(tmp, frames=clip.frames, landmarks=clip.landmarks)
            tmp.replace(stored)
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
    mirrored = tf.gather(tf.stack([sf - 1 - points[..., 0], points[..., 1]], -1), MIRROR_68, axis=1)
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
    long ones), then two of its frames at random.

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


# --------------------------------------------------------------------------------------------
# Devices: one code path for a CPU, one GPU or several
# --------------------------------------------------------------------------------------------


def distribution_strategy() -> tf.distribute.Strategy:
    """``MirroredStrategy`` across GPUs when there are several, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def use_mixed_precision() -> bool:
    """Turn on float16 compute (float32 weights) when a GPU is present; return whether it did.

    On a CPU float16 is slower, so it stays off. Call it before building the models.
    """
    if not tf.config.list_logical_devices("GPU"):
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


# --------------------------------------------------------------------------------------------
# Train step and fit loop
# --------------------------------------------------------------------------------------------


def make_optimizer(lr: float = 2e-4, mixed: bool = False) -> keras.optimizers.Optimizer:
    """Adam (β1 = 0.5 as in GAN-style generators), wrapped in loss scaling for float16."""
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.5, beta_2=0.999)
    return keras.optimizers.LossScaleOptimizer(opt) if mixed else opt


def make_train_step(
    models: AnimationModels,
    optimizer: keras.optimizers.Optimizer,
    weights: LossWeights = LossWeights(),
    strategy: tf.distribute.Strategy | None = None,
):
    """A ``tf.function`` ``step(batch) -> losses``: forward, losses, gradients, one Adam update.

    With several replicas each computes the gradient of its share of the batch; the losses are
    scaled by ``1 / replicas`` so the summed gradient is that of the global mean.
    """
    from .features import PERCEPTUAL_LAYERS, feature_extractor

    strategy = strategy or tf.distribute.get_strategy()
    variables = models.trainable_variables
    # Create every variable before tracing: Adam's slots and the VGG network built inside the
    # trace would make tf.function trace the step twice (tens of seconds on a CPU).
    if not optimizer.built:  # building again would reset a used optimizer's moments
        with strategy.scope():
            optimizer.build(variables)
    if weights.perceptual:
        feature_extractor(PERCEPTUAL_LAYERS)

    def replica_step(source, driving, ks, kd):
        with tf.GradientTape() as tape:
            out = generator.forward(models, source, ks, kd, training=True)
            losses = compute_losses(out, driving, ks, kd, weights)
            total = losses["total"] / strategy.num_replicas_in_sync
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                total = optimizer.scale_loss(total)
        grads = tape.gradient(total, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return losses

    @tf.function(reduce_retracing=True)
    def step(batch):
        per_replica = strategy.run(replica_step, args=tuple(batch))
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    return step


def fit(
    models: AnimationModels,
    dataset: tf.data.Dataset,
    steps: int,
    lr: float = 2e-4,
    weights: LossWeights = LossWeights(),
    log_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    max_minutes: float | None = None,
) -> list[dict[str, float]]:
    """Train for ``steps`` batches; return the per-step losses.

    ``max_minutes``: stop earlier once this much wall time has passed (a class's lunch break,
    a CI budget); the run ends as if ``steps`` were reached, with a checkpoint and the plot.
    With ``log_dir``: a CSV log (``log.csv``: step, seconds, every loss), checkpoints every
    ``checkpoint_every`` steps (``checkpoints/``; a rerun resumes from the latest) and the loss
    curves (``losses.png``) at the end.
    """
    from tqdm.auto import tqdm

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        optimizer = optimizer or make_optimizer(lr)
    step_fn = make_train_step(models, optimizer, weights, strategy)
    manager, writer, done = None, None, 0
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        ckpt = tf.train.Checkpoint(
            optimizer=optimizer,
            **{p: getattr(models, p) for p in generator.PARTS},
        )
        manager = tf.train.CheckpointManager(ckpt, log_dir / "checkpoints", max_to_keep=2)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint)
            done = _checkpoint_step(manager.latest_checkpoint)
    history: list[dict[str, float]] = []
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    bar = tqdm(range(done, steps), desc="train", unit="step", disable=not progress)
    t0 = time.perf_counter()
    log_file = None
    try:
        if log_dir is not None:
            new = not (log_dir / "log.csv").exists()
            log_file = open(log_dir / "log.csv", "a", newline="")
            writer = csv.writer(log_file)
        for i in bar:
            losses = {k: float(v) for k, v in step_fn(next(batches)).items()}
            row = {"step": i + 1, "seconds": time.perf_counter() - t0, **losses}
            history.append(row)
            bar.set_postfix(l1=f"{losses['l1']:.4f}", total=f"{losses['total']:.4f}")
            if writer is not None:
                if new:
                    writer.writerow(list(row))
                    new = False
                writer.writerow([f"{v:.6g}" for v in row.values()])
                log_file.flush()
            if manager is not None and (i + 1) % checkpoint_every == 0:
                manager.save(checkpoint_number=i + 1)
            if max_minutes is not None and row["seconds"] > 60.0 * max_minutes:
                break
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
    if manager is not None and history:
        manager.save(checkpoint_number=history[-1]["step"])
        import matplotlib.pyplot as plt

        fig = plot_history(read_log(log_dir / "log.csv"))
        fig.savefig(log_dir / "losses.png", dpi=100)
        plt.close(fig)  # a figure per fit would pile up in a long session
    return history


def load_checkpoint(
    log_dir: str | os.PathLike, config: generator.GeneratorConfig | None = None
) -> tuple[AnimationModels, int]:
    """The models of the latest checkpoint of a :func:`fit` run (e.g. while it still trains).

    Returns:
        ``(models, step)``.

    Raises:
        MissingResourceError: no checkpoint in ``log_dir/checkpoints``.
    """
    from .errors import MissingResourceError

    latest = tf.train.latest_checkpoint(str(Path(log_dir, "checkpoints")))
    if latest is None:
        raise MissingResourceError(f"no checkpoint in {Path(log_dir, 'checkpoints')}")
    models = generator.build_models(config)
    parts = {p: getattr(models, p) for p in generator.PARTS}
    tf.train.Checkpoint(**parts).restore(latest).expect_partial()
    return models, _checkpoint_step(latest)


def _checkpoint_step(path: str) -> int:
    """The training step a checkpoint was saved at: :func:`fit` numbers them by step
    (``ckpt-700``), which is not the optimizer's count when it was given a used optimizer."""
    return int(path.rsplit("-", 1)[-1])


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``log.csv`` written by :func:`fit`."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_history(history: Sequence[dict[str, float]], smooth: int = 25):
    """Loss curves (one panel per term, raw and moving average); returns the figure."""
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k not in ("step", "seconds")]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    steps = np.array([h["step"] for h in history])
    for ax, key in zip(axes[0], keys, strict=True):
        y = np.array([h[key] for h in history])
        ax.plot(steps, y, color="0.75", lw=0.8)
        k = max(1, min(smooth, len(y) // 4))
        if k > 1:
            ax.plot(steps[k - 1 :], np.convolve(y, np.ones(k) / k, "valid"), color="C0")
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Per-photo fine-tuning (test-time optimization)
# --------------------------------------------------------------------------------------------


def copy_models(models: AnimationModels) -> AnimationModels:
    """An independent copy (same config, same weights) to train without touching the original."""
    twin = generator.build_models(models.config)
    for p in generator.PARTS:
        getattr(twin, p).set_weights(getattr(models, p).get_weights())
    twin.info.update(models.info)
    return twin


def _random_similarity(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (2, 3) small random similarity around the crop centre (±6°, ±5 % scale, ±4 % shift)."""
    import cv2

    c = (size - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), rng.uniform(-6, 6), rng.uniform(0.95, 1.05))
    m[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    return m


def self_pairs(
    crop: np.ndarray, ks: np.ndarray, count: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs made from ONE photo: the photo and a random similarity warp of it.

    Each pair goes either way (photo -> moved copy, or moved copy -> photo), so the models
    learn to reproduce this face's own texture from moved versions of it.

    Returns:
        ``(sources, targets, ks, kd)``: ``(count, S, S, 3)`` and ``(count, N, 2)`` arrays.
    """
    import cv2

    rng = np.random.default_rng(seed)
    s = crop.shape[0]
    img = np.asarray(crop, np.float32)
    src, tgt, kss, kds = [], [], [], []
    for _ in range(count):
        m = _random_similarity(rng, s)
        moved = cv2.warpAffine(
            img, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        moved_kp = ks @ m[:, :2].T + m[:, 2]
        pair = [(img, ks), (moved, moved_kp)]
        if rng.random() < 0.5:
            pair.reverse()
        (a, ka), (b, kb) = pair
        src.append(a), tgt.append(b), kss.append(ka), kds.append(kb)
    return (
        np.stack(src).astype(np.float32),
        np.stack(tgt).astype(np.float32),
        np.stack(kss).astype(np.float32),
        np.stack(kds).astype(np.float32),
    )


def fine_tune(
    models: AnimationModels,
    crop: np.ndarray,
    ks: np.ndarray,
    steps: int,
    lr: float = 5e-5,
    batch: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> AnimationModels:
    """Test-time optimization: adapt a copy of the models to one photo (the original is kept).

    Trains on :func:`self_pairs` of the photo for ``steps`` Adam steps at a small learning rate.
    The models see this face's texture moved around and learn to keep it, which helps identity
    (AED) when the driving motion is small; large motions still rely on the general training.

    Args:
        crop: ``(S, S, 3)`` face crop; ks: ``(N, 2)`` its landmarks (crop pixels).

    Returns:
        The fine-tuned copy.
    """
    if steps <= 0:
        return models
    tuned = copy_models(models)
    src, tgt, kss, kds = self_pairs(crop, ks, steps * batch, seed)
    ds = tf.data.Dataset.from_tensor_slices((src, tgt, kss, kds)).batch(batch)
    fit(tuned, ds.repeat(), steps, lr=lr, progress=progress)
    return tuned


# --------------------------------------------------------------------------------------------
# Command line: python -m didlearn.optimize
# --------------------------------------------------------------------------------------------


def parse_loss_weights(items: Sequence[str]) -> LossWeights:
    """``LossWeights`` with the ``TERM=VALUE`` items (e.g. ``["fold=10", "paint=0.2"]``) changed.

    Raises:
        ValueError: an item is not ``TERM=NUMBER`` or names no loss term (the message lists them).
    """
    terms = [f for f in LossWeights.__dataclass_fields__ if f != "perceptual_scales"]
    changed: dict[str, float] = {}
    for item in items:
        term, _, value = item.partition("=")
        if term not in terms:
            raise ValueError(
                f"unknown loss term '{term}' in '{item}': use one of {', '.join(terms)}"
            )
        try:
            changed[term] = float(value)
        except ValueError:
            raise ValueError(f"'{item}' needs a number after '=', e.g. {term}=0.5") from None
    return dataclasses.replace(LossWeights(), **changed)


def _video_files(sources: Sequence[str]) -> list[Path]:
    from . import data

    suffixes = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
    paths: list[Path] = []
    for s in sources:
        p = Path(s)
        paths += (
            sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes) if p.is_dir() else [p]
        )
    return paths or [data.sample_driving_video()]


def main(argv: Sequence[str] | None = None) -> int:
    """Train the models on a folder of talking-head videos and save the weights."""
    parser = argparse.ArgumentParser(prog="python -m didlearn.optimize", description=main.__doc__)
    parser.add_argument(
        "--videos", nargs="*", default=[], help="videos or folders (default: the bundled clip)"
    )
    parser.add_argument("--exclude", nargs="*", default=[], help="video stems to hold out")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this long (checkpointed)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-frames", type=int, default=None, help="frames per video")
    parser.add_argument("--log-dir", default="runs/train", help="log, checkpoints, loss plot")
    parser.add_argument("--out", default="runs/weights", help="folder for the final weights")
    parser.add_argument("--init", default=None, help="start from the weights in this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="TERM=VALUE",
        help="change a loss weight, e.g. --weight fold=10 (repeatable; default: LossWeights)",
    )
    args = parser.parse_args(argv)
    try:
        weights = parse_loss_weights(args.weight)
    except ValueError as err:
        parser.error(str(err))

    paths = [p for p in _video_files(args.videos) if p.stem not in set(args.exclude)]
    mixed = use_mixed_precision()
    strategy = distribution_strategy()
    clips = prepare_clips(paths, max_frames=args.max_frames, cache=Path(args.log_dir, "clips"))
    frames = sum(len(c.frames) for c in clips)
    print(f"{len(clips)} videos, {frames} frames: {', '.join(c.name for c in clips)}")
    with strategy.scope():
        if args.init:
            models = generator.load_models(args.init)
        else:
            models = generator.build_models(seed=args.seed)
        optimizer = make_optimizer(args.lr, mixed)
    ds = pair_dataset(clips, args.batch * strategy.num_replicas_in_sync, seed=args.seed)
    t0 = time.perf_counter()
    history = fit(
        models,
        ds,
        args.steps,
        log_dir=args.log_dir,
        strategy=strategy,
        optimizer=optimizer,
        weights=weights,
        checkpoint_every=100,
        max_minutes=args.max_minutes,
    )
    last = history[-min(100, len(history)) :] if history else []
    info = {
        "videos": [c.name for c in clips],
        "frames": frames,
        "steps": int(history[-1]["step"]) if history else args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "loss_weights": dataclasses.asdict(weights),
        "seconds_this_run": round(time.perf_counter() - t0, 1),
        "final_losses_mean_last_100": {
            k: float(np.mean([h[k] for h in last]))
            for k in (last[0] if last else {})
            if k not in ("step", "seconds")
        },
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }
    generator.save_models(models, args.out, info=info, overwrite=True)
    print(f"weights written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
