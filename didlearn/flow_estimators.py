"""Optical flow estimators: OpenCV's classical ones and a variational one fit by gradient descent.

Every estimator takes two images ``i1, i2`` (H, W, 3) float in [0, 1] (or (H, W) gray) and returns
the BACKWARD flow ``u`` (H, W, 2) float32, in pixels, with ``i1(x) ≈ i2(x + u(x))``: warping
``i2`` by ``u`` (:func:`didlearn.flow.warp`) reproduces ``i1``. This is exactly Middlebury's
forward flow from frame 10 to frame 11.

The variational estimator minimises, coarse to fine,

    E(u) = mean ρ(I2(x+u) − I1) + γ mean ρ(∇I2(x+u) − ∇I1) + λ mean (ρ(∂x u) + ρ(∂y u)),

with the Charbonnier penalty ρ(z) = (z² + ε²)^a, by Adam steps on ``u`` through
``tf.GradientTape`` and (weighted) median filtering of ``u`` between stages ("Secrets of optical
flow", Sun, Roth and Black 2010). The gradient of the warped image wrt ``u`` uses warped 5-point
derivatives (a custom gradient) rather than the piecewise-constant slope of bilinear
interpolation; large pyramid levels run under XLA. On the four Middlebury training pairs in
``shared/data/flow`` the defaults reach a mean EPE of about 0.17 px in about 20 s a pair on two
CPU cores (``benchmarks/flow_benchmark.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from .data import quantize
from .errors import InvalidFlowError
from .flow import warp

# --------------------------------------------------------------------------------------------
# Input checks shared by the estimators
# --------------------------------------------------------------------------------------------


def _as_gray_pair(i1, i2) -> tuple[np.ndarray, np.ndarray]:
    """Check two images of the same size and return them as float32 gray (H, W) in [0, 1]."""
    a, b = np.asarray(i1), np.asarray(i2)
    for name, img in (("i1", a), ("i2", b)):
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] not in (1, 3)):
            raise InvalidFlowError(
                f"{name} must be an image (H, W) or (H, W, 3); got shape {img.shape}. "
                "Load it with didlearn.data.load_image."
            )
        if img.shape[0] < 2 or img.shape[1] < 2:
            raise InvalidFlowError(f"{name} is too small for flow ({img.shape}); need 2x2 pixels.")
    if a.shape[:2] != b.shape[:2]:
        raise InvalidFlowError(
            f"the two images differ in size: {a.shape[:2]} and {b.shape[:2]} (H, W); flow "
            "compares the same pixels, so resize one of them first."
        )
    return _gray(a), _gray(b)


def _gray(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    if img.dtype != np.float32 or np.asarray(img).max(initial=0) > 1.5:
        img = img / 255.0  # uint8-valued input
    if not np.all(np.isfinite(img)):
        raise InvalidFlowError("an image contains NaN or infinite values; clean it first.")
    if img.ndim == 3:
        img = img[..., 0] if img.shape[-1] == 1 else img @ np.float32([0.299, 0.587, 0.114])
    return np.ascontiguousarray(img, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# OpenCV estimators
# --------------------------------------------------------------------------------------------


def farneback_flow(i1, i2, **params) -> np.ndarray:
    """Farnebäck's polynomial-expansion flow (OpenCV), backward convention (H, W, 2).

    ``params`` override OpenCV's arguments (pyr_scale, levels, winsize, iterations, poly_n,
    poly_sigma, flags); the defaults are the classic (0.5, 3, 15, 3, 5, 1.2, 0).
    """
    g1, g2 = _as_gray_pair(i1, i2)
    args = dict(
        pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
    )
    args.update(params)
    return cv2.calcOpticalFlowFarneback(quantize(g1), quantize(g2), None, **args)


DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def dis_flow(i1, i2, preset: str = "fine") -> np.ndarray:
    """Dense Inverse Search (Kroeger et al. 2016, OpenCV), backward convention (H, W, 2).

    ``preset``: OpenCV's ``"ultrafast"``, ``"fast"``, ``"medium"``, or ``"fine"`` (medium plus
    the finest pyramid level, 8-pixel patches at stride 3, more descent and variational
    refinement iterations: still under 0.1 s for 640x480 and the most accurate setting we found).
    """
    g1, g2 = _as_gray_pair(i1, i2)
    if preset == "fine":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        dis.setPatchSize(8)
        dis.setPatchStride(3)
        dis.setGradientDescentIterations(25)
        dis.setVariationalRefinementIterations(10)
    elif preset in DIS_PRESETS:
        dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    else:
        raise ValueError(f"preset must be one of {[*DIS_PRESETS, 'fine']}, got {preset!r}")
    return dis.calc(quantize(g1), quantize(g2), None)


def has_tvl1() -> bool:
    """True when OpenCV's contrib module (``cv2.optflow``) provides TV-L1."""
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def tvl1_flow(i1, i2) -> np.ndarray:
    """TV-L1 flow (Zach et al. 2007) from opencv-contrib, backward convention (H, W, 2).

    Raises ``RuntimeError`` when OpenCV was installed without the contrib module.
    """
    if not has_tvl1():
        raise RuntimeError(
            "TV-L1 needs OpenCV's contrib module (cv2.optflow): install opencv-contrib-python-"
            "headless instead of opencv-python-headless, or use dis_flow / farneback_flow."
        )
    g1, g2 = _as_gray_pair(i1, i2)
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(quantize(g1), quantize(g2), None)


