"""The driving motion: a driver's tracked, smoothed landmarks, its motion file and its best
reference frame (chapter 6).

::

    driving video ─► open_driving ─► frames ─► iter_tracked (LandmarkTracker) ─► DrivingMotion
    DrivingMotion ◄─► save_motion / load_motion (.npz)
    (DrivingMotion, ks) ─► best_reference ─► the frame relative motion is taken against

A :class:`DrivingMotion` is everything the Animator needs from a driver: with it, the video
itself (the driver's face) is no longer needed, and animating again skips the tracking.
"""

from __future__ import annotations

import math
import os
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidMotionFileError, NoFaceFoundError, UsageError

#: Longest side driving frames are decoded at: landmarks need no more, and detection is 4x
#: cheaper per halving. Relative transfer is scale-normalised, so the resolution cancels out.
DRIVING_MAX_SIDE = 480

#: The tag and version written into every motion file; a file with another tag is refused, one
#: with a newer version too (it may hold what this code does not know how to read).
MOTION_FORMAT = "didlearn-motion"
MOTION_VERSION = 1

#: The references ``reference=`` takes besides a frame number.
REFERENCES = ("auto", "first")

_NO_FACE_HINT = (
    "use a video of a face looking at the camera, large enough (at least ~80 pixels wide) "
    "and well lit."
)


# --------------------------------------------------------------------------------------------
# Driving frames
# --------------------------------------------------------------------------------------------


def _driving_size(width: int, height: int) -> tuple[int, int] | None:
    longest = max(width, height)
    if longest <= DRIVING_MAX_SIDE:
        return None
    s = DRIVING_MAX_SIDE / longest
    return max(2, round(width * s)), max(2, round(height * s))


def open_driving(
    driving: Any, max_frames: int | None = None
) -> tuple[Iterator[np.ndarray], float | None, int | None]:
    """Frames of a driving video as an iterator, with its fps and frame count when known.

    Args:
        driving: a video path, a (T, H, W, 3) array, or an iterable of (H, W, 3) frames.
        max_frames: use at most this many frames.

    Returns:
        ``(frames, fps or None, count or None)``. Large videos are decoded at
        :data:`DRIVING_MAX_SIDE` pixels (landmarks need no more).

    Raises:
        UnreadableMediaError: the path is not a readable video (raised here, before any work).
    """
    from . import data

    if isinstance(driving, str | os.PathLike):
        info = data.video_info(driving)
        size = _driving_size(info.width, info.height)
        frames = data.iter_video(driving, max_frames=max_frames, size=size)
        count = info.n_frames if max_frames is None else min(info.n_frames, max_frames)
        return frames, info.fps, count
    if isinstance(driving, np.ndarray):
        arr = driving[:max_frames] if max_frames is not None else driving
        return iter(arr), None, len(arr)
    it = iter(driving)
    if max_frames is not None:
        it = (f for _, f in zip(range(max_frames), it, strict=False))
    return it, None, None


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrivingMotion:
    """A driver's motion: its tracked, smoothed landmarks, frame by frame.

    Attributes:
        landmarks: (T, 68, 2) float32 (x, y) in driving-frame pixels (the decoded frames, at
            most :data:`DRIVING_MAX_SIDE` on their longest side). A frame without a face holds
            the last landmarks found; leading frames without a face hold the first ones.
        found: (T,) bool, whether the frame's face was found (False = held/bridged).
        fps: frames per second, or None when unknown (frames given as an array).
        frame_size: (width, height) of the driving frames the landmarks are in.
        source: the driving video's path (for its sound), or "" when there was none.
    """

    landmarks: np.ndarray
    found: np.ndarray
    fps: float | None
    frame_size: tuple[int, int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.landmarks)

    @property
    def first_found(self) -> int:
        """Index of the first frame with a face (frames before it stay neutral)."""
        return int(np.argmax(self.found))

    @property
    def bridged(self) -> int:
        """Frames whose face was not found (leading frames included)."""
        return int((~self.found).sum())

    def head(self, max_frames: int | None) -> DrivingMotion:
        """The first ``max_frames`` frames (all if None): what tracking that many would give,
        since the tracker and its smoothing only look back."""
        if max_frames is None or max_frames >= len(self):
            return self
        if not self.found[:max_frames].any():
            raise NoFaceFoundError(_no_face_message(max_frames))
        n = max_frames
        return DrivingMotion(
            self.landmarks[:n], self.found[:n], self.fps, self.frame_size, self.source
        )


def _no_face_message(frames: int) -> str:
    return f"No face was found in any of the {frames} driving frames: " + _NO_FACE_HINT


