"""Inference: the compiled renderer of one face crop, with the inference guards.

What the ``model`` renderer of :mod:`didlearn.animate` calls: :func:`render_motion` gives the
frames, the guarded flow, the fusion mask and the painting that :mod:`didlearn.composite` needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from .architecture import AnimationModels
from .guards import forward

#: What the compiled inference function returns (see :func:`render_motion`).
RENDERED = ("frame", "flow", "mask", "colour")
#: :func:`render_motion` renders a multiple of this many frames (a short batch is padded, then
#: cut), so its compiled graph is traced once, not once per batch size.
RENDER_BATCH = 8


def compiled_renderer(models: AnimationModels) -> Any:
    """The ``tf.function`` (photo, ks, kp) -> {frame, flow, mask, colour} for inference, traced
    once per models (kept on ``models.renderer``)."""
    if models.renderer is None:

        @tf.function(reduce_retracing=True)
        def render(photo, ks, kp):
            feats = models.encoder(photo, training=False)
            out = forward(models, photo, ks, kp, features=feats, guards=True)
            return {k: out[k] for k in RENDERED}

        models.renderer = render
    return models.renderer


def render_motion(
    models: AnimationModels, crop: np.ndarray, ks: np.ndarray, kps: np.ndarray
) -> dict[str, np.ndarray]:
    """Render target keypoints on one face crop, with the inference guards (``guard_flow``).

    Args:
        crop: ``(S, S, 3)`` float32 face crop in [0, 1] (S = ``models.config.size``).
        ks: ``(N, 2)`` its keypoints; kps: ``(B, N, 2)`` target keypoints (crop pixels).

    Returns:
        NumPy float32 ``frame (B, S, S, 3)`` (clipped to [0, 1]), ``flow (B, S, S, 2)`` (the
        guarded refined flow, crop pixels), ``mask (B, S, S, 1)`` and ``colour (B, S, S, 3)``:
        what :mod:`didlearn.composite` needs to render the frames at any resolution.
    """
    s = models.config.size
    crop = np.asarray(crop, np.float32)
    if crop.shape != (s, s, 3):
        raise ValueError(
            f"the model runs on {s}x{s} crops but got an image of shape {crop.shape}; crop the "
            f"face with faces.crop_face(photo, landmarks, size={s})"
        )
    kps = np.asarray(kps, np.float32)
    n = len(kps)
    # a new batch size would trace (and XLA-compile) the model again, which costs more than
    # rendering a few repeated frames
    padded = -n % RENDER_BATCH
    if padded:
        kps = np.concatenate([kps, np.repeat(kps[-1:], padded, axis=0)])
    ks = np.broadcast_to(np.asarray(ks, np.float32), kps.shape)
    out = compiled_renderer(models)(crop[None], tf.constant(ks), tf.constant(kps))
    out = {k: v.numpy()[:n] for k, v in out.items()}
    out["frame"] = np.clip(out["frame"], 0.0, 1.0)
    return out


def animate_crop(
    models: AnimationModels, crop: np.ndarray, ks: np.ndarray, kps: np.ndarray
) -> np.ndarray:
    """The ``(B, S, S, 3)`` frames of :func:`render_motion` (float32 in [0, 1]): the model's
    animated face crops, with the inference guards."""
    return render_motion(models, crop, ks, kps)["frame"]
