"""Motion: carry a driving face's motion over to the photo; keypoints -> dense flow (chapter 3).

* :func:`transfer_relative` (FOMM's relative mode) adds the driving face's *displacements*, rescaled
  to the photo's face size, to the photo's own keypoints: the photo keeps its face shape.
* :func:`transfer_absolute` uses the driving landmarks themselves (similarity-aligned): the photo
  would take on the driving person's face shape; kept for comparison.
* :func:`tps_flow` is the sparse -> dense step: the thin-plate spline of :mod:`didlearn.spline`
  through the keypoint correspondences plus fixed anchors on the image border, smoothed by
  :data:`TPS_SMOOTHING`, evaluated on the whole pixel grid in TensorFlow (batched,
  differentiable). :func:`keypoint_heatmaps` encodes keypoints as images
  for the learned models of chapter 4.

Keypoints are ``(N, 2)`` (or batched ``(B, N, 2)`` / ``(T, N, 2)``) float ``(x, y)`` pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

from .flow import warp

# FACE_OUTLINE is also read from here by protocol and the tests
from .landmarks import FACE_OUTLINE, OUTER_LIPS
from .spline import thin_plate_spline

# --------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------


def hull_area(points: np.ndarray) -> float:
    """Area (pixels²) of the convex hull of (N, 2) points."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)
    return float(cv2.contourArea(cv2.convexHull(pts)))


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity transform ``dst ≈ scale * R @ src + t`` (Umeyama 1991).

    Args:
        src, dst: (N, 2) corresponding points.

    Returns:
        ``(scale, R (2, 2) rotation, t (2,))``; reflections are excluded.
    """
    a = np.asarray(src, dtype=np.float64)
    b = np.asarray(dst, dtype=np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    ac, bc = a - ma, b - mb
    cov = bc.T @ ac / len(a)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = (ac**2).sum() / len(a)
    scale = float((sig * d).sum() / var) if var > 0 else 1.0
    return scale, rot, mb - scale * rot @ ma


# --------------------------------------------------------------------------------------------
# Motion transfer
# --------------------------------------------------------------------------------------------


def transfer_relative(
    source_kp: np.ndarray, driving_kp: np.ndarray, driving_kp0: np.ndarray, rotation: bool = False
) -> np.ndarray:
    """Relative motion transfer (FOMM's "relative" mode).

    .. math:: k^p_t = k^s + S\\,R\\,(k^d_t - k^d_0), \\qquad
              S = \\sqrt{\\operatorname{hull}(k^s) / \\operatorname{hull}(k^d_0)}

    Only the driving face's *motion* (its displacement from the first, neutral frame) is borrowed,
    rescaled by ``S`` (ratio of the faces' sizes measured as convex-hull areas); the photo keeps its
    own face shape, eye distance, jaw line — its identity. With ``rotation=True``, ``R`` is the
    in-plane rotation that best aligns ``kd_0`` to ``ks`` (Umeyama), so a driving face filmed
    tilted moves the photo along the photo's own axes; otherwise ``R = I``.

    Args:
        source_kp: (N, 2) keypoints of the photo.
        driving_kp: (N, 2) or (T, N, 2) driving keypoints at time t.
        driving_kp0: (N, 2) driving keypoints of the reference frame (usually frame 0).
        rotation: normalise the in-plane rotation too.

    Returns:
        Keypoints in photo coordinates, float32, same shape as ``driving_kp``.
    """
    ks = np.asarray(source_kp, dtype=np.float64)
    kd = np.asarray(driving_kp, dtype=np.float64)
    kd0 = np.asarray(driving_kp0, dtype=np.float64)
    scale = np.sqrt(hull_area(ks) / max(hull_area(kd0), 1e-9))
    rot = umeyama(kd0, ks)[1] if rotation else np.eye(2)
    return (ks + scale * (kd - kd0) @ rot.T).astype(np.float32)


def transfer_absolute(
    source_kp: np.ndarray, driving_kp: np.ndarray, driving_kp0: np.ndarray | None = None
) -> np.ndarray:
    """Absolute motion transfer: the driving landmarks themselves, similarity-aligned to the photo.

    The similarity ``T`` (scale, rotation, translation; Umeyama/Procrustes) that maps ``kd_0`` best
    onto ``ks`` is applied to every driving frame: ``kp_t = T(kd_t)``. Position and size match the
    photo, but the *shape* is the driving person's (their eye distance, jaw, mouth width) — the
    photo's identity leaks away. This is why animation uses :func:`transfer_relative`.

    Args:
        source_kp: (N, 2) photo keypoints.
        driving_kp: (N, 2) or (T, N, 2) driving keypoints.
        driving_kp0: (N, 2) reference driving frame for the alignment; default: the first frame
            of ``driving_kp`` (or ``driving_kp`` itself when it is a single frame).

    Returns:
        float32 keypoints, same shape as ``driving_kp``.
    """
    kd = np.asarray(driving_kp, dtype=np.float64)
    if driving_kp0 is None:
        driving_kp0 = kd[0] if kd.ndim == 3 else kd
    scale, rot, t = umeyama(driving_kp0, source_kp)
    return (scale * kd @ rot.T + t).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Thin-plate spline: sparse -> dense
# --------------------------------------------------------------------------------------------


#: λ of the smoothing spline used to animate faces (normalised coordinates, see :func:`tps_flow`).
#: Real landmarks coincide (a closed eye puts both eyelids on one pixel), so the exact spline
#: (λ = 0) is singular: 1e28 px flows were measured on a blink. Beyond that, dlib's landmarks
#: jitter by a pixel or so, and an interpolating spline bends the whole face to pass through
#: every jittered point. Self-reenactment of six talking-head clips (every 16th frame), mean
#: L1 / AKD: λ = 1e-4 → 0.0416 / 1.61 px; 1e-2 → 0.0409 / 1.53 px (L1 lower on all six clips);
#: 1e-1 → 0.0406 / 1.69 px (too smooth: the landmarks no longer land).
TPS_SMOOTHING = 1e-2


def border_anchors(height: int, width: int, per_side: int = 8) -> np.ndarray:
    """(4 * per_side, 2) (x, y) points evenly spaced along the image border, corners included."""
    t = np.linspace(0.0, 1.0, per_side + 1)[:-1]  # each side contributes its start point
    w1, h1 = width - 1.0, height - 1.0
    top = np.stack([t * w1, np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, w1), t * h1], 1)
    bottom = np.stack([(1 - t) * w1, np.full_like(t, h1)], 1)
    left = np.stack([np.zeros_like(t), (1 - t) * h1], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float32)


def tps_flow(
    source_kp,
    target_kp,
    height: int,
    width: int,
    anchors: bool = True,
    per_side: int = 8,
    regularization: float = TPS_SMOOTHING,
    step: int = 1,
) -> tf.Tensor:
    """Dense BACKWARD flow of the output frame from keypoint correspondences (thin-plate spline).

    The spline ``f`` maps output pixels to photo pixels with ``f(kp_i) ≈ ks_i`` and ``f(a) ≈ a``
    for the border anchors; the flow is ``f(p) - p``, so
    ``flow.warp(photo, tps_flow(ks, kp, H, W))`` moves the photo's keypoints ``ks`` to ``kp``.
    It is :func:`didlearn.spline.thin_plate_spline` from the control points ``kp`` to the
    targets ``ks``, plus the anchors that map to themselves.

    Args:
        source_kp: (N, 2) or (B, N, 2) photo keypoints ``ks`` (pixels).
        target_kp: (N, 2) or (B, N, 2) keypoints ``kp`` in the output frame.
        height, width: flow size.
        anchors: add ``4 * per_side`` fixed border points (zero displacement) so the background
            stays still; without them the spline extrapolates (affinely) to the whole frame.
        regularization: λ added to K's diagonal in normalised coordinates. The default
            :data:`TPS_SMOOTHING` is the smoothing spline every face warp uses (the exact one is
            singular on blinks); pass 0.0 to interpolate the keypoints exactly.
        step: evaluate every ``step`` pixels, then interpolate bilinearly (``step=4`` is ~5x
            faster and smooth motions barely change; no longer exact at the keypoints).

    Returns:
        (B, H, W, 2) float32 tensor (dx, dy) in pixels; differentiable wrt both keypoint sets.
    """
    ks = tf.convert_to_tensor(source_kp, dtype=tf.float32)
    kp = tf.convert_to_tensor(target_kp, dtype=tf.float32)
    if ks.shape.rank == 2:
        ks = ks[None]
    if kp.shape.rank == 2:
        kp = kp[None]
    b = tf.maximum(tf.shape(ks)[0], tf.shape(kp)[0])
    ks = tf.broadcast_to(ks, tf.stack([b, tf.shape(ks)[1], 2]))
    kp = tf.broadcast_to(kp, tf.stack([b, tf.shape(kp)[1], 2]))
    if anchors:
        anc = tf.constant(border_anchors(height, width, per_side))[None]
        anc = tf.tile(anc, tf.stack([b, 1, 1]))
        ks = tf.concat([ks, anc], axis=1)
        kp = tf.concat([kp, anc], axis=1)
    return thin_plate_spline(kp, ks, height, width, regularization, step)


# --------------------------------------------------------------------------------------------
# Eyelids: what the smoothing spline cannot follow
# --------------------------------------------------------------------------------------------

#: The ring around each eye where the eyelid correction fades to nothing, as (along the eye's
#: corner line, across it) semi-axes in eye widths: inside the brows, above the cheek.
EYELID_RING_AXES = (0.85, 0.5)
#: Points on that ring.
EYELID_RING_POINTS = 10


def _eye_mesh(kp: np.ndarray, eye: slice) -> np.ndarray:
    """(6 + R, 2) output-frame points of one eye's mesh: its 6 landmarks, then a ring round
    them (:data:`EYELID_RING_AXES`, :data:`EYELID_RING_POINTS`) along the eye's own axes."""
    pts = kp[eye].astype(np.float64)
    outer, inner = pts[0], pts[3]
    along = inner - outer
    width = max(float(np.linalg.norm(along)), 1e-6)
    u = along / width
    n = np.array([-u[1], u[0]])  # across the eye (down in the image for an upright face)
    centre = 0.5 * (outer + inner)
    angles = np.linspace(0, 2 * np.pi, EYELID_RING_POINTS, endpoint=False)
    a, b = EYELID_RING_AXES
    # an odd eye (a profile's, a bad detection) may reach past the ring: grow it so every
    # landmark is well inside, or the correction would not fade out before the mesh ends
    rel = pts - centre
    reach = np.sqrt(((rel @ u) / a) ** 2 + ((rel @ n) / b) ** 2).max() / width
    grow = max(1.0, reach / 0.75)
    ring = centre + grow * width * (
        a * np.cos(angles)[:, None] * u + b * np.sin(angles)[:, None] * n
    )
    return np.concatenate([pts, ring])


def follow_eyelids(flow: np.ndarray, ks: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Backward flows ``(B, H, W, 2)`` corrected so that every eye landmark lands exactly.

    The smoothing spline (:data:`TPS_SMOOTHING`) cannot follow an eyelid closing onto the
    other, a few pixels away: a closed eye is a place where the output frame jumps over the
    photo's eye, and a spline that bends that sharply rings and folds the face. Inside a small
    mesh round each eye (its six landmarks and a ring, Delaunay-triangulated in the output
    frame) the leftover ``ks - (kp + F(kp))`` is interpolated linearly and added; it is 0 on
    the ring and outside it. Linear pieces cannot ring, and as long as each lid stays on its
    side of the other the triangles keep their orientation, so nothing folds.

    Args:
        flow: (B, H, W, 2) backward flows in pixels (output -> photo), NumPy.
        ks: (68, 2) or (B, 68, 2) photo landmarks; kp: (B, 68, 2) the output frame's.

    Returns:
        (B, H, W, 2) float32 flows; unchanged outside the eyes' rings.
    """
    from scipy.spatial import Delaunay

    from .landmarks import LEFT_EYE, RIGHT_EYE

    out = np.array(flow, np.float32)
    _, h, w, _ = out.shape
    ks = np.broadcast_to(np.asarray(ks, np.float64), np.shape(kp))
    for i, (src, dst) in enumerate(zip(ks, np.asarray(kp, np.float64), strict=True)):
        for eye in (RIGHT_EYE, LEFT_EYE):
            mesh = _eye_mesh(dst, eye)
            landed = dst[eye] + _bilinear(out[i], dst[eye])
            leftover = np.zeros_like(mesh)
            leftover[:6] = src[eye] - landed
            _add_linear(out[i], mesh, leftover, Delaunay(mesh), (h, w))
    return out


def _bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, C) bilinear values of ``field`` (H, W, C) at ``points`` (N, 2) pixels, clamped."""
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0, w - 1)
    y = np.clip(points[:, 1], 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - fx) + field[y0, x0 + 1] * fx
    bottom = field[y0 + 1, x0] * (1 - fx) + field[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _add_linear(field: np.ndarray, mesh: np.ndarray, values: np.ndarray, tri, size) -> None:
    """Add to ``field`` (H, W, C), in place, the piecewise-linear interpolation of ``values``
    (M, C) over the triangulation ``tri`` of ``mesh`` (M, 2), 0 outside it."""
    h, w = size
    x0, y0 = np.maximum(np.floor(mesh.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(mesh.max(0)).astype(int), (w - 1, h - 1))
    if x1 < x0 or y1 < y0:
        return
    gy, gx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    pix = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    simplex = tri.find_simplex(pix)
    inside = simplex >= 0
    t = tri.transform[simplex[inside]]
    bary = np.einsum("nij,nj->ni", t[:, :2], pix[inside] - t[:, 2])
    weights = np.concatenate([bary, 1 - bary.sum(1, keepdims=True)], axis=1)
    add = np.einsum("nk,nkc->nc", weights, values[tri.simplices[simplex[inside]]])
    field[gy.ravel()[inside], gx.ravel()[inside]] += add.astype(field.dtype)


def _gradient(f: tf.Tensor, axis: int) -> tf.Tensor:
    """``np.gradient`` of a ``(B, H, W, C)`` tensor along axis 1 or 2: central differences,
    one-sided at the borders. Slices, not gathers: their gradient is cheap on a CPU."""
    f = f if axis == 2 else tf.transpose(f, [0, 2, 1, 3])
    first, last = f[:, :, 1:2] - f[:, :, :1], f[:, :, -1:] - f[:, :, -2:-1]
    d = tf.concat([first, (f[:, :, 2:] - f[:, :, :-2]) / 2, last], axis=2)
    return d if axis == 2 else tf.transpose(d, [0, 2, 1, 3])


def area_ratio_tensor(flow: tf.Tensor) -> tf.Tensor:
    """:func:`area_ratio` of a ``(B, H, W, 2)`` flow as a differentiable tensor (for losses)."""
    flow = tf.cast(flow, tf.float32)
    d_dy, d_dx = _gradient(flow, 1), _gradient(flow, 2)
    return (1 + d_dx[..., 0]) * (1 + d_dy[..., 1]) - d_dy[..., 0] * d_dx[..., 1]


def inside_polygon(polygon: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """``(B, H, W, 1)`` float mask: 1 at pixels inside the ``(B, N, 2)`` polygon, else 0.

    A pixel is inside when a ray from it crosses the polygon an odd number of times.
    """
    poly = tf.convert_to_tensor(polygon, tf.float32)
    a, b = poly[:, :, None, :], tf.roll(poly, -1, axis=1)[:, :, None, :]  # edges a -> b
    ys, xs = tf.meshgrid(
        tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij"
    )
    px, py = tf.reshape(xs, [1, 1, -1]), tf.reshape(ys, [1, 1, -1])
    straddles = (a[..., 1] > py) != (b[..., 1] > py)
    dy = tf.where(straddles, b[..., 1] - a[..., 1], 1.0)  # no division by 0 off the edge
    x_cross = a[..., 0] + (py - a[..., 1]) * (b[..., 0] - a[..., 0]) / dy
    crossings = tf.reduce_sum(tf.cast(straddles & (px < x_cross), tf.int32), axis=1)
    return tf.reshape(tf.cast(crossings % 2 == 1, tf.float32), [-1, height, width, 1])


def polygon_area(polygon: tf.Tensor) -> tf.Tensor:
    """``(B,)`` area (pixels²) of ``(B, N, 2)`` polygons (shoelace formula, either winding)."""
    x, y = polygon[..., 0], polygon[..., 1]
    cross = x * tf.roll(y, -1, axis=-1) - tf.roll(x, -1, axis=-1) * y
    return 0.5 * tf.abs(tf.reduce_sum(cross, axis=-1))


def outside_face(landmarks: tf.Tensor, height: int, width: int, margin: int = 4) -> tf.Tensor:
    """``(B, H, W, 1)`` float mask: 1 outside the face outline, 0 inside or within ``margin`` px.

    The outline is the polygon of :data:`FACE_OUTLINE` (``landmarks``: ``(B, 68, 2)`` pixels).
    """
    poly = tf.gather(tf.convert_to_tensor(landmarks, tf.float32), FACE_OUTLINE, axis=1)
    inside = inside_polygon(poly, height, width)
    if margin:
        inside = tf.nn.max_pool2d(inside, 2 * margin + 1, 1, "SAME")
    return 1.0 - inside


def inside_mouth(landmarks: tf.Tensor, height: int, width: int, margin: int = 3) -> tf.Tensor:
    """``(B, H, W, 1)`` float mask: 1 inside the outer-lip polygon grown by ``margin`` px (lips,
    teeth, tongue, the dark inside), else 0 (``landmarks``: ``(B, 68, 2)`` pixels)."""
    poly = tf.gather(tf.convert_to_tensor(landmarks, tf.float32), _OUTER_LIPS, axis=1)
    inside = inside_polygon(poly, height, width)
    return tf.nn.max_pool2d(inside, 2 * margin + 1, 1, "SAME") if margin else inside


_OUTER_LIPS = list(range(68))[OUTER_LIPS]


def area_ratio(flow) -> np.ndarray:
    """Local area change of the backward warp ``p -> p + flow(p)``: ``det(I + ∇flow)``.

    Args:
        flow: (H, W, 2) or (B, H, W, 2) backward flow in pixels.

    Returns:
        (H, W) or (B, H, W) float32: the photo area one output pixel reads. 1 = rigid; < 1 = the
        photo is stretched (magnified: a mouth opening wider than in the photo); > 1 = squeezed;
        <= 0 = the map folds over itself (two places read the same pixels — a warp cannot show
        what was hidden).
    """
    f = np.asarray(flow, dtype=np.float32)
    ratio = area_ratio_tensor(tf.constant(f.reshape((-1, *f.shape[-3:])))).numpy()
    return ratio.reshape(f.shape[:-1])


def warp_sequence(
    image: np.ndarray,
    source_kp: np.ndarray,
    target_kps: np.ndarray,
    batch: int = 8,
    step: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Animate a picture by thin-plate warping alone (the classical baseline, no network).

    Args:
        image: (H, W, 3) float32 picture (usually the face crop).
        source_kp: (N, 2) its keypoints ``ks``.
        target_kps: (T, N, 2) keypoints per output frame (e.g. :func:`transfer_relative`).
        batch: frames per TensorFlow call (bounds memory: B x H x W x (N + 32) floats).
        step: see :func:`tps_flow`.
        progress: show a tqdm bar.

    Returns:
        (T, H, W, 3) float32 frames in [0, 1].
    """
    img = tf.convert_to_tensor(np.asarray(image, dtype=np.float32))[None]
    h, w = int(img.shape[1]), int(img.shape[2])
    kps = np.asarray(target_kps, dtype=np.float32)
    starts = range(0, len(kps), batch)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="TPS warp", unit="batch")
    out = []
    for i in starts:
        kp = kps[i : i + batch]
        flow = tps_flow(np.broadcast_to(source_kp, kp.shape), kp, h, w, step=step)
        frames = warp(tf.repeat(img, len(kp), axis=0), flow)
        out.append(np.clip(frames.numpy(), 0.0, 1.0))
    return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Heatmaps
# --------------------------------------------------------------------------------------------


def keypoint_heatmaps(kp, height: int, width: int, sigma: float | None = None) -> tf.Tensor:
    """Gaussian heatmaps of keypoints, one channel per keypoint.

    ``H[b, y, x, i] = exp(-|(x, y) - kp[b, i]|² / (2 σ²))`` (peak 1 at the keypoint).

    Args:
        kp: (N, 2) or (B, N, 2) (x, y) pixels.
        height, width: heatmap size.
        sigma: Gaussian width in pixels; default ``0.02 * max(height, width)`` (5 px at 256,
            about the spacing of neighbouring face landmarks).

    Returns:
        (B, H, W, N) float32; differentiable wrt ``kp``.
    """
    k = tf.convert_to_tensor(kp, dtype=tf.float32)
    if k.shape.rank == 2:
        k = k[None]
    s = 0.02 * max(height, width) if sigma is None else float(sigma)
    ys = tf.range(height, dtype=tf.float32)[None, :, None, None]
    xs = tf.range(width, dtype=tf.float32)[None, None, :, None]
    dx2 = (xs - k[:, None, None, :, 0]) ** 2  # (B, 1, W, N)
    dy2 = (ys - k[:, None, None, :, 1]) ** 2  # (B, H, 1, N)
    return tf.exp(-(dx2 + dy2) / (2.0 * s * s))