# --------------------------------------------------------------------------------------------
# Variational estimator solved by gradient descent
# --------------------------------------------------------------------------------------------


@dataclass
class VariationalParams:
    """Knobs of :func:`estimate_flow_variational` (defaults tuned on Middlebury, see benchmark).

    Attributes:
        smoothness: λ, weight of the smoothness term.
        gradient_weight: γ, weight of gradient constancy against brightness constancy.
        epsilon: ε of the Charbonnier penalty (image units, [0, 1]).
        exponent: a of the generalised Charbonnier (0.5 = the classic convex one).
        pyramid_scale: size ratio between pyramid levels.
        min_size: the coarsest level is at least this many pixels on its short side.
        warps: stages per level; the flow is median filtered after each one.
        steps: Adam steps per stage at the finest level (coarser levels get ``coarse_steps``).
        coarse_steps: Adam steps per stage on the coarser levels.
        learning_rate: Adam step size, in pixels of the current level.
        median: median-filter size between stages (0 = none).
        weighted_median: σ (image units) of the colour weight of a weighted median filter
            (Classic+NL, Sun et al. 2010) used instead of the plain median: neighbours that
            look like the centre pixel count more, so the flow keeps its edges; 0 = plain.
        edge_weight: κ of the smoothness weight exp(−κ |∇I1|^½): smooth less across image
            edges, where objects (and so motion) often change; 0 = uniform.
    """

    smoothness: float = 0.03
    gradient_weight: float = 1.0
    epsilon: float = 1e-3
    exponent: float = 0.5
    pyramid_scale: float = 0.8
    min_size: int = 24
    warps: int = 3
    steps: int = 60
    coarse_steps: int = 40
    learning_rate: float = 0.05
    median: int = 7
    edge_weight: float = 0.0
    weighted_median: float = 0.03


def _charbonnier(z: tf.Tensor, eps: float, a: float) -> tf.Tensor:
    """(z² + ε²)^a; ``a`` is a Python float so that the usual a = 1/2 compiles to a square root."""
    if a == 0.5:
        return tf.sqrt(tf.square(z) + eps * eps)
    return tf.pow(tf.square(z) + eps * eps, a)


_DERIV = np.float32([1, -8, 0, 8, -1]) / 12  # 5-point derivative (correlation), Sun et al.


def _dx(img: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, -1, _DERIV[None, :], borderType=cv2.BORDER_REPLICATE)


def _dy(img: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, -1, _DERIV[:, None], borderType=cv2.BORDER_REPLICATE)


