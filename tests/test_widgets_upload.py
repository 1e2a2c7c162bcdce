"""The chapter 0 upload widget's callbacks, driven with FileUpload values built by hand."""

import datetime
import io
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from didlearn import data
from didlearn.widgets.upload import (
    MAX_NAME_BYTES,
    UploadState,
    private_upload_folder,
    receive_image,
    receive_video,
    safe_name,
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


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return data.write_video(np.zeros((3, 16, 16, 3)), folder / "clip.mp4", fps=10).read_bytes()


def test_receive_video_saves_and_checks(tmp_path, clip_bytes):
    state = UploadState()
    message = receive_video(upload_value("../clip.mp4", clip_bytes), state, tmp_path / "up")
    assert state.video.parent == tmp_path / "up" and "3 frames" in message
    assert state.video.name.startswith("clip-") and state.video.suffix == ".mp4"
    message = receive_video(upload_value("fake.mp4", b"hello"), state, tmp_path / "up")
    assert "text file" in message and not list((tmp_path / "up").glob("fake*"))


def test_a_failed_upload_keeps_the_earlier_good_one(tmp_path, clip_bytes):
    state = UploadState()
    receive_video(upload_value("clip.mp4", clip_bytes), state, tmp_path)
    good = state.video
    message = receive_video(upload_value("clip.mp4", b"not a video"), state, tmp_path)
    assert "clip.mp4" in message and state.video == good and good.read_bytes() == clip_bytes
    # a good new upload replaces the old file instead of piling up copies
    receive_video(upload_value("clip.mp4", clip_bytes), state, tmp_path)
    assert state.video != good and not good.exists() and state.video.exists()


def test_uploads_go_to_a_private_folder_and_never_follow_links(tmp_path, clip_bytes):
    folder = private_upload_folder()
    assert folder == private_upload_folder()  # one per kernel
    assert folder.parent == Path(tempfile.gettempdir()) and folder.name != "didlearn-uploads"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # a link planted where a predictable name would go is never written through
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (folder / "clip.mp4").symlink_to(victim)
    state = UploadState()
    receive_video(upload_value("clip.mp4", clip_bytes), state)
    assert victim.read_text() == "mine" and not state.video.is_symlink()
    assert state.video.parent == folder and state.video.read_bytes() == clip_bytes


@pytest.mark.parametrize(
    "sent, stored",
    [
        ("..", "upload.mp4"),
        ("", "upload.mp4"),
        ("a\x00b.mp4", "a_b.mp4"),
        ("../../etc/passwd", "passwd.mp4"),
        ("C:\\Users\\me\\talk.mp4", "talk.mp4"),
        (".hidden.mp4", "hidden.mp4"),
        ("讲话" * 90 + ".mp4", "upload.mp4"),
    ],
)
def test_every_name_is_stored_short_and_safe(sent, stored):
    assert safe_name(sent, default="upload.mp4") == stored


def test_long_names_are_cut_and_keep_their_ending(tmp_path, clip_bytes):
    state = UploadState()
    message = receive_video(upload_value("x" * 300 + ".mp4", clip_bytes), state, tmp_path)
    assert "3 frames" in message and state.video.suffix == ".mp4"
    assert len(state.video.name.encode()) <= MAX_NAME_BYTES + 12  # + mkstemp's random part


def test_a_decoder_error_of_a_rare_format_is_a_message(monkeypatch):
    import didlearn.widgets.upload as upload

    def broken(content, max_pixels):
        raise NotImplementedError("cannot decode this layer")

    monkeypatch.setattr(upload, "load_image", broken)
    state = UploadState()
    message = receive_image(upload_value("layers.psd", b"8BPS"), state)
    assert "layers.psd: could not be read as an image" in message and state.image is None


def test_upload_widget_observer_updates_state_and_label():
    box, state = upload_widget("image")
    upload, label = box.children
    upload.value = upload_value("dot.png", png_bytes())  # what the browser does
    assert state.image is not None and label.value == state.message
