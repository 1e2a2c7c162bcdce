"""Optical flow: backward warping, visualisation, evaluation and ``.flo`` files (chapter 2).

Convention (DESIGN.md): a flow is BACKWARD, in pixels, channel 0 = dx, channel 1 = dy::

    out[y, x] = src[y + dy, x + dx]

Shapes: ``(B, H, W, 2)`` in TensorFlow, ``(H, W, 2)`` in NumPy. The estimators (OpenCV and the
gradient-descent variational one) live downstream, in :mod:`didlearn.flow_estimators`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from .errors import InvalidFlowError
from .spline import thin_plate_spline_numpy

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
    zeros = _zeros_padding(padding)
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
    out = _bilinear_sample(x, flow, zeros)
    return out[0] if single else out


def _zeros_padding(padding: str) -> bool:
    """Check a ``padding`` name of :data:`PADDINGS`; True for ``"zeros"``."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return padding == "zeros"


def _bilinear_sample(x: tf.Tensor, flow: tf.Tensor, zeros: bool) -> tf.Tensor:
    """Sample ``x`` (B,H,W,C) at ``grid + flow``: :func:`sample_points` at every pixel."""
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    flow = tf.broadcast_to(flow, tf.stack([b, h, w, 2]))
    dtype = x.dtype
    hf, wf = tf.cast(h, dtype), tf.cast(w, dtype)
    gy, gx = tf.meshgrid(tf.range(hf, dtype=dtype), tf.range(wf, dtype=dtype), indexing="ij")
    return _sample_xy(x, gx[None] + flow[..., 0], gy[None] + flow[..., 1], zeros)


def sample_points(x: tf.Tensor, points: tf.Tensor, padding: str = "border") -> tf.Tensor:
    """Bilinear values of ``x (B, H, W, C)`` at ``points (B, ..., 2)`` -> ``(B, ..., C)``.

    ``points`` are pixel positions ``(x, y)`` (pixel centres at integers), e.g. ``(B, N, 2)``
    landmarks or ``(B, H, W, 2)`` a whole sampling grid. ``padding`` as in :func:`warp`.
    Differentiable with respect to both ``x`` and ``points``; one gather for the four corners.
    """
    points = tf.cast(points, x.dtype)
    return _sample_xy(x, points[..., 0], points[..., 1], _zeros_padding(padding))


def _sample_xy(x: tf.Tensor, px: tf.Tensor, py: tf.Tensor, zeros: bool) -> tf.Tensor:
    """``x (B, H, W, C)`` at positions ``px, py (B, ...)``; the shape stays as it comes (no
    flattening: XLA fuses the (B, H, W) case of :func:`warp` 1.5x faster that way)."""
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    dtype = x.dtype
    hf, wf = tf.cast(h, dtype), tf.cast(w, dtype)
    if not zeros:
        # Clamping the position (not the corner index) replicates the border exactly and keeps
        # the gradient wrt the position at 0 outside, where moving the point changes nothing.
        px = tf.clip_by_value(px, 0.0, wf - 1.0)
        py = tf.clip_by_value(py, 0.0, hf - 1.0)
    x0f, y0f = tf.floor(px), tf.floor(py)
    if not zeros:
        # Keep x0 <= W-2 so that x1 = x0 + 1 is a valid index; at px = W-1 the weight wx is 1.
        x0f = tf.minimum(x0f, tf.maximum(wf - 2.0, 0.0))
        y0f = tf.minimum(y0f, tf.maximum(hf - 2.0, 0.0))
    wx1 = px - x0f  # weights are the only path of the gradient wrt the positions
    wy1 = py - y0f
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0 = tf.cast(x0f, tf.int32)
    y0 = tf.cast(y0f, tf.int32)
    xs = tf.stack([x0, x0 + 1, x0, x0 + 1], axis=-1)  # (B,...,4): corners 00, 01, 10, 11
    ys = tf.stack([y0, y0, y0 + 1, y0 + 1], axis=-1)
    wts = tf.stack([wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1], axis=-1)
    if zeros:
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        wts = wts * tf.cast(inside, dtype)
    xs = tf.clip_by_value(xs, 0, w - 1)
    ys = tf.clip_by_value(ys, 0, h - 1)
    base = tf.reshape(tf.range(b) * (h * w), [-1] + [1] * (xs.shape.rank - 1))
    idx = base + ys * w + xs
    flat = tf.reshape(x, tf.stack([-1, c]))
    corners = tf.gather(flat, idx)  # (B,...,4,C)
    return tf.reduce_sum(corners * wts[..., None], axis=-2)


