"""Chapter 2 widget: compose a flow field from sliders and see it, its arrows and its effect.

The callbacks are plain functions, tested without a browser: :func:`compose_flow` builds the
backward flow from the slider values, :func:`render_flow` draws the colour-coded flow, the quiver
plot and the warped picture, and :func:`flow_composer_widget` only wires them to ipywidgets.

The sliders describe how the PICTURE moves (shift right, turn, zoom in, ...); the flow that does
it is backward, so it holds the inverse motion: ``out[y, x] = photo[y + dy, x + dx]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import flow as fl

__all__ = ["DEFAULTS", "compose_flow", "flow_composer_widget", "render_flow"]

DEFAULTS = {
    "tx": 0.0,  # shift right, pixels
    "ty": 0.0,  # shift down, pixels
    "rotation": 0.0,  # counter-clockwise turn on screen, degrees
    "zoom": 1.0,  # scale factor, > 1 enlarges
    "swirl": 0.0,  # twist at the centre, degrees, fading with the distance
    "handle_x": 0.5,  # thin-plate control point, fraction of the width
    "handle_y": 0.5,  # ... and of the height
    "drag_x": 0.0,  # where the control point's content is dragged to, pixels
    "drag_y": 0.0,
}


def _global_inverse(qx, qy, height, width, tx, ty, rotation, zoom, swirl):
    """Where output position q reads the photo, for the shift/turn/zoom/swirl part (arrays)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # undo the shift, then the zoom and turn about the centre (forward: p' = c + sR(p - c) + t)
    x, y = (qx - tx - cx) / zoom, (qy - ty - cy) / zoom
    a = np.radians(rotation)  # counter-clockwise on screen = clockwise in (x, y-down) coords
    c, s = np.cos(a), np.sin(a)
    x, y = c * x - s * y, s * x + c * y
    # the swirl turns points by an angle that fades with the distance to the centre
    radius = max(height, width) / 4
    phi = np.radians(swirl) * np.exp(-np.hypot(x, y) / radius)
    c, s = np.cos(phi), np.sin(phi)
    x, y = c * x - s * y, s * x + c * y
    return x + cx, y + cy


def compose_flow(height: int, width: int, **sliders: float) -> np.ndarray:
    """Backward flow (H, W, 2) float32 of the motion the sliders describe (keys of DEFAULTS).

    The thin-plate part moves the content at the control point (``handle_x``, ``handle_y``,
    fractions of the size) by (``drag_x``, ``drag_y``) pixels, keeping the image border still;
    it acts on the picture after the shift/turn/zoom/swirl, in output coordinates.
    """
    unknown = set(sliders) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown slider(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    v = {**DEFAULTS, **sliders}
    if v["zoom"] <= 0:
        raise ValueError(f"zoom must be positive, got {v['zoom']}")
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    qx, qy = x, y
    drag = np.array([v["drag_x"], v["drag_y"]], np.float64)
    if np.any(drag != 0):
        # the content at the handle h appears at h + d: there the flow reads back by -d
        target = np.array([v["handle_x"] * (width - 1), v["handle_y"] * (height - 1)]) + drag
        # zero flow at the corners and edge midpoints keeps the border still
        anchors = np.array(
            [[fx * (width - 1), fy * (height - 1)] for fx in (0, 0.5, 1) for fy in (0, 0.5, 1)]
        )
        anchors = np.delete(anchors, 4, axis=0)  # not the centre
        pts = np.vstack([target, anchors])
        vals = np.vstack([-drag, np.zeros((len(anchors), 2))])
        tps = fl.thin_plate_flow(pts, vals, (height, width)).astype(np.float64)
        qx, qy = x + tps[..., 0], y + tps[..., 1]
    px, py = _global_inverse(
        qx, qy, height, width, v["tx"], v["ty"], v["rotation"], v["zoom"], v["swirl"]
    )
    return np.stack([px - x, py - y], axis=-1).astype(np.float32)


def render_flow(image: np.ndarray, flow: np.ndarray, step: int = 16) -> Any:
    """Three panels: the colour-coded flow (with the wheel legend), the arrows over the photo,
    and the photo warped by the flow. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    warped = fl.warp_numpy(image, flow)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    mag = float(np.hypot(flow[..., 0], flow[..., 1]).max())
    fl.plot_flow(axes[0], flow, title=f"flow colours (max {mag:.1f} px)")
    legend = axes[0].inset_axes([0.78, 0.78, 0.22, 0.22])
    legend.imshow(fl.color_wheel(64))
    legend.set_axis_off()
    fl.plot_quiver(axes[1], flow, step=step, image=image)
    axes[1].set_title("arrows: where each pixel reads")
    axes[2].imshow(np.clip(warped, 0, 1))
    axes[2].set_title("warped photo")
    axes[2].set_axis_off()
    fig.tight_layout()
    return fig


def flow_composer_widget(image: np.ndarray, step: int = 16) -> Any:
    """Sliders for every key of DEFAULTS, redrawing :func:`render_flow` live (ipywidgets)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    h, w = image.shape[:2]
    fs = widgets.FloatSlider
    controls = {
        "tx": fs(value=0, min=-40, max=40, step=1, description="shift x"),
        "ty": fs(value=0, min=-40, max=40, step=1, description="shift y"),
        "rotation": fs(value=0, min=-45, max=45, step=1, description="turn °"),
        "zoom": fs(value=1, min=0.5, max=2, step=0.05, description="zoom"),
        "swirl": fs(value=0, min=-180, max=180, step=5, description="swirl °"),
        "handle_x": fs(value=0.5, min=0.05, max=0.95, step=0.05, description="point x"),
        "handle_y": fs(value=0.5, min=0.05, max=0.95, step=0.05, description="point y"),
        "drag_x": fs(value=0, min=-w / 4, max=w / 4, step=1, description="drag x"),
        "drag_y": fs(value=0, min=-h / 4, max=h / 4, step=1, description="drag y"),
    }

    def show(**values: float) -> None:
        render_flow(image, compose_flow(h, w, **values), step=step)
        plt.show()

    out = widgets.interactive_output(show, controls)
    names = list(controls)
    rows = [widgets.HBox([controls[n] for n in names[i : i + 3]]) for i in range(0, 9, 3)]
    return widgets.VBox([*rows, out])
