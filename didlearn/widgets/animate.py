"""Chapter 6 widgets: animate your own photo, and feel what intensity and relative/absolute do.

Callbacks are plain functions, tested without a browser:

* :func:`preview` renders a few frames of the photo driven by a source (the bundled clip, an
  uploaded video, or a template) at a given intensity and transfer mode;
* :func:`draw_preview` draws them as a strip with the target landmarks;
* :func:`animate_upload` turns an upload state (``widgets.upload.UploadState``) into a video.

The Animator (face detection, model loading) is built once per photo and kept in an
:class:`AnimateState`; moving a slider only changes its ``intensity`` and ``relative``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DidlearnError

__all__ = [
    "AnimateState",
    "AnimatorCache",
    "animate_upload",
    "animate_widget",
    "draw_preview",
    "preview",
    "upload_animate_widget",
]


@dataclass
class AnimatorCache:
    """One photo's Animator, built on first use and kept while the photo stays the same (face
    detection and model loading are the slow part; a widget's moves reuse them)."""

    method: str = "auto"
    animator: Any = None
    photo_id: int | None = None

    def animator_for(self, photo: np.ndarray):
        """The Animator of ``photo`` (built on first use; crop output, no progress bar)."""
        from ..animate import Animator

        if self.animator is None or self.photo_id != id(photo):
            self.animator = Animator(photo, method=self.method, paste_back=False, progress=False)
            self.photo_id = id(photo)
        return self.animator


@dataclass
class AnimateState(AnimatorCache):
    """The current photo's Animator, and what the last callback produced."""

    frames: list = field(default_factory=list)
    keypoints: np.ndarray | None = None
    message: str = ""


def preview(
    photo: np.ndarray,
    source: str | Path,
    state: AnimateState,
    intensity: float = 1.0,
    relative: bool = True,
    frames: int = 5,
    duration: float = 2.0,
) -> list[np.ndarray]:
    """A few frames of ``photo`` driven by ``source``, evenly spaced in time.

    Args:
        photo: (H, W, 3) float32 portrait.
        source: a template name (see ``templates.list_templates``) or a driving video path.
        state: keeps the Animator between calls.
        intensity: motion scale; relative: relative (True) or absolute transfer.
        frames: how many frames to show; duration: seconds of template (or video) to sample.

    Returns:
        ``frames`` (S, S, 3) crops; ``state.keypoints`` holds their target landmarks and
        ``state.message`` says what was shown (or what went wrong: no exception escapes for a
        user error, the widget shows the message).
    """
    from ..templates import list_templates

    try:
        anim = state.animator_for(photo)
    except DidlearnError as err:
        state.frames, state.keypoints, state.message = [], None, str(err)
        return []
    anim.intensity, anim.relative = float(intensity), bool(relative)
    fps = max(frames - 1, 1) / duration
    try:
        if str(source) in list_templates():
            kps = anim.template_keypoints(str(source), duration + 1 / fps, fps)[:frames]
        else:
            kps = _video_keypoints(anim, source, frames, duration)
    except DidlearnError as err:
        state.frames, state.keypoints, state.message = [], None, str(err)
        return []
    state.frames = list(anim.render(kps))
    state.keypoints = kps
    mode = "relative" if relative else "absolute"
    state.message = f"{Path(str(source)).name}: {len(kps)} frames, {mode}, intensity {intensity:g}"
    return state.frames


def _video_keypoints(anim, path, frames: int, duration: float) -> np.ndarray:
    """Target keypoints of ``frames`` driving frames spread over the first ``duration`` s."""
    from ..animate import open_driving
    from ..faces import track_landmarks

    it, fps, _ = open_driving(path, max_frames=None)
    n = max(int(round(duration * (fps or 25.0))), frames)
    video = [f for _, f in zip(range(n), it, strict=False)]
    track = track_landmarks(video, fps=fps or 25.0)
    pick = np.linspace(0, len(video) - 1, frames).round().astype(int)
    return np.stack([anim.transfer(track.landmarks[i], track.landmarks[0]) for i in pick])


def draw_preview(state: AnimateState, landmarks: bool = True) -> Any:
    """Matplotlib figure: the preview frames in a row, target landmarks dotted on top."""
    import matplotlib.pyplot as plt

    n = max(len(state.frames), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.set_axis_off()
        if i < len(state.frames):
            ax.imshow(np.clip(state.frames[i], 0, 1))
            if landmarks and state.keypoints is not None:
                ax.scatter(*state.keypoints[i].T, s=2, c="lime")
            ax.set_title(f"frame {i}", fontsize=9)
    fig.suptitle(state.message, fontsize=9)
    fig.tight_layout()
    return fig


def animate_widget(photo: np.ndarray, sources: list[str], state: AnimateState | None = None):
    """Sliders: source, intensity, relative/absolute; the preview strip redraws live."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    state = state if state is not None else AnimateState(method="thin_plate")
    controls = {
        "source": widgets.Dropdown(options=list(sources), description="driver"),
        "intensity": widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1),
        "relative": widgets.ToggleButtons(
            options=[("relative", True), ("absolute", False)], description="transfer"
        ),
    }

    def show(source: str, intensity: float, relative: bool) -> None:
        preview(photo, source, state, intensity, relative)
        draw_preview(state)
        plt.show()

    out = widgets.interactive_output(show, controls)
    return widgets.VBox([widgets.HBox(list(controls.values())), out])


def animate_upload(
    upload,
    template: str = "idle",
    duration: float = 3.0,
    folder: str | Path | None = None,
    max_frames: int | None = None,
    method: str = "auto",
) -> tuple[Path | None, str]:
    """Animate the uploaded photo with the uploaded video (or ``template`` if there is none).

    Args:
        upload: a ``widgets.upload.UploadState`` (``.image``, ``.video``).
        template, duration: driver when no video was uploaded.
        folder: where the MP4 goes (default: a temporary folder).
        max_frames: at most this many driving frames.
        method: renderer (see ``animate.Animator``).

    Returns:
        ``(path of the MP4 or None, message)``; user errors become the message.
    """
    from .. import animate, data

    if upload.image is None:
        return None, "Upload a photo first."
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="didlearn-"))
    out = folder / "animated.mp4"
    try:
        anim = animate.Animator(upload.image, method=method, progress=False)
        if upload.video is not None:
            fps = data.video_info(upload.video).fps
            frames = anim.animate(upload.video, max_frames=max_frames)
            audio = upload.video
        else:
            fps, audio = 25.0, None
            frames = anim.animate_template(template, duration, fps)
        animate.save(frames, out, fps, audio_from=audio, overwrite=True)
    except DidlearnError as err:
        return None, str(err)
    n = int(anim.timings.get("frames", 0))
    return out, f"{n} frames written to {out} ({anim.method})"


def upload_animate_widget(method: str = "auto"):
    """Two uploads (photo, optional video) and an Animate button showing the result inline."""
    import ipywidgets as widgets
    from IPython.display import display

    from ..data import show_video
    from ..templates import list_templates
    from .upload import UploadState, upload_widget

    state = UploadState()
    photo_box, _ = upload_widget("image", state)
    video_box, _ = upload_widget("video", state)
    template = widgets.Dropdown(options=list(list_templates()), value="idle")
    button = widgets.Button(description="Animate", button_style="primary")
    out = widgets.Output()

    def on_click(_) -> None:
        out.clear_output()
        with out:
            path, message = animate_upload(state, template.value, method=method)
            print(message)
            if path is not None:
                display(show_video(path))

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([photo_box, video_box]), template, button, out])
