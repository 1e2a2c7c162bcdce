"""Per-photo fine-tuning (test-time optimization): adapt a copy of the models to one photo."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import generator
from ..generator import AnimationModels
from .loop import fit


def copy_models(models: AnimationModels) -> AnimationModels:
    """An independent copy (same config, same weights) to train without touching the original.

    (``generator.build_models`` seeds Keras' global generators with 0 while it builds the copy.)
    """
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
        seed: seed of the pairs' random moves.

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
