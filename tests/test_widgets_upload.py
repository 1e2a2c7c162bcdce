"""The chapter 0 upload widget's callbacks, driven with FileUpload values built by hand."""

import datetime
import io

import numpy as np
from PIL import Image

from didlearn import data
from didlearn.widgets.upload import (
    UploadState,
    receive_image,
    receive_video,
    upload_widget,
    uploaded_files,
)


def upload_value(name: str, content: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8 puts in ``FileUpload.value`` after the browser sends one file."""
    return (
        {
            "name": name,
            "type": "",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


def png_bytes(mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (6, 4), (0, 0, 255, 0) if mode == "RGBA" else (0, 0, 255)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def test_uploaded_files_reads_both_ipywidgets_formats():
    assert uploaded_files(upload_value("a.png", b"xy")) == [("a.png", b"xy")]
    assert uploaded_files({"b.png": {"metadata": {}, "content": b"z"}}) == [("b.png", b"z")]
    assert uploaded_files(()) == []


def test_receive_image_goes_through_load_image():
    state = UploadState()
    message = receive_image(upload_value("dot.png", png_bytes()), state)
    assert "6x4" in message and state.name == "dot.png"
    np.testing.assert_allclose(state.image, np.ones((4, 6, 3)))  # transparent -> white


def test_bad_image_upload_reports_and_keeps_the_previous_photo():
    state = UploadState()
    receive_image(upload_value("ok.png", png_bytes("RGB")), state)
    kept = state.image
    message = receive_image(upload_value("notes.jpg", b"just some text\n"), state)
    assert "notes.jpg" in message and "text file" in message and state.image is kept
    message = receive_image(upload_value("ok.png", png_bytes("RGB")), state, max_pixels=10)
    assert "over the limit" in message


def test_receive_video_saves_and_checks(tmp_path):
    clip = data.write_video(np.zeros((3, 16, 16, 3)), tmp_path / "clip.mp4", fps=10)
    state = UploadState()
    message = receive_video(upload_value("../clip.mp4", clip.read_bytes()), state, tmp_path / "up")
    assert state.video == tmp_path / "up" / "clip.mp4" and "3 frames" in message
    message = receive_video(upload_value("fake.mp4", b"hello"), state, tmp_path / "up")
    assert "text file" in message and not (tmp_path / "up" / "fake.mp4").exists()


def test_upload_widget_observer_updates_state_and_label():
    box, state = upload_widget("image")
    upload, label = box.children
    upload.value = upload_value("dot.png", png_bytes())  # what the browser does
    assert state.image is not None and label.value == state.message
