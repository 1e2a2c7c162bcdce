"""Chapter 6 retargeting widget: sliders for eye and mouth openness and the head's pose, over the
photo, redrawing the rendered frame live.

Callbacks are plain functions, tested without a browser:

* :func:`retarget_frame` renders one frame of the photo with a :class:`~didlearn.retarget.Retarget`
  applied to its own landmarks (the still photo is the "driver", so every change is the
  sliders');
* :func:`draw_retarget` draws the photo and the frame side by side, target landmarks on top.

The Animator (face detection, the renderer) is built once per photo and kept in a
:class:`RetargetState`; a slider move renders one crop (thin-plate by default: well under a
second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DidlearnError
from .animate import AnimatorCache

__all__ = ["RetargetState", "draw_retarget", "retarget_frame", "retarget_widget"]


@dataclass
class RetargetState(AnimatorCache):
    """The current photo's Animator, and what the last callback produced."""

    method: str = "thin_plate"
    frame: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    message: str = ""


def retarget_frame(
    photo: np.ndarray,
    state: RetargetState,
    eyes: float | None = None,
    mouth: float | None = None,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
) -> np.ndarray | None:
    """One frame of ``photo`` retargeted: its own landmarks with the given targets.

    Args:
        photo: (H, W, 3) float32 portrait.
        state: keeps the Animator between calls.
        eyes: eye openness, a fraction of the photo's (0 closed, 1 as in the photo, <= 1.5).
        mouth: mouth aspect ratio (inner-lip gap / mouth width, 0 closed, <= 0.8).
        yaw, pitch, roll: head-pose offsets in degrees (see :class:`didlearn.retarget.Retarget`).

    Returns:
        The (S, S, 3) rendered crop, or None on a user error (no face, a value out of range):
        ``state.message`` says what was shown or what went wrong; ``state.keypoints`` holds
        the (68, 2) target landmarks.
    """
    from ..landmarks import eye_aspect_ratio, mouth_aspect_ratio
    from ..retarget import Retarget

    try:
        anim = state.animator_for(photo)
        retarget = Retarget(eyes=eyes, mouth=mouth, yaw=yaw, pitch=pitch, roll=roll)
    except DidlearnError as err:
        state.frame, state.keypoints, state.message = None, None, str(err)
        return None
    kp = retarget.apply(anim.source_kp, anim.source_kp)
    state.frame, state.keypoints = anim.render(kp[None])[0], kp
    state.message = (
        f"eye aspect ratio {eye_aspect_ratio(kp).mean():.2f}, mouth aspect ratio "
        f"{mouth_aspect_ratio(kp):.2f}, yaw {yaw:g}°, pitch {pitch:g}°, roll {roll:g}°"
    )
    return state.frame


def draw_retarget(state: RetargetState, landmarks: bool = True) -> Any:
    """Matplotlib figure: the photo's crop and the retargeted frame, target landmarks dotted."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(5.6, 3.0))
    for ax in axes:
        ax.set_axis_off()
    if state.animator is not None:
        axes[0].imshow(state.animator.crop.image)
        axes[0].set_title("photo", fontsize=9)
    if state.frame is not None:
        axes[1].imshow(np.clip(state.frame, 0, 1))
        if landmarks and state.keypoints is not None:
            axes[1].scatter(*state.keypoints.T, s=2, c="lime")
        axes[1].set_title("retargeted", fontsize=9)
    fig.suptitle(state.message, fontsize=8)
    fig.tight_layout()
    return fig


def retarget_widget(photo: np.ndarray, state: RetargetState | None = None):
    """Sliders for eyes, mouth, yaw, pitch and roll; the rendered frame redraws live."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from ..landmarks import mouth_aspect_ratio
    from ..retarget import RANGES

    state = state if state is not None else RetargetState()
    try:
        start_mouth = float(mouth_aspect_ratio(state.animator_for(photo).source_kp))
    except DidlearnError:
        start_mouth = 0.0
    start = {"eyes": 1.0, "mouth": min(start_mouth, RANGES["mouth"][1])}
    controls = {
        name: widgets.FloatSlider(
            value=start.get(name, 0.0),
            min=low,
            max=high,
            step=0.05 if name in ("eyes", "mouth") else 1.0,
            description=name,
            continuous_update=False,
        )
        for name, (low, high) in RANGES.items()
    }

    def show(**values: float) -> None:
        retarget_frame(photo, state, **values)
        draw_retarget(state)
        plt.show()

    out = widgets.interactive_output(show, controls)
    return widgets.VBox([widgets.HBox([widgets.VBox(list(controls.values())), out])])