def iter_tracked(
    frames: Iterable[np.ndarray], fps: float | None
) -> Iterator[tuple[np.ndarray | None, bool]]:
    """Track a driver frame by frame (streamed): ``(landmarks (68, 2) float32 or None, found)``.

    The landmarks are :class:`didlearn.faces.LandmarkTracker`'s, smoothed with its one-euro
    filter at ``fps`` (30 if unknown); a frame without a face holds the last landmarks (found
    False), and frames before the first face give None.

    Raises:
        NoFaceFoundError: at the end, if no frame had a face.
    """
    from .faces import LandmarkTracker

    tracker = LandmarkTracker(smoothing=True, fps=fps or 30.0)
    seen = 0
    for frame in frames:
        seen += 1
        try:
            kd = tracker.update(frame)
        except NoFaceFoundError:
            kd = None  # no face yet: nothing to hold
        yield (None if kd is None else kd.copy()), tracker.found
    if tracker.raw is None:
        raise NoFaceFoundError(_no_face_message(seen))


def _frame_size(frame: np.ndarray) -> tuple[int, int]:
    return int(frame.shape[1]), int(frame.shape[0])


def track_driving(
    driving: Any, max_frames: int | None = None, progress: bool = False
) -> DrivingMotion:
    """Track every frame of a driver: a video path, a (T, H, W, 3) array or frames.

    Args:
        driving: see :func:`open_driving`.
        max_frames: track at most this many frames.
        progress: show a tqdm progress bar.

    Returns:
        :class:`DrivingMotion` (``source`` is the absolute path of a video, else "").

    Raises:
        UnreadableMediaError: unreadable video; NoFaceFoundError: no face in any frame.
    """
    from tqdm.auto import tqdm

    frames, fps, count = open_driving(driving, max_frames)
    sizes: list[tuple[int, int]] = []

    def sized(it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for f in it:
            if not sizes:
                sizes.append(_frame_size(np.asarray(f)))
            yield f

    bar = tqdm(total=count, desc="track", unit="frame", disable=not progress, file=sys.stderr)
    marks: list[np.ndarray | None] = []
    found: list[bool] = []
    try:
        for kd, ok in iter_tracked(sized(frames), fps):
            marks.append(kd)
            found.append(ok)
            bar.update(1)
    finally:
        bar.close()
    first = next(m for m in marks if m is not None)
    landmarks = np.stack([first if m is None else m for m in marks]).astype(np.float32)
    source = str(Path(driving).resolve()) if isinstance(driving, str | os.PathLike) else ""
    return DrivingMotion(landmarks, np.array(found, bool), fps, sizes[0], source)


# --------------------------------------------------------------------------------------------
# Motion files
# --------------------------------------------------------------------------------------------


def save_motion(motion: DrivingMotion, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a motion file (``.npz``, through :func:`didlearn.data.atomic_output`).

    It holds the landmarks (T, 68, 2), ``found`` (T,), ``fps`` (NaN = unknown), the frame
    count, the driving frame size (width, height), the source video's path (for its sound),
    and the format tag and version. No pickled objects: it loads with ``allow_pickle=False``.

    Raises:
        UsageError: ``path`` does not end in ``.npz``; OutputExistsError: it exists (and no
        ``overwrite``) or cannot be written.
    """
    from .data import atomic_output

    target = Path(path)
    if target.suffix.lower() != ".npz":
        raise UsageError(f"the motion file '{target}' must end in .npz.")
    fields: dict[str, Any] = {  # Any: savez_compressed types its keywords as allow_pickle
        "format": np.array(MOTION_FORMAT),
        "version": np.array(MOTION_VERSION, np.int64),
        "landmarks": np.asarray(motion.landmarks, np.float32),
        "found": np.asarray(motion.found, bool),
        "fps": np.array(math.nan if motion.fps is None else motion.fps, np.float64),
        "frame_count": np.array(len(motion), np.int64),
        "frame_size": np.array(motion.frame_size, np.int64),
        "source": np.array(motion.source),
    }
    with atomic_output(target, overwrite) as temp, open(temp, "wb") as handle:
        np.savez_compressed(handle, **fields)  # a handle: np.savez would append ".npz" to temp
    return target


def _read_fields(path: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz (read now, so a truncated member fails here)."""
    remake = "make it again with `didlearn motion VIDEO -o FILE.npz`."
    if not zipfile.is_zipfile(path):  # an .npz is a zip archive; np.load would guess on
        raise InvalidMotionFileError(
            f"'{path}' is not a didlearn motion file (not an .npz archive, or cut short "
            "before its table of contents): " + remake
        )
    try:
        archive = np.load(path, allow_pickle=False)
        with archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise InvalidMotionFileError(
            f"'{path}' is a damaged motion file (truncated or corrupt: {type(exc).__name__}): "
            + remake
        ) from exc


def load_motion(path: str | os.PathLike) -> DrivingMotion:
    """Read a motion file written by :func:`save_motion`, every field checked.

    Raises:
        InvalidMotionFileError: missing, not an .npz, damaged, another program's .npz, a newer
            version, or fields of the wrong shape or type (the message says which).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "No such file" if not path.exists() else "Not a regular file"
        raise InvalidMotionFileError(f"{what}: '{path}'. Check the path of the motion file.")
    fields = _read_fields(path)
    remake = "make it again with `didlearn motion VIDEO -o FILE.npz`."
    tag = fields.get("format")
    if tag is None or tag.shape != () or tag.dtype.kind != "U" or str(tag) != MOTION_FORMAT:
        raise InvalidMotionFileError(
            f"'{path}' is an .npz but not a didlearn motion file (no '{MOTION_FORMAT}' tag): "
            + remake
        )
    version = fields.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise InvalidMotionFileError(f"'{path}' has no valid format version: " + remake)
    if int(version) > MOTION_VERSION:
        raise InvalidMotionFileError(
            f"'{path}' is a version {int(version)} motion file; this didlearn reads version "
            f"{MOTION_VERSION} and older: upgrade didlearn or make the file again."
        )
    return _motion_of(path, fields, remake)


def _motion_of(path: Path, fields: dict[str, np.ndarray], remake: str) -> DrivingMotion:
    def wrong(what: str) -> InvalidMotionFileError:
        return InvalidMotionFileError(f"'{path}' is a damaged motion file ({what}): " + remake)

    needed = ("landmarks", "found", "fps", "frame_count", "frame_size", "source")
    missing = [k for k in needed if k not in fields]
    if missing:
        raise wrong("missing " + ", ".join(missing))
    lm, found = fields["landmarks"], fields["found"]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2) or lm.dtype.kind != "f" or len(lm) == 0:
        raise wrong(f"landmarks of shape {lm.shape}, not (T, 68, 2)")
    if not np.isfinite(lm).all():
        raise wrong("landmarks that are not finite")
    if found.shape != (len(lm),) or found.dtype != bool or not found.any():
        raise wrong(f"'found' of shape {found.shape} for {len(lm)} frames, or no face")
    count, size, fps = fields["frame_count"], fields["frame_size"], fields["fps"]
    if count.shape != () or int(count) != len(lm):
        raise wrong(f"frame count {count} for {len(lm)} frames of landmarks")
    if size.shape != (2,) or size.dtype.kind not in "iu" or (size <= 0).any():
        raise wrong(f"frame size {size}")
    if fps.shape != () or fps.dtype.kind != "f" or not (math.isnan(fps) or fps > 0):
        raise wrong(f"fps {fps}")
    source = fields["source"]
    if source.shape != () or source.dtype.kind != "U":
        raise wrong("source is not a name")
    return DrivingMotion(
        lm.astype(np.float32),
        found.copy(),
        None if math.isnan(float(fps)) else float(fps),
        (int(size[0]), int(size[1])),
        str(source),
    )


# --------------------------------------------------------------------------------------------
# The reference frame
# --------------------------------------------------------------------------------------------


def pose_distances(motion: DrivingMotion, ks: np.ndarray) -> np.ndarray:
    """How far each driving frame's pose and expression are from the photo's: (T,) float64.

    Each frame's landmarks are mapped onto the photo's ``ks`` (68, 2) by the least-squares
    similarity (:func:`didlearn.motion.umeyama`: shift, scale, in-plane rotation), so position,
    size and roll cancel; what is left, the mean distance in the photo's pixels divided by its
    face size, is the head turn and the expression (plus the two faces' constant difference
    in shape). Frames without a face get +inf.
    """
    from .motion import umeyama

    ks = np.asarray(ks, np.float64)
    size = float(np.ptp(ks, axis=0).max())
    out = np.full(len(motion), np.inf)
    for t in np.flatnonzero(motion.found):
        kd = motion.landmarks[t].astype(np.float64)
        scale, rot, shift = umeyama(kd, ks)
        aligned = scale * kd @ rot.T + shift
        out[t] = np.linalg.norm(aligned - ks, axis=1).mean() / size
    return out


def best_reference(motion: DrivingMotion, ks: np.ndarray) -> int:
    """The driving frame whose pose and expression are closest to the photo's (landmarks
    ``ks`` (68, 2)), by :func:`pose_distances`: relative motion taken against it moves the
    photo by what the driver does *beyond* the photo's own expression."""
    return int(np.argmin(pose_distances(motion, ks)))


def resolve_reference(reference: str | int, motion: DrivingMotion, ks: np.ndarray) -> int:
    """The frame index ``reference`` ("auto", "first" or a frame number) means for ``motion``.

    Raises:
        UsageError: a frame number out of range, or of a frame without a face.
    """
    if reference == "auto":
        return best_reference(motion, ks)
    if reference == "first":
        return motion.first_found
    n = check_reference(reference)
    assert isinstance(n, int)
    if n >= len(motion):
        raise UsageError(
            f"reference frame {n} is out of range: the driver has {len(motion)} frames "
            f"(0 to {len(motion) - 1})."
        )
    if not motion.found[n]:
        raise UsageError(
            f"no face was found in driving frame {n}: choose another reference frame, or auto."
        )
    return n


def check_reference(reference: Any) -> str | int:
    """``reference`` if it is "auto", "first" or a frame number >= 0.

    Raises:
        UsageError: anything else.
    """
    if isinstance(reference, str) and reference in REFERENCES:
        return reference
    if isinstance(reference, int | np.integer) and not isinstance(reference, bool):
        if reference >= 0:
            return int(reference)
    raise UsageError(
        f"reference must be 'auto', 'first' or a frame number (0 or more), not {reference!r}."
    )