def warp_numpy(image: np.ndarray, flow: np.ndarray, padding: str = "border") -> np.ndarray:
    """NumPy wrapper of :func:`warp`: image (H, W, C) or (H, W), flow (H, W, 2) -> like image."""
    img = np.asarray(image, dtype=np.float32)
    gray = img.ndim == 2
    out = warp(img[..., None] if gray else img, check_flow(flow), padding).numpy()
    return out[..., 0] if gray else out


def forward_warp(image, forward_flow) -> tuple[np.ndarray, np.ndarray]:
    """Forward warping by nearest-pixel splatting, to show why we warp backward.

    Each source pixel p is written at round(p + f(p)), where ``forward_flow`` f (H, W, 2) says
    where pixels GO (later writes win). Returns ``(image, holes)``: the (H, W, C) result and the
    (H, W) bool mask of the pixels that nobody wrote (left black). Backward warping has none.
    """
    img = np.asarray(image, np.float32)
    f = check_flow(forward_flow, *img.shape[:2])
    h, w = img.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    tx = np.rint(x + f[..., 0]).astype(np.int64)
    ty = np.rint(y + f[..., 1]).astype(np.int64)
    keep = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    out = np.zeros_like(img)
    written = np.zeros((h, w), bool)
    out[ty[keep], tx[keep]] = img[y[keep], x[keep]]
    written[ty[keep], tx[keep]] = True
    return out, ~written


# --------------------------------------------------------------------------------------------
# Middlebury colour coding (Baker et al., "A database and evaluation methodology for optical
# flow", 2011): hue = direction, saturation = magnitude, on a 55-colour wheel.
# --------------------------------------------------------------------------------------------

UNKNOWN_FLOW = 1e9  # Middlebury marks pixels without ground truth with |value| > 1e9


def _make_wheel() -> np.ndarray:
    """The 55 Middlebury colours (RY=15, YG=6, GC=4, CB=11, BM=13, MR=6), (55, 3) in [0, 1]."""
    segments = [  # (length, channel that ramps, ramp up?, channel held at 255)
        (15, 1, True, 0),  # red -> yellow
        (6, 0, False, 1),  # yellow -> green
        (4, 2, True, 1),  # green -> cyan
        (11, 1, False, 2),  # cyan -> blue
        (13, 0, True, 2),  # blue -> magenta
        (6, 2, False, 0),  # magenta -> red
    ]
    rows = []
    for n, ramp, up, full in segments:
        seg = np.zeros((n, 3))
        seg[:, full] = 255
        steps = np.floor(255 * np.arange(n) / n)
        seg[:, ramp] = steps if up else 255 - steps
        rows.append(seg)
    return (np.concatenate(rows) / 255.0).astype(np.float32)


COLOR_WHEEL = _make_wheel()


def valid_mask(flow: np.ndarray) -> np.ndarray:
    """Pixels with a known flow (Middlebury stores unknown ones as values above 1e9), (H, W)."""
    return np.all(np.abs(flow) < UNKNOWN_FLOW, axis=-1) & np.all(np.isfinite(flow), axis=-1)


