"""Chapter 0 widget: bring your own photo or driving video with an ipywidgets ``FileUpload``.

The callbacks are plain functions: :func:`receive_image` and :func:`receive_video` take the
upload widget's ``value`` (what the browser sent) and a :class:`UploadState`, and return a
message for the learner. Everything goes through :mod:`didlearn.data`, so an upload is checked
exactly like a file on disk (EXIF, transparency, pixel limit, truncated or fake files).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DEFAULT_MAX_PIXELS, load_image, video_info
from ..errors import DidlearnError

__all__ = [
    "UploadState",
    "private_upload_folder",
    "receive_image",
    "receive_video",
    "safe_name",
    "upload_widget",
    "uploaded_files",
]


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
    shown = safe_name(name)
    try:
        image = load_image(content, max_pixels=max_pixels)
    except DidlearnError as exc:
        state.message = f"{shown}: {exc}".replace("the image data", "this file")
        return state.message
    except Exception as exc:  # a decoder's own error (a rare format, damaged): say it, keep going
        state.message = f"{shown}: could not be read as an image ({type(exc).__name__}: {exc})."
        return state.message
    state.image, state.name = image, shown
    height, width = image.shape[:2]
    state.message = f"{shown}: {width}x{height} photo loaded."
    return state.message


#: Longest file name an upload is stored under (bytes of UTF-8): far below every file system's
#: 255-byte limit, so a temporary name built from it fits too.
MAX_NAME_BYTES = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, default: str = "upload") -> str:
    """A short, safe file name for what a browser sent: the last path part, characters other
    than ``A-Z a-z 0-9 . _ -`` replaced by ``_``, no leading dot, at most
    :data:`MAX_NAME_BYTES` bytes with the ending kept (``..``, ``''``, a NUL byte or a name with
    no safe character left fall back on ``default``'s stem, and its ending if there is none)."""
    fallback_stem, _, fallback_suffix = default.partition(".")
    part = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = part.rpartition(".")
    if not dot:
        stem, suffix = part, ""
    suffix = _UNSAFE.sub("", suffix)[:10] or fallback_suffix
    stem = _UNSAFE.sub("_", stem).strip("._") or fallback_stem
    room = MAX_NAME_BYTES - len(suffix) - 1
    return stem[:room] + ("." + suffix if suffix else "")


_private_folder: Path | None = None


def private_upload_folder() -> Path:
    """This process's own folder for uploads (one per user and notebook kernel): made once with
    :func:`tempfile.mkdtemp` (mode 0700, a new random name), so no other user can see it or plant
    links in it."""
    global _private_folder
    if _private_folder is None or not _private_folder.is_dir():
        _private_folder = Path(tempfile.mkdtemp(prefix="didlearn-uploads-"))
    return _private_folder


def _store(content: bytes, folder: Path, name: str) -> Path:
    """Write ``content`` to a new file in ``folder`` named after ``name`` (never an existing
    file or link: :func:`tempfile.mkstemp` creates it exclusively, mode 0600)."""
    stem, dot, suffix = name.rpartition(".")
    prefix, ending = (stem, "." + suffix) if dot else (name, "")
    handle, path = tempfile.mkstemp(prefix=f"{prefix}-", suffix=ending, dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return Path(path)


def receive_video(value: Any, state: UploadState, folder: str | Path | None = None) -> str:
    """Callback for a video upload: save it under ``folder`` and check it with ``video_info``.

    Videos are streamed from disk later, so the bytes are written to a new file in ``folder``
    (default: :func:`private_upload_folder`) under a :func:`safe_name`, and the path kept in
    ``state.video``. A file ffmpeg cannot read is deleted again, the earlier good upload stays
    what ``state.video`` points at, and the message says why; so does a disk that is full.
    """
    files = uploaded_files(value)
    if not files:
        state.message = "Nothing uploaded yet."
        return state.message
    name, content = files[0]
    shown = safe_name(name, default="upload.mp4")
    target_dir = Path(folder) if folder is not None else private_upload_folder()
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        path = _store(content, target_dir, shown)
    except OSError as exc:
        state.message = f"{shown}: could not be saved in {target_dir} ({exc.strerror or exc})."
        return state.message
    try:
        info = video_info(path)
    except DidlearnError as exc:
        path.unlink(missing_ok=True)
        state.message = f"{shown}: {exc}"
        return state.message
    previous, state.video, state.name = state.video, path, shown
    if previous is not None and previous.parent == target_dir and previous != path:
        previous.unlink(missing_ok=True)  # replaced by a good one: don't pile up copies
    audio = "with audio" if info.has_audio else "no audio"
    state.message = (
        f"{shown}: {info.width}x{info.height}, {info.n_frames} frames at {info.fps:g} fps, {audio}."
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
