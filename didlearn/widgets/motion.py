"""Chapter 3 widget: a landmark puppet — sliders move groups of face landmarks, a thin-plate
spline turns the moved landmarks into a dense flow, and the face is warped live.

The callbacks are plain functions, tested without a browser: :func:`move_landmarks` applies the
slider values to the 68 landmarks, :func:`puppet_frame` computes the flow and the warped face,
:func:`render_puppet` draws them, and :func:`landmark_puppet_widget` only wires them to ipywidgets.

Slider units: ``eyebrows``, ``mouth_corners`` and ``jaw`` in percent of the face size (the larger
side of the landmarks' box); ``eyelids`` from 0 (open) to 1 (closed); ``turn`` (yaw, positive =
the face turns to the image's right) and ``nod`` (pitch, positive = chin down) in degrees, through
the 3-D head model of :mod:`didlearn.head` (:func:`~didlearn.head.rotate_sphere`: landmarks on
a sphere, the nose sticking out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import flow as fl
from .. import motion as mo
from ..head import rotate_sphere
from ..landmarks import JAW, LEFT_BROW, LIDS, MOUTH, RIGHT_BROW

__all__ = [
    "PUPPET_DEFAULTS",
    "landmark_puppet_widget",
    "move_landmarks",
    "puppet_frame",
    "render_puppet",
]

PUPPET_DEFAULTS = {
    "eyebrows": 0.0,  # raise, % of face size
    "eyelids": 0.0,  # 0 open .. 1 closed
    "mouth_corners": 0.0,  # smile (+) / frown (-), % of face size
    "jaw": 0.0,  # open the mouth, % of face size
    "turn": 0.0,  # yaw, degrees
    "nod": 0.0,  # pitch, degrees
}

_MOUTH_CORNERS = (48, 54, 60, 64)
# how much each jaw/lower-lip point follows the chin (1 = chin, 0 = fixed hinge near the ears)
_JAW_WEIGHTS = np.sin(np.linspace(0, np.pi, 17)) ** 2
_LOWER_LIP = (55, 56, 57, 58, 59, 65, 66, 67)
_BROWS = slice(RIGHT_BROW.start, LEFT_BROW.stop)


def move_landmarks(kp: np.ndarray, **sliders: float) -> np.ndarray:
    """Landmarks (68, 2) moved by the puppet sliders (keys and units: :data:`PUPPET_DEFAULTS`).

    All sliders at their defaults return the landmarks unchanged.
    """
    unknown = set(sliders) - set(PUPPET_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown slider(s) {sorted(unknown)}; known: {sorted(PUPPET_DEFAULTS)}")
    v = {**PUPPET_DEFAULTS, **sliders}
    out = np.asarray(kp, dtype=np.float64).copy()
    if out.shape != (68, 2):
        raise ValueError(f"the puppet needs the 68 dlib landmarks (68, 2); got {out.shape}")
    size = float(max(out.max(axis=0) - out.min(axis=0)))
    unit = size / 100.0
    out[_BROWS, 1] -= v["eyebrows"] * unit
    for top, bottom in LIDS:
        # upper lid goes down towards the lower one; closed = both meet near the lower lid
        out[top] += 0.85 * v["eyelids"] * (out[bottom] - out[top])
    centre_x = out[MOUTH, 0].mean()
    for i in _MOUTH_CORNERS:
        out[i, 1] -= v["mouth_corners"] * unit
        out[i, 0] += 0.5 * v["mouth_corners"] * unit * np.sign(out[i, 0] - centre_x)
    out[JAW, 1] += v["jaw"] * unit * _JAW_WEIGHTS
    out[list(_LOWER_LIP), 1] += v["jaw"] * unit
    out = rotate_sphere(out, size, v["turn"], v["nod"])
    return out.astype(np.float32)


def puppet_frame(image: np.ndarray, kp: np.ndarray, **sliders: float) -> dict[str, np.ndarray]:
    """Move the landmarks, build the thin-plate flow (``motion.tps_flow``, smoothed by
    ``motion.TPS_SMOOTHING`` like every face warp) and warp the face.

    Args:
        image: (H, W, 3) float32 face crop (e.g. ``crop_face(...).image``).
        kp: (68, 2) landmarks in ``image``.
        **sliders: values for :data:`PUPPET_DEFAULTS`.

    Returns:
        dict with ``"moved"`` (68, 2) target landmarks, ``"flow"`` (H, W, 2) backward flow,
        ``"warped"`` (H, W, 3) the face with its landmarks moved.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    moved = move_landmarks(kp, **sliders)
    flow = mo.tps_flow(kp, moved, h, w)
    warped = fl.warp(img[None], flow)[0].numpy()
    return {"moved": moved, "flow": flow[0].numpy(), "warped": np.clip(warped, 0.0, 1.0)}


def render_puppet(image: np.ndarray, kp: np.ndarray, **sliders: float) -> Any:
    """Three panels: landmark arrows on the face, the colour-coded dense flow, the warped face.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    res = puppet_frame(image, kp, **sliders)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    axes[0].imshow(np.clip(image, 0, 1))
    d = res["moved"] - kp
    axes[0].quiver(
        kp[:, 0],
        kp[:, 1],
        d[:, 0],
        d[:, 1],
        color="yellow",
        angles="xy",
        scale_units="xy",
        scale=1.0,
    )
    axes[0].plot(*res["moved"].T, "r.", ms=3)
    axes[0].set_title("landmarks: where they go")
    axes[0].set_axis_off()
    mag = float(np.hypot(res["flow"][..., 0], res["flow"][..., 1]).max())
    fl.plot_flow(axes[1], res["flow"], title=f"TPS flow (max {mag:.1f} px)")
    axes[2].imshow(res["warped"])
    axes[2].set_title("warped face")
    axes[2].set_axis_off()
    fig.tight_layout()
    return fig


def landmark_puppet_widget(image: np.ndarray, kp: np.ndarray) -> Any:
    """Sliders for :data:`PUPPET_DEFAULTS`, redrawing :func:`render_puppet` live (ipywidgets)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    fs = widgets.FloatSlider
    controls = {
        "eyebrows": fs(value=0, min=-6, max=10, step=0.5, description="eyebrows ↑"),
        "eyelids": fs(value=0, min=0, max=1, step=0.05, description="eyelids"),
        "mouth_corners": fs(value=0, min=-6, max=8, step=0.5, description="smile"),
        "jaw": fs(value=0, min=0, max=15, step=0.5, description="jaw open"),
        "turn": fs(value=0, min=-25, max=25, step=1, description="turn °"),
        "nod": fs(value=0, min=-20, max=20, step=1, description="nod °"),
    }

    def show(**values: float) -> None:
        render_puppet(image, kp, **values)
        plt.show()

    out = widgets.interactive_output(show, controls)
    names = list(controls)
    rows = [widgets.HBox([controls[n] for n in names[i : i + 3]]) for i in (0, 3)]
    return widgets.VBox([*rows, out])
