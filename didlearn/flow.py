"""Optical flow: backward warping, visualisation, evaluation and ``.flo`` files (chapter 2).

Convention (DESIGN.md): a flow is BACKWARD, in pixels, channel 0 = dx, channel 1 = dy::

    out[y, x] = src[y + dy, x + dx]

Shapes: ``(B, H, W, 2)`` in TensorFlow, ``(H, W, 2)`` in NumPy. The estimators (OpenCV and the
gradient-descent variational one) live in :mod:`didlearn.flow_estimators` and are re-exported here.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .errors import InvalidFlowError

PADDINGS = ("border", "zeros")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def check_flow(flow, height: int | None = None, width: int | None = None) -> np.ndarray:
    """Validate a NumPy-convertible flow ``(H, W, 2)`` or ``(B, H, W, 2)`` and return it as float32.

    Raises :class:`InvalidFlowError` for a wrong rank or channel count, a size other than
    ``(height, width)`` when those are given, or NaN/infinite values.
    """
    arr = np.asarray(flow, dtype=np.float32)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 2:
        raise InvalidFlowError(
            f"a flow must have shape (H, W, 2) or (B, H, W, 2) with channels (dx, dy); got "
            f"{arr.shape}. Stack the x and y displacements on the last axis."
        )
    h, w = arr.shape[-3], arr.shape[-2]
    if (height is not None and h != height) or (width is not None and w != width):
        raise InvalidFlowError(
            f"the flow is {h}x{w} (HxW) but the image is {height}x{width}; resize the flow "
            "(and scale its values) or the image so that they match."
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidFlowError(
            "the flow contains NaN or infinite values; replace them (e.g. np.nan_to_num) or mask "
            "the unknown pixels before using it."
        )
    return arr


def _static_checks(x: tf.Tensor, flow: tf.Tensor) -> None:
    """Shape checks that can be made while tracing (static shapes) or eagerly."""
    if flow.shape.rank != 4 or flow.shape[-1] != 2:
        raise InvalidFlowError(
            f"warp needs a flow of shape (B, H, W, 2) or (H, W, 2) with channels (dx, dy); "
            f"got {flow.shape}."
        )
    if x.shape.rank != 4:
        raise InvalidFlowError(f"warp needs x of shape (B, H, W, C) or (H, W, C); got {x.shape}.")
    for axis, name in ((1, "height"), (2, "width")):
        a, b = x.shape[axis], flow.shape[axis]
        if a is not None and b is not None and a != b:
            raise InvalidFlowError(
                f"warp: the image {name} is {a} but the flow {name} is {b}; the flow must have the "
                f"same size as the image it samples (image {x.shape}, flow {flow.shape})."
            )
    bx, bf = x.shape[0], flow.shape[0]
    if bx is not None and bf is not None and bf not in (1, bx):
        raise InvalidFlowError(
            f"warp: the image batch has {bx} items but the flow batch has {bf}; give one flow per "
            "image, or a single flow (batch 1) for all of them."
        )


# --------------------------------------------------------------------------------------------
# Backward warp
# --------------------------------------------------------------------------------------------


def warp(x, flow, padding: str = "border") -> tf.Tensor:
    """Bilinear backward warp: ``out[b, y, x] = x[b, y + dy, x + dx]``.

    Args:
        x: images or feature maps ``(B, H, W, C)`` (or ``(H, W, C)``, returned with the same rank).
        flow: backward flow in pixels ``(B, H, W, 2)`` (or ``(H, W, 2)``), channels ``(dx, dy)``;
            a flow batch of 1 is used for every item of ``x``.
        padding: ``"border"`` clamps the sampling positions to the image (replicates the border,
            like ``cv2.BORDER_REPLICATE``); ``"zeros"`` reads 0 outside (``cv2.BORDER_CONSTANT``).

    Returns:
        The warped tensor, same shape and dtype as ``x``. Differentiable with respect to both ``x``
        and ``flow``; safe inside ``tf.function`` (one gather for the four bilinear corners).

    Raises:
        InvalidFlowError: wrong ranks/channels, sizes that differ, NaN/inf flow (checked eagerly).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    flow = tf.cast(tf.convert_to_tensor(flow), x.dtype)
    single = x.shape.rank == 3
    if single:
        x = x[None]
    if flow.shape.rank == 3:
        flow = flow[None]
    _static_checks(x, flow)
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(flow))):
        raise InvalidFlowError(
            "warp: the flow contains NaN or infinite values; replace them (e.g. tf.where with "
            "tf.math.is_finite) before warping."
        )
    out = _bilinear_sample(x, flow, padding == "zeros")
    return out[0] if single else out


def _bilinear_sample(x: tf.Tensor, flow: tf.Tensor, zeros: bool) -> tf.Tensor:
    """Sample ``x`` (B,H,W,C) at ``grid + flow`` with one flat gather of the 4 corners."""
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    flow = tf.broadcast_to(flow, tf.stack([b, h, w, 2]))
    dtype = x.dtype
    hf, wf = tf.cast(h, dtype), tf.cast(w, dtype)
    gy, gx = tf.meshgrid(tf.range(hf, dtype=dtype), tf.range(wf, dtype=dtype), indexing="ij")
    px = gx[None] + flow[..., 0]
    py = gy[None] + flow[..., 1]
    if not zeros:
        # Clamping the position (not the corner index) replicates the border exactly and keeps
        # the gradient wrt the flow at 0 outside, where moving the point changes nothing.
        px = tf.clip_by_value(px, 0.0, wf - 1.0)
        py = tf.clip_by_value(py, 0.0, hf - 1.0)
    x0f, y0f = tf.floor(px), tf.floor(py)
    if not zeros:
        # Keep x0 <= W-2 so that x1 = x0 + 1 is a valid index; at px = W-1 the weight wx is 1.
        x0f = tf.minimum(x0f, tf.maximum(wf - 2.0, 0.0))
        y0f = tf.minimum(y0f, tf.maximum(hf - 2.0, 0.0))
    wx1 = px - x0f  # weights are the only path of the gradient wrt the flow
    wy1 = py - y0f
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0 = tf.cast(x0f, tf.int32)
    y0 = tf.cast(y0f, tf.int32)
    xs = tf.stack([x0, x0 + 1, x0, x0 + 1], axis=-1)  # (B,H,W,4): corners 00, 01, 10, 11
    ys = tf.stack([y0, y0, y0 + 1, y0 + 1], axis=-1)
    wts = tf.stack([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], axis=-1)
    if zeros:
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        wts = wts * tf.cast(inside, dtype)
    xs = tf.clip_by_value(xs, 0, w - 1)
    ys = tf.clip_by_value(ys, 0, h - 1)
    base = tf.reshape(tf.range(b) * (h * w), [-1, 1, 1, 1])
    idx = base + ys * w + xs
    flat = tf.reshape(x, tf.stack([-1, c]))
    corners = tf.gather(flat, idx)  # (B,H,W,4,C)
    return tf.reduce_sum(corners * wts[..., None], axis=-2)


def warp_numpy(image: np.ndarray, flow: np.ndarray, padding: str = "border") -> np.ndarray:
    """NumPy wrapper of :func:`warp`: image (H, W, C) or (H, W), flow (H, W, 2) -> like image."""
    img = np.asarray(image, dtype=np.float32)
    gray = img.ndim == 2
    out = warp(img[..., None] if gray else img, check_flow(flow), padding).numpy()
    return out[..., 0] if gray else out