def _stacks(g1: np.ndarray, g2: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    """Constancy channels of both images and the spatial derivatives of the second one.

    Returns ``s1`` (1,H,W,3) = [I1, ∂x I1, ∂y I1] and ``s2`` (1,H,W,9) = [I2, ∂x I2, ∂y I2,
    their x derivatives, their y derivatives]. Warping the derivatives with the image gives
    the gradient of the data term wrt the flow from smooth 5-point differences instead of the
    piecewise-constant slope of bilinear interpolation.
    """
    c1 = [g1, _dx(g1), _dy(g1)]
    c2 = [g2, _dx(g2), _dy(g2)]
    c2 += [_dx(c) for c in c2[:3]] + [_dy(c) for c in c2[:3]]
    return (
        tf.constant(np.stack(c1, axis=-1)[None]),
        tf.constant(np.stack(c2, axis=-1)[None]),
    )


def _warped_constancy(u: tf.Tensor, s2: tf.Tensor) -> tf.Tensor:
    """[I2, ∂x I2, ∂y I2] read at x + u, (1,H,W,3), differentiable in ``u`` (custom gradient)."""

    @tf.custom_gradient
    def sample(flow):
        w = warp(s2, flow)

        def grad(upstream):
            gx = tf.reduce_sum(upstream * w[..., 3:6], axis=-1)
            gy = tf.reduce_sum(upstream * w[..., 6:9], axis=-1)
            return tf.stack([gx, gy], axis=-1)

        return w[..., :3], grad

    return sample(u)


def _energy(u, s1, s2, weight, lam, gamma, eps, a: float):
    """Total energy of the flow ``u`` (1,H,W,2) for the stacks ``s1`` (1,H,W,3), ``s2`` (..,9)
    and the smoothness weights ``weight`` (1,H,W,1)."""
    h = tf.cast(tf.shape(u)[1], u.dtype)
    w = tf.cast(tf.shape(u)[2], u.dtype)
    gy, gx = tf.meshgrid(tf.range(h), tf.range(w), indexing="ij")
    px, py = gx + u[0, ..., 0], gy + u[0, ..., 1]
    # pixels that leave the image have no data term (their value would be a replicated border)
    inside = tf.cast((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1), u.dtype)
    diff = _warped_constancy(u, s2) - s1
    rho = _charbonnier(diff, eps, a)
    data = rho[..., 0] + gamma * (rho[..., 1] + rho[..., 2])
    data = tf.reduce_mean(data[0] * inside)
    dux = u[:, :, 1:] - u[:, :, :-1]
    duy = u[:, 1:] - u[:, :-1]
    smooth = tf.reduce_mean(weight[:, :, :-1] * _charbonnier(dux, 1e-3, a)) + tf.reduce_mean(
        weight[:, :-1] * _charbonnier(duy, 1e-3, a)
    )
    return data + lam * smooth


_SIG = [
    tf.TensorSpec([1, None, None, 2], tf.float32),
    tf.TensorSpec([1, None, None, 3], tf.float32),
    tf.TensorSpec([1, None, None, 9], tf.float32),
    tf.TensorSpec([1, None, None, 1], tf.float32),
    tf.TensorSpec([], tf.int32),
] + [tf.TensorSpec([], tf.float32)] * 4


def _adam_stage(u, s1, s2, weight, steps, lr, lam, gamma, eps, a: float):
    """``steps`` Adam updates of ``u`` with a linearly decaying step; returns (u, energies)."""
    m = tf.zeros_like(u)
    v = tf.zeros_like(u)
    losses = tf.TensorArray(tf.float32, size=steps)
    b1, b2 = 0.9, 0.999
    for t in tf.range(steps):
        with tf.GradientTape() as tape:
            tape.watch(u)
            loss = _energy(u, s1, s2, weight, lam, gamma, eps, a)
        g = tape.gradient(loss, u)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        tf_ = tf.cast(t + 1, tf.float32)
        mhat = m / (1 - tf.pow(b1, tf_))
        vhat = v / (1 - tf.pow(b2, tf_))
        step = lr * (1.0 - tf_ / tf.cast(steps + 1, tf.float32))
        u = u - step * mhat / (tf.sqrt(vhat) + 1e-8)
        losses = losses.write(t, loss)
    return u, losses.stack()


# XLA fuses the step into a few loops (about 5x faster on CPU) but compiles once per image
# size; small pyramid levels run as a plain graph, traced once for every size.
XLA_MIN_PIXELS = 30_000


@functools.lru_cache
def _stage_function(exponent: float, xla: bool):
    """The compiled Adam stage for one Charbonnier exponent (a constant of the graph)."""
    return tf.function(
        functools.partial(_adam_stage, a=exponent), input_signature=_SIG, jit_compile=xla
    )


def _smoothness_weight(gray: np.ndarray, edge: float) -> tf.Tensor:
    """exp(−edge |∇I|^½) (1,H,W,1): image edges are often motion edges, smooth less there."""
    if edge <= 0:
        return tf.ones((1, *gray.shape, 1), tf.float32)
    mag = np.sqrt(np.hypot(_dx(gray), _dy(gray)))
    return tf.constant(np.exp(-edge * mag)[None, ..., None].astype(np.float32))


def _pyramid(gray: np.ndarray, scale: float, min_size: int) -> list[np.ndarray]:
    """Gaussian pyramid, finest first; each level is blurred before resizing (anti-alias)."""
    levels = [gray]
    while min(levels[-1].shape) * scale >= min_size:
        prev = levels[-1]
        sigma = 1.0 / math.sqrt(2.0) / scale if scale < 1 else 0.0
        blurred = cv2.GaussianBlur(prev, (0, 0), sigma * 0.5) if sigma > 0 else prev
        size = (max(1, round(prev.shape[1] * scale)), max(1, round(prev.shape[0] * scale)))
        levels.append(cv2.resize(blurred, size, interpolation=cv2.INTER_LINEAR))
    return levels


def _resize_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a flow (H,W,2) to ``shape`` (H', W') and scale its vectors accordingly."""
    h, w = flow.shape[:2]
    out = cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= shape[1] / w
    out[..., 1] *= shape[0] / h
    return out


def estimate_flow_variational(
    i1,
    i2,
    params: VariationalParams | None = None,
    init: np.ndarray | None = None,
    return_loss: bool = False,
    **overrides,
):
    """Estimate the backward flow by gradient descent on a robust variational energy.

    Args:
        i1, i2: images (H, W, 3) or (H, W), float in [0, 1].
        params: a :class:`VariationalParams`; ``overrides`` replace single fields of it, e.g.
            ``estimate_flow_variational(i1, i2, smoothness=0.05)``.
        init: optional initial flow (H, W, 2) at full resolution (starts at the coarsest level).
        return_loss: also return the energy after every Adam step (all levels, coarse to fine).

    Returns:
        flow (H, W, 2) float32 with ``i1(x) ≈ i2(x + flow(x))``; with ``return_loss``, the pair
        ``(flow, losses)`` where ``losses`` is a 1-D float array.
    """
    p = params or VariationalParams()
    if overrides:
        p = VariationalParams(**{**p.__dict__, **overrides})
    g1, g2 = _as_gray_pair(i1, i2)
    pyr1 = _pyramid(g1, p.pyramid_scale, p.min_size)
    pyr2 = _pyramid(g2, p.pyramid_scale, p.min_size)
    n = len(pyr1)
    if init is None:
        flow = np.zeros((*pyr1[-1].shape, 2), np.float32)
    else:
        flow = _resize_flow(np.asarray(init, np.float32), pyr1[-1].shape)
    history = []
    for level in range(n - 1, -1, -1):
        flow = _resize_flow(flow, pyr1[level].shape)
        s1, s2 = _stacks(pyr1[level], pyr2[level])
        weight = _smoothness_weight(pyr1[level], p.edge_weight)
        steps = p.steps if level == 0 else p.coarse_steps
        for _ in range(p.warps):
            stage = _stage_function(float(p.exponent), flow.size >= 2 * XLA_MIN_PIXELS)
            scalars = (p.learning_rate, p.smoothness, p.gradient_weight, p.epsilon)
            u, losses = stage(
                tf.constant(flow[None]),
                s1,
                s2,
                weight,
                tf.constant(steps, tf.int32),
                *(tf.constant(v, tf.float32) for v in scalars),
            )
            flow = u.numpy()[0]
            history.append(losses.numpy())
            if p.median and p.weighted_median > 0:
                flow = _weighted_median(flow, pyr1[level], p.median, p.weighted_median)
            elif p.median:
                flow = _median(flow, p.median)
    flow = flow.astype(np.float32)
    if return_loss:
        return flow, np.concatenate(history)
    return flow


def _median(flow: np.ndarray, size: int) -> np.ndarray:
    """Median filter of each flow channel over ``size`` x ``size`` windows (removes outliers)."""
    if size in (3, 5):  # OpenCV's float median is fast for these sizes
        chans = [cv2.medianBlur(np.ascontiguousarray(flow[..., k]), size) for k in range(2)]
        return np.stack(chans, axis=-1)
    from scipy.ndimage import median_filter

    return median_filter(flow, size=(size, size, 1), mode="nearest")


def _weighted_median(flow: np.ndarray, gray: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Weighted median of each flow channel over ``size`` x ``size`` windows, weights
    exp(−(I(x') − I(x))² / 2σ²) from the image ``gray`` (H, W): an edge-preserving median."""
    start = _median(flow, size)  # the plain median is close: few iterations are enough
    fn = _weighted_median_graph
    out = fn(
        tf.constant(flow[None]),
        tf.constant(start[None]),
        tf.constant(gray[None, ..., None]),
        size,
        tf.constant(sigma),
    )
    return out.numpy()[0]


def _weighted_median_tf(flow, start, gray, size: int, sigma):
    """The weighted median minimises Σ w_i |m − v_i|; a few reweighted-mean (Weiszfeld /
    IRLS) iterations from the plain median ``start`` find it without sorting (fast in XLA)."""
    r = size // 2
    pad = [[0, 0], [r, r], [r, r], [0, 0]]

    def windows(x):  # (1,H,W,C) -> (1,H,W,size*size,C), borders replicated
        xp = tf.pad(x, pad, mode="SYMMETRIC")
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        return tf.stack(
            [xp[:, i : i + h, j : j + w] for i in range(size) for j in range(size)], axis=3
        )

    weight = tf.exp(-tf.square(windows(gray) - gray[..., None, :]) / (2.0 * sigma * sigma))
    vals = windows(flow)  # (1,H,W,K,2)
    m = start[..., None, :]
    for _ in range(6):
        wi = weight / (tf.abs(vals - m) + 1e-3)
        m = tf.reduce_sum(wi * vals, 3, keepdims=True) / tf.reduce_sum(wi, 3, keepdims=True)
    return m[..., 0, :]


_weighted_median_xla = tf.function(_weighted_median_tf, jit_compile=True, reduce_retracing=True)
_weighted_median_graph = tf.function(_weighted_median_tf, reduce_retracing=True)