def flow_to_color(flow, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code a flow (H, W, 2) as an image (H, W, 3) float32 in [0, 1].

    The hue gives the direction, the saturation the length relative to ``max_magnitude``
    (default: the largest vector of this flow); vectors longer than it are drawn darker.
    Unknown pixels (see :func:`valid_mask`) are black. Backward flow in our convention is
    Middlebury's forward flow, so the colours match the published Middlebury pictures.
    """
    arr = np.asarray(flow, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise InvalidFlowError(f"flow_to_color needs a flow (H, W, 2); got shape {arr.shape}.")
    ok = valid_mask(arr)
    u = np.where(ok, arr[..., 0], 0.0)
    v = np.where(ok, arr[..., 1], 0.0)
    rad = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(rad.max(initial=0.0))
    scale = 1.0 / max(float(max_magnitude), 1e-6)
    u, v, rad = u * scale, v * scale, rad * scale
    n = len(COLOR_WHEEL)
    fk = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)  # angle -> position on the wheel
    k0 = np.floor(fk).astype(np.int64)
    k1 = (k0 + 1) % n
    f = (fk - k0)[..., None]
    col = (1 - f) * COLOR_WHEEL[k0] + f * COLOR_WHEEL[k1]
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    col = np.where(ok[..., None], col, 0.0)
    return col.astype(np.float32)


def color_wheel(size: int = 151) -> np.ndarray:
    """The legend of :func:`flow_to_color`: a disc (size, size, 3) whose pixel colours are
    those of a flow pointing from the centre to it (white centre = no motion)."""
    r = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([x - r, y - r], axis=-1) / max(r, 1e-6)
    img = flow_to_color(flow, max_magnitude=1.0)
    img[np.hypot(flow[..., 0], flow[..., 1]) > 1] = 1.0  # white outside the disc
    return img


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def plot_flow(ax, flow, max_magnitude: float | None = None, title: str | None = None):
    """Show the colour-coded flow on a matplotlib axis; returns the image artist."""
    art = ax.imshow(flow_to_color(flow, max_magnitude))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return art


def plot_quiver(ax, flow, step: int = 16, image=None, color: str = "yellow", scale: float = 1.0):
    """Arrows of the flow every ``step`` pixels, drawn on ``image`` (H, W, 3) if given.

    Each arrow starts at a pixel x and ends where the flow reads from, x + u(x), at the true
    pixel scale times ``scale``. Returns the quiver artist.
    """
    arr = check_flow(flow)
    if arr.ndim != 3:
        raise InvalidFlowError(f"plot_quiver needs a flow (H, W, 2); got shape {arr.shape}.")
    h, w = arr.shape[:2]
    if image is not None:
        ax.imshow(np.clip(image, 0, 1))
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    u, v = arr[ys, xs, 0], arr[ys, xs, 1]
    q = ax.quiver(
        xs, ys, u * scale, v * scale, color=color, angles="xy", scale_units="xy", scale=1.0
    )
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return q


def grid_image(height: int, width: int, step: int = 16, thickness: int = 1) -> np.ndarray:
    """A white image (H, W, 3) with dark grid lines every ``step`` pixels."""
    img = np.ones((height, width, 3), np.float32)
    for k in range(thickness):
        img[(step // 2 + k) :: step] = (0.1, 0.2, 0.5)
        img[:, (step // 2 + k) :: step] = (0.1, 0.2, 0.5)
    return img


def warped_grid(flow, step: int = 16, image=None) -> np.ndarray:
    """Picture of a flow as a deformed grid: a regular grid (or ``image``) backward-warped by it.

    Returns (H, W, 3) float32: pixel x shows the grid point read at x + u(x).
    """
    arr = check_flow(flow)
    if arr.ndim != 3:
        raise InvalidFlowError(f"warped_grid needs a flow (H, W, 2); got shape {arr.shape}.")
    src = grid_image(*arr.shape[:2], step=step) if image is None else image
    return warp_numpy(src, arr)


# --------------------------------------------------------------------------------------------
# Evaluation: endpoint and angular error
# --------------------------------------------------------------------------------------------


def _pair_for_metric(est, gt) -> tuple[np.ndarray, np.ndarray]:
    e = check_flow(est)
    g = np.asarray(gt, dtype=np.float32)
    if g.shape != e.shape:
        raise InvalidFlowError(
            f"the estimate has shape {e.shape} but the ground truth {g.shape}; compare flows of "
            "the same size."
        )
    ok = valid_mask(g)
    if not ok.any():
        raise InvalidFlowError("the ground truth has no known pixel (all unknown or NaN).")
    return e[ok], g[ok]


def endpoint_error(est, gt) -> float:
    """Mean endpoint error in pixels, mean ‖est − gt‖ over the pixels where gt is known."""
    e, g = _pair_for_metric(est, gt)
    return float(np.mean(np.linalg.norm(e - g, axis=-1)))


def angular_error(est, gt) -> float:
    """Mean angular error in degrees between the 3-D vectors (u, v, 1) (Barron et al. 1994)."""
    e, g = _pair_for_metric(est, gt)
    e64, g64 = e.astype(np.float64), g.astype(np.float64)
    num = 1.0 + np.sum(e64 * g64, axis=-1)
    den = np.sqrt(1.0 + np.sum(e64**2, axis=-1)) * np.sqrt(1.0 + np.sum(g64**2, axis=-1))
    return float(np.degrees(np.mean(np.arccos(np.clip(num / den, -1.0, 1.0)))))


# --------------------------------------------------------------------------------------------
# Middlebury .flo files: "PIEH" (float 202021.25), int32 width, int32 height, then H*W*2 float32
# --------------------------------------------------------------------------------------------

FLO_MAGIC = 202021.25


def read_flo(path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file as (H, W, 2) float32 (unknown pixels keep values > 1e9).

    Raises:
        UnreadableMediaError: the file does not exist or cannot be read.
        InvalidFlowError: wrong magic number, impossible size, or truncated/oversized data.
    """
    from pathlib import Path

    from .errors import UnreadableMediaError

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UnreadableMediaError(f"cannot read the flow file {p}: {exc}") from exc
    if len(data) < 12:
        raise InvalidFlowError(f"{p} is not a .flo file: {len(data)} bytes, shorter than a header.")
    magic = np.frombuffer(data, "<f4", 1, 0)[0]
    if magic != np.float32(FLO_MAGIC):
        raise InvalidFlowError(
            f"{p} is not a Middlebury .flo file (magic {magic!r} instead of {FLO_MAGIC}); "
            "check the file or write it with didlearn.flow.write_flo."
        )
    w, h = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < w < 100_000 and 0 < h < 100_000):
        raise InvalidFlowError(f"{p}: impossible flow size {w}x{h} in the header (corrupt file).")
    expected = 12 + 8 * w * h
    if len(data) != expected:
        raise InvalidFlowError(
            f"{p}: a {w}x{h} flow needs {expected} bytes but the file has {len(data)} "
            "(truncated or corrupt); re-export it."
        )
    return np.frombuffer(data, "<f4", 2 * w * h, 12).reshape(h, w, 2).copy()


