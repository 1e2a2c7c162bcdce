"""Chapter 0 widget: bring your own photo or driving video with an ipywidgets ``FileUpload``.

The callbacks are plain functions: :func:`receive_image` and :func:`receive_video` take the
upload widget's ``value`` (what the browser sent) and a :class:`UploadState`, and return a
message for the learner. Everything goes through :mod:`didlearn.data`, so an upload is checked
exactly like a file on disk (EXIF, transparency, pixel limit, truncated or fake files).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DEFAULT_MAX_PIXELS, load_image, video_info
from ..errors import DidlearnError

__all__ = ["UploadState", "receive_image", "receive_video", "upload_widget", "uploaded_files"]


@dataclass
class UploadState:
    """What the learner uploaded last: ``image`` (H, W, 3) float32 in [0, 1], ``video`` path."""

    image: np.ndarray | None = None
    video: Path | None = None
    name: str | None = None
    message: str = "Nothing uploaded yet."


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``(name, content)`` pairs from a ``FileUpload.value``.

    ipywidgets 8 sends a tuple of dicts ``{"name", "type", "size", "content": memoryview}``;
    ipywidgets 7 sent a dict ``{name: {"metadata": ..., "content": bytes}}``. Both work.
    """
    if isinstance(value, Mapping):
        items = [{"name": name, **entry} for name, entry in value.items()]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise TypeError(f"not a FileUpload value: {type(value).__name__}")
    return [(str(item.get("name", "upload")), bytes(item["content"])) for item in items]


def receive_image(value: Any, state: UploadState, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Callback for an image upload: decode the first file with :func:`~didlearn.data.load_image`.

    On success ``state.image`` holds the photo; on a bad file ``state.image`` is left as it was
    and the returned message says what was wrong (the widget shows it instead of a traceback).
    """
    files = uploaded_files(value)
    if not files:
        state.message = "Nothing uploaded yet."
        return state.message
    name, content = files[0]
    try:
        image = load_image(content, max_pixels=max_pixels)
    except DidlearnError as exc:
        state.message = f"{name}: {exc}".replace("the image data", "this file")
        return state.message
    state.image, state.name = image, name
    height, width = image.shape[:2]
    state.message = f"{name}: {width}x{height} photo loaded."
    return state.message


def receive_video(value: Any, state: UploadState, folder: str | Path | None = None) -> str:
    """Callback for a video upload: save it under ``folder`` and check it with ``video_info``.

    Videos are streamed from disk later, so the bytes are written to
    ``folder`` (default: ``<temp dir>/didlearn-uploads``) and the path kept in ``state.video``.
    A file ffmpeg cannot read is deleted again and the message says why.
    """
    files = uploaded_files(value)
    if not files:
        state.message = "Nothing uploaded yet."
        return state.message
    name, content = files[0]
    target_dir = Path(folder) if folder is not None else Path(tempfile.gettempdir())
    target_dir = target_dir / "didlearn-uploads" if folder is None else target_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / Path(name).name  # never let a browser-sent name climb out of the folder
    path.write_bytes(content)
    try:
        info = video_info(path)
    except DidlearnError as exc:
        path.unlink(missing_ok=True)
        state.message = str(exc)
        return state.message
    state.video, state.name = path, name
    audio = "with audio" if info.has_audio else "no audio"
    state.message = (
        f"{name}: {info.width}x{info.height}, {info.n_frames} frames at {info.fps:g} fps, {audio}."
    )
    return state.message


def upload_widget(kind: str = "image", state: UploadState | None = None) -> tuple[Any, UploadState]:
    """A ``FileUpload`` plus a message line, wired to :func:`receive_image`/:func:`receive_video`.

    Returns ``(widget, state)``: display the widget; after an upload ``state.image`` (or
    ``state.video``) holds the result.
    """
    import ipywidgets as widgets

    if kind not in ("image", "video"):
        raise ValueError(f"kind must be 'image' or 'video', got {kind!r}")
    state = state if state is not None else UploadState()
    upload = widgets.FileUpload(accept=f"{kind}/*", multiple=False, description=f"Upload {kind}")
    label = widgets.Label(value=state.message)
    receive = receive_image if kind == "image" else receive_video

    def on_change(change: dict) -> None:
        label.value = receive(change["new"], state)

    upload.observe(on_change, names="value")
    return widgets.VBox([upload, label]), state
