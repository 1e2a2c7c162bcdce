"""The renderers of chapter 6, declared once: what moves the photo's face crop for each method.

A renderer turns the face crop, its landmarks and a batch of target landmarks into the crop's
motion (:class:`~didlearn.composite.CropMotion`: backward flow, and for the model a fusion mask
and a painting); :mod:`didlearn.composite` turns that motion into pixels. Every renderer is
registered here with a one-line summary, and everything that offers a choice of renderer reads
this registry: :class:`didlearn.animate.Animator`, the CLI's ``--method`` (choices and help), the
benchmarks' ``--methods``, the widgets and the tests. Adding a renderer is one function and one
decorator::

    @register_renderer("mirror", "the photo flipped left-right (a toy)")
    def render_mirror(crop, ks, kps):
        ...
        return CropMotion(flows)

Renderers that need settings or the trained models register a *factory* instead
(:func:`register_renderer_factory`): ``factory(options: RenderOptions) -> Renderer``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .composite import CropMotion, pixel_grid

#: ``(crop (S, S, 3), ks (68, 2), kps (B, 68, 2)) -> CropMotion`` (flow, mask, colour).
Renderer = Callable[[np.ndarray, np.ndarray, np.ndarray], CropMotion]


@dataclass(frozen=True)
class RenderOptions:
    """What a renderer factory may use: the trained ``models`` and the thin-plate ``tps_step``."""

    models: Any = None
    tps_step: int = 2


@dataclass(frozen=True)
class RendererEntry:
    """One registered renderer: its name, a one-line summary, and how to make it."""

    name: str
    summary: str
    factory: Callable[[RenderOptions], Renderer]
    needs_models: bool = False


#: The registry, in registration order (simplest first): name -> entry.
RENDERERS: dict[str, RendererEntry] = {}


def register_renderer_factory(
    name: str, summary: str, needs_models: bool = False
) -> Callable[[Callable[[RenderOptions], Renderer]], Callable[[RenderOptions], Renderer]]:
    """Decorator registering ``factory(options) -> Renderer`` under ``name``."""

    def register(factory: Callable[[RenderOptions], Renderer]) -> Callable[..., Renderer]:
        if name == "auto":
            raise ValueError("'auto' is reserved: it stands for DEFAULT_METHOD")
        if name in RENDERERS:
            raise ValueError(f"a renderer named '{name}' is registered already")
        RENDERERS[name] = RendererEntry(name, summary, factory, needs_models)
        return factory

    return register


def register_renderer(name: str, summary: str) -> Callable[[Renderer], Renderer]:
    """Decorator registering a renderer that needs no settings under ``name``."""

    def register(renderer: Renderer) -> Renderer:
        register_renderer_factory(name, summary)(lambda options: renderer)
        return renderer

    return register


def renderer_names() -> tuple[str, ...]:
    """The registered renderers' names, in registration order."""
    return tuple(RENDERERS)


def renderer_entry(method: str) -> RendererEntry:
    """The entry of ``method``; ``ValueError`` naming the choices if there is none."""
    if method not in RENDERERS:
        raise ValueError(
            f"unknown method '{method}': choose auto or one of {', '.join(renderer_names())}"
        )
    return RENDERERS[method]


def make_renderer(method: str, models: Any = None, tps_step: int = 2) -> Renderer:
    """The renderer of ``method`` (a registered name); ``model`` needs ``models``."""
    entry = renderer_entry(method)
    if entry.needs_models and models is None:
        raise ValueError(
            f"method='{method}' needs the trained models (generator.load_pretrained())"
        )
    return entry.factory(RenderOptions(models, tps_step))


# --------------------------------------------------------------------------------------------
# The renderers: (crop, ks, kps (B, 68, 2)) -> CropMotion in crop pixels
# --------------------------------------------------------------------------------------------