def write_flo(path, flow, overwrite: bool = False):
    """Write a flow (H, W, 2) as a Middlebury ``.flo`` file (:func:`didlearn.data.atomic_output`).

    Returns the path. Raises OutputExistsError if it exists and ``overwrite`` is False,
    InvalidFlowError for a malformed flow (NaN is refused; use 1e10 for unknown pixels).
    """
    from .data import atomic_output

    arr = np.asarray(flow, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise InvalidFlowError(f"write_flo needs a flow (H, W, 2); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidFlowError("the flow has NaN/inf values; mark unknown pixels with 1e10.")
    h, w = arr.shape[:2]
    with atomic_output(path, overwrite) as temp, open(temp, "wb") as f:
        f.write(np.float32(FLO_MAGIC).astype("<f4").tobytes())
        f.write(np.array([w, h], "<i4").tobytes())
        f.write(arr.astype("<f4").tobytes())
    return Path(path).expanduser()


# --------------------------------------------------------------------------------------------
# Synthetic pairs with exact ground truth
# --------------------------------------------------------------------------------------------

SYNTHETIC_KINDS = ("affine", "smooth", "tps")


def random_texture(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A colourful multi-scale random texture (H, W, 3) float32 in [0, 1] (good for flow)."""
    from scipy.ndimage import gaussian_filter

    h, w = size
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float64)
    for sigma, weight in ((1.0, 0.6), (3.0, 1.0), (8.0, 1.5), (20.0, 1.5)):
        noise = gaussian_filter(rng.standard_normal((h, w, 3)), (sigma, sigma, 0), mode="wrap")
        img += weight * noise / (noise.std() + 1e-12)
    img = (img - img.min()) / (img.max() - img.min() + 1e-12)
    return img.astype(np.float32)


def affine_flow(matrix, size: tuple[int, int]) -> np.ndarray:
    """Flow (H, W, 2) of an affine map about the image centre c: u(x) = (A - I)(x - c) + t.

    ``matrix`` is 2x3 ``[A | t]`` in pixel units, (x, y) order.
    """
    m = np.asarray(matrix, np.float64)
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    pts = np.stack([x - c[0], y - c[1]], axis=-1)
    u = pts @ (m[:, :2] - np.eye(2)).T + m[:, 2]
    return u.astype(np.float32)


def thin_plate_flow(points, displacements, size: tuple[int, int]) -> np.ndarray:
    """Thin-plate spline flow (H, W, 2) taking the values ``displacements`` (N, 2) at ``points``
    (N, 2) (x, y pixels), with the minimum bending energy elsewhere (affine far away).

    The exact interpolating spline (λ = 0) of :func:`didlearn.spline.thin_plate_spline`. Points
    close to each other with different displacements make a wild spline; keep them apart
    (two that coincide make the system singular).
    """
    return thin_plate_spline_numpy(points, displacements, size, regularization=0.0)


def random_smooth_flow(size: tuple[int, int], max_magnitude: float = 3.0, seed: int = 0):
    """A random smooth flow (H, W, 2): low-pass filtered noise scaled to ``max_magnitude`` px."""
    from scipy.ndimage import gaussian_filter

    h, w = size
    rng = np.random.default_rng(seed)
    sigma = max(h, w) / 8
    f = gaussian_filter(rng.standard_normal((h, w, 2)), (sigma, sigma, 0), mode="reflect")
    return (f * max_magnitude / (np.abs(f).max() + 1e-12)).astype(np.float32)


def synthetic_pair(
    kind: str = "affine", size: tuple[int, int] = (96, 128), seed: int = 0, image=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two images and their exact flow: ``i1 = warp(i2, gt)`` so that ``i1(x) = i2(x + gt(x))``.

    Args:
        kind: ``"affine"`` (small rotation, zoom, shear and shift), ``"smooth"`` (random smooth
            field) or ``"tps"`` (thin-plate deformation of a few control points).
        size: (H, W) of the pair (ignored when ``image`` is given).
        seed: random seed of the texture and of the motion.
        image: optional (H, W, 3) float image in [0, 1] to use as ``i2``.

    Returns:
        ``(i1, i2, gt)``: (H, W, 3) float32 images and the (H, W, 2) float32 backward flow.
        Displacements stay within about 5 pixels.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind must be one of {SYNTHETIC_KINDS}, got {kind!r}")
    if image is None:
        i2 = random_texture(size, seed)
    else:
        i2 = np.asarray(image, np.float32)
        if i2.ndim != 3 or i2.shape[-1] != 3:
            raise InvalidFlowError(f"image must be (H, W, 3); got shape {i2.shape}.")
        size = i2.shape[:2]
    h, w = size
    rng = np.random.default_rng(seed + 1)
    if kind == "affine":
        angle, zoom = np.radians(rng.uniform(-3, 3)), 1 + rng.uniform(-0.04, 0.04)
        shear = rng.uniform(-0.02, 0.02)
        a = zoom * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        a = a @ np.array([[1, shear], [0, 1]])
        gt = affine_flow(np.hstack([a, rng.uniform(-2, 2, (2, 1))]), size)
    elif kind == "smooth":
        gt = random_smooth_flow(size, max_magnitude=3.0, seed=seed + 2)
    else:
        pts = np.stack([rng.uniform(0.2, 0.8, 5) * w, rng.uniform(0.2, 0.8, 5) * h], axis=-1)
        corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
        disp = np.vstack([rng.uniform(-3, 3, (5, 2)), np.zeros((4, 2))])
        gt = thin_plate_flow(np.vstack([pts, corners]), disp, size)
        gt = np.clip(gt, -4, 4)
    i1 = warp_numpy(i2, gt)
    return i1, i2, gt


__all__ = [
    "COLOR_WHEEL",
    "affine_flow",
    "angular_error",
    "check_flow",
    "color_wheel",
    "endpoint_error",
    "flow_to_color",
    "forward_warp",
    "grid_image",
    "plot_flow",
    "plot_quiver",
    "random_smooth_flow",
    "random_texture",
    "read_flo",
    "sample_points",
    "synthetic_pair",
    "thin_plate_flow",
    "valid_mask",
    "warp",
    "warp_numpy",
    "warped_grid",
    "write_flo",
]
