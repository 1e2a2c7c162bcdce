"""The thin-plate spline: scattered displacements -> a dense field on the pixel grid.

One implementation for every caller: :func:`didlearn.flow.thin_plate_flow` (chapter 2's
synthetic flows and widget: exact interpolation, NumPy) and :func:`didlearn.motion.tps_flow`
(chapter 3 onwards: keypoints plus border anchors, smoothing, batched, differentiable).

The map ``f`` sends control points ``c_i`` to targets ``t_i``; the spline is its displacement
``d(p) = f(p) - p``, fitted to ``d_i = t_i - c_i``. With coordinates normalised to the pixel
grid (isotropic, centred, in [-1, 1]),

.. math:: d(p) = a_0 + A p + \\sum_i w_i\\, U(\\lVert p - c_i \\rVert),
          \\quad U(r) = r^2 \\log r^2

whose weights solve ``[[K + λI, P], [Pᵀ, 0]] [w; a] = [d; 0]`` (``K_ij = U(|c_i - c_j|)``,
``P = [1 c]``). λ = 0 interpolates exactly; λ > 0 is the smoothing spline, which trades the fit
at the control points for less bending (and stays solvable when two control points coincide).
The exact interpolant does not depend on the normalisation (a similarity of the coordinates
only adds an affine term), so λ = 0 gives the textbook spline in pixels.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf


def kernel(r2: tf.Tensor) -> tf.Tensor:
    """The radial basis ``U(r) = r² log r²`` (0 at r = 0), from squared distances ``r2``."""
    return r2 * tf.math.log(tf.maximum(r2, 1e-20))


@functools.lru_cache(maxsize=8)
def _grid(
    height: int, width: int, step: int, dtype: str = "float32"
) -> tuple[np.ndarray, tuple[int, int], float, np.ndarray]:
    """Normalised grid (h*w, 2) in ``dtype``, its (h, w), the normalisation scale and centre."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2], dtype=dtype)
    scale = np.dtype(dtype).type(max(width - 1, height - 1, 1) / 2)
    # step > 1: a coarse grid whose first and last samples sit on the first and last pixels
    ys = np.linspace(0, height - 1, -(-(height - 1) // step) + 1, dtype=dtype)
    xs = np.linspace(0, width - 1, -(-(width - 1) // step) + 1, dtype=dtype)
    gx, gy = np.meshgrid(xs, ys)
    grid = (np.stack([gx.ravel(), gy.ravel()], 1) - centre) / scale
    return grid.astype(dtype), (len(ys), len(xs)), float(scale), centre


@functools.lru_cache(maxsize=8)
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights from n_in samples spanning the same end points."""
    if n_in == n_out:
        return np.eye(n_out, dtype=np.float32)
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - i0
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), i0] = 1 - frac
    m[np.arange(n_out), i0 + 1] = frac
    return m


def _solve(points: tf.Tensor, targets: tf.Tensor, regularization: float = 0.0) -> tf.Tensor:
    """Weights ``[w; a]`` (B, N+3, 2) of the spline of displacements ``targets - points``.

    Args:
        points: (B, N, 2) control points, normalised coordinates.
        targets: (B, N, 2) where the map sends them, same units and dtype.
        regularization: λ added to K's diagonal.

    Returns the weights in the dtype of ``points``. The system is solved in float64 with
    ``tf.linalg.solve`` (100 points are cheap; float64 keeps near-coincident points — a closed
    mouth's inner lips — solvable). Raises ``tf.errors.InvalidArgumentError`` when it is singular
    (coinciding points and λ = 0).
    """
    c64, t64 = tf.cast(points, tf.float64), tf.cast(targets, tf.float64)
    n = tf.shape(c64)[1]
    d2 = tf.reduce_sum((c64[:, :, None] - c64[:, None, :]) ** 2, axis=-1)
    k = kernel(d2) + regularization * tf.eye(n, dtype=tf.float64)
    p = tf.concat([tf.ones_like(c64[..., :1]), c64], axis=-1)  # (B, N, 3)
    top = tf.concat([k, p], axis=2)
    bottom = tf.concat([tf.transpose(p, [0, 2, 1]), tf.zeros_like(k[:, :3, :3])], axis=2)
    system = tf.concat([top, bottom], axis=1)  # (B, N+3, N+3)
    # fit the displacement t - c, not the position t: same spline minus the identity, but its
    # weights scale with the motion, so a float32 evaluation does not cancel large terms
    rhs = tf.concat([t64 - c64, tf.zeros_like(t64[:, :3])], axis=1)  # (B, N+3, 2)
    return tf.cast(tf.linalg.solve(system, rhs), points.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _evaluate(grid: tf.Tensor, points: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The spline ``U(|p - c|) @ w + [1 p] @ a`` (B, M, 2) at the (M, 2) ``grid`` points.

    ``points`` (B, N, 2) and ``weights`` (B, N+3, 2) as in :func:`_solve`; normalised units,
    float32 or float64.
    XLA-compiled: it fuses the (B, M, N) distance/log/product chain into one pass, 3x faster on
    CPU than op-by-op (about 8 ms instead of 30 ms for 256x256 and 100 points).
    """
    # direct differences, not |p|² + |c|² - 2 p·c: no cancellation near the control points, and
    # XLA fuses the (B, M, N, 2) difference into the kernel without storing it
    d = grid[None, :, None, :] - points[:, None, :, :]
    r2 = tf.reduce_sum(d * d, axis=-1)
    n = tf.shape(points)[1]
    f = tf.matmul(kernel(r2), weights[:, :n])  # (B, M, 2)
    aff = weights[:, n:]  # (B, 3, 2)
    return f + aff[:, :1] + tf.einsum("md,bde->bme", grid, aff[:, 1:])


def _batched(x, dtype: tf.DType) -> tf.Tensor:
    """(N, 2) or (B, N, 2) -> (B, N, 2) tensor of ``dtype``."""
    t = tf.convert_to_tensor(x, dtype=dtype)
    return t[None] if t.shape.rank == 2 else t


def thin_plate_spline(
    points,
    targets,
    height: int,
    width: int,
    regularization: float = 0.0,
    step: int = 1,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """Displacement field ``f(p) - p`` (B, H, W, 2) of the thin-plate map ``f``: points -> targets.

    ``f(c_i) = t_i`` exactly for λ = 0 (approximately for λ > 0), with the least bending energy
    in between and affine far away.

    Args:
        points: (N, 2) or (B, N, 2) control points ``c``, (x, y) pixels.
        targets: (N, 2) or (B, N, 2) where ``f`` sends them, pixels; batches of 1 broadcast.
        height, width: size of the pixel grid.
        regularization: λ of the normalised system (0 = interpolate exactly).
        step: evaluate every ``step`` pixels, then interpolate bilinearly (``step=4`` is ~5x
            faster and smooth fields barely change; no longer exact at the points).
        dtype: of the coordinates and the grid evaluation (the system is float64 either way):
            float32 for speed, float64 for the exact NumPy spline.

    Returns:
        (B, H, W, 2) tensor of ``dtype`` in pixels; differentiable wrt ``points`` and ``targets``.
    """
    c = _batched(points, dtype)
    t = _batched(targets, dtype)
    b = tf.maximum(tf.shape(c)[0], tf.shape(t)[0])
    c = tf.broadcast_to(c, tf.stack([b, tf.shape(c)[1], 2]))
    t = tf.broadcast_to(t, tf.stack([b, tf.shape(t)[1], 2]))
    grid, (hs, ws), scale, centre = _grid(int(height), int(width), int(step), dtype.name)
    c = (c - centre) / scale
    weights = _solve(c, (t - centre) / scale, regularization)
    field = _evaluate(tf.constant(grid), c, weights) * scale  # normalised -> pixels
    field = tf.reshape(field, tf.stack([b, hs, ws, 2]))
    if step > 1:
        # bilinear upsampling as two small matmuls; the coarse corners are the image's corners
        ry = tf.constant(_interp_matrix(hs, int(height)), dtype)
        rx = tf.constant(_interp_matrix(ws, int(width)), dtype)
        field = tf.einsum("yi,bijc,xj->byxc", ry, field, rx)
    return field


def thin_plate_spline_numpy(
    points, displacements, size: tuple[int, int], regularization: float = 0.0, step: int = 1
) -> np.ndarray:
    """The spline through ``displacements`` (N, 2) at ``points`` (N, 2), (H, W, 2) float32.

    NumPy front of :func:`thin_plate_spline`, computed in float64 throughout (``size`` is (H, W)).
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    targets = pts + np.asarray(displacements, np.float64).reshape(-1, 2)
    h, w = size
    field = thin_plate_spline(pts, targets, h, w, regularization, step, dtype=tf.float64)
    return field[0].numpy().astype(np.float32)


__all__ = ["kernel", "thin_plate_spline", "thin_plate_spline_numpy"]