@register_renderer("still", "the photo itself, no motion (the do-nothing baseline)")
def render_still(crop: np.ndarray, ks: np.ndarray, kps: np.ndarray) -> CropMotion:
    """The photo itself for every frame (the do-nothing baseline): zero flow."""
    h, w = crop.shape[:2]
    return CropMotion(np.zeros((len(kps), h, w, 2), np.float32))


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 (x, y) coordinates of every pixel."""
    return np.stack(pixel_grid(height, width), axis=-1)


@register_renderer("similarity", "the face moved rigidly: scale, rotation, shift")
def render_similarity(crop: np.ndarray, ks: np.ndarray, kps: np.ndarray) -> CropMotion:
    """Move the whole crop rigidly: the similarity (scale, rotation, shift) that best maps ks -> kp.

    Head motion is captured, expressions are not. Output pixel p reads the photo at T^-1(p).
    """
    from .motion import umeyama  # here: importing the renderers must not start TensorFlow

    grid = _pixel_grid(*crop.shape[:2])
    flows = []
    for kp in kps:
        s, rot, t = umeyama(ks, kp)
        inv = np.linalg.inv(np.vstack([np.hstack([s * rot, t[:, None]]), [0, 0, 1]]))[:2]
        flows.append(grid @ inv[:, :2].T.astype(np.float32) + inv[:, 2].astype(np.float32) - grid)
    return CropMotion(np.stack(flows))


def _frame_anchors(height: int, width: int) -> np.ndarray:
    from .motion import border_anchors

    return border_anchors(height, width, per_side=4).astype(np.float64)


@register_renderer(
    "piecewise_affine", "a Delaunay mesh of the landmarks, each triangle warped affinely"
)
def render_piecewise_affine(crop: np.ndarray, ks: np.ndarray, kps: np.ndarray) -> CropMotion:
    """Warp each Delaunay triangle of the landmarks (plus the crop border) by its own affine map.

    scikit-image's :class:`~skimage.transform.PiecewiseAffineTransform` is estimated from output
    keypoints to photo keypoints (a backward map, like every warp in the course); the border
    points keep the mesh covering the whole crop and the background still.
    """
    from skimage.transform import PiecewiseAffineTransform

    h, w = crop.shape[:2]
    anchors = _frame_anchors(h, w)
    grid = _pixel_grid(h, w).reshape(-1, 2).astype(np.float64)
    flows = []
    for kp in kps:
        dst = np.vstack([np.asarray(kp, np.float64), anchors])
        src = np.vstack([np.asarray(ks, np.float64), anchors])
        tform = PiecewiseAffineTransform.from_estimate(dst, src)  # output -> photo
        where = _apply_piecewise(tform, grid, h, w)
        # points the mesh does not cover (a folded triangle) read their own position
        bad = ~np.isfinite(where).all(axis=1) | (where < 0).any(axis=1)
        where[bad] = grid[bad]
        flows.append((where - grid).reshape(h, w, 2))
    return CropMotion(np.stack(flows).astype(np.float32))


def _apply_piecewise(tform, points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``tform(points)`` for the pixel grid, vectorised.

    scikit-image's ``__call__`` finds each pixel's triangle with Qhull's ``find_simplex`` (slow
    on the thin triangles a face mesh has: ~0.7 s per 256x256 frame) then masks all pixels once
    per triangle. Here the triangles are rasterised into an index image with OpenCV (sub-pixel
    vertices) and each pixel gathers its triangle's matrix: the same affine maps in ~10 ms.
    Falls back to ``tform(points)`` if the (private) triangulation attribute changes.
    """
    import cv2

    tri = getattr(tform, "_tesselation", None)
    if tri is None or len(tform.affines) != len(tri.simplices):
        return np.asarray(tform(points), np.float32)
    index = np.full((height, width), -1, np.int32)
    for k, simplex in enumerate(tri.simplices):
        corners = np.round(tri.points[simplex] * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillConvexPoly(index, corners, int(k), lineType=cv2.LINE_8, shift=4)
    simplex = index.ravel()
    mats = np.stack([a.params[:2] for a in tform.affines])  # (K, 2, 3)
    m = mats[np.maximum(simplex, 0)]
    out = np.einsum("nij,nj->ni", m[:, :, :2], points) + m[:, :, 2]
    out[simplex < 0] = -1.0  # outside the mesh, as scikit-image marks it
    return out.astype(np.float32)


@register_renderer_factory("thin_plate", "the thin-plate-spline warp of chapter 3")
def thin_plate_renderer(options: RenderOptions) -> Renderer:
    """Renderer moving the crop along the thin-plate-spline flow of chapter 3 (``motion.tps_flow``,
    TensorFlow, batched; the flow is evaluated every ``options.tps_step`` pixels, then
    interpolated), with the eyelids landed exactly (``motion.follow_eyelids``: the smoothing
    spline alone leaves a closing eye open).
    """

    def render_thin_plate(crop: np.ndarray, ks: np.ndarray, kps: np.ndarray) -> CropMotion:
        from .motion import TPS_SMOOTHING, follow_eyelids, tps_flow

        h, w = crop.shape[:2]
        kps = np.asarray(kps, np.float32)
        # smoothing spline: coincident landmarks (a blink) make the exact one singular
        flows = tps_flow(
            np.broadcast_to(ks, kps.shape),
            kps,
            h,
            w,
            step=options.tps_step,
            regularization=TPS_SMOOTHING,
        )
        return CropMotion(follow_eyelids(flows.numpy(), ks, kps))  # blinks: the lids land

    return render_thin_plate


@register_renderer_factory(
    "model", "the trained refiner + generator of chapter 4", needs_models=True
)
def model_renderer(options: RenderOptions) -> Renderer:
    """Renderer running the trained refiner + generator of chapter 4 on a batch of keypoints."""
    from . import generator

    def render_model(crop: np.ndarray, ks: np.ndarray, kps: np.ndarray) -> CropMotion:
        from .motion import follow_eyelids

        out = generator.render_motion(options.models, crop, ks, kps)
        flow = follow_eyelids(out["flow"], ks, np.asarray(kps, np.float32))
        return CropMotion(flow, out["mask"], out["colour"])

    return render_model


# --------------------------------------------------------------------------------------------
# The default
# --------------------------------------------------------------------------------------------


#: What ``method="auto"`` renders with: the renderer that measured best on whole frames of
#: people the shipped model never saw (``benchmarks/cross_benchmark.py``; the model card's
#: cross-identity table). Thin-plate warping keeps identity better and jitters less than the
#: shipped model, which carries the motion more closely and keeps a little more detail.
DEFAULT_METHOD = "thin_plate"


def load_models(method: str = "auto") -> tuple[str, Any]:
    """Resolve ``method`` and load what it needs.

    ``auto`` is :data:`DEFAULT_METHOD`; a renderer that needs models gets the shipped weights.

    Returns:
        ``(method, models or None)``.

    Raises:
        MissingResourceError: ``method="model"`` and the weights (or the module) are missing.
    """
    from .errors import MissingResourceError

    method = DEFAULT_METHOD if method == "auto" else renderer_entry(method).name
    if not RENDERERS[method].needs_models:
        return method, None
    try:
        from . import generator
    except ImportError as err:
        raise MissingResourceError(
            f"The generator (didlearn.generator) cannot be imported ({err}); use "
            "--method thin_plate."
        ) from err
    return method, generator.load_pretrained()
