"""The self-reenactment crop recipe: a clip's frames cropped with its FIRST frame's face square.

Training (``optimize.prepare_clip``), scoring (``protocol.prepare_self_reenactment``) and the
chapter 4 and 5 notebooks all see a talking-head clip this way::

    video ─► data.read_video ─► faces.track_landmarks (unsmoothed) ─► faces.crop_face of every
        frame with frame 0's landmarks (same matrix, same anti-alias blur) ─► crops + landmarks

One square for the whole clip keeps the head's motion in the picture: the model has to move the
face, not just repaint it in place. Layer: after ``faces`` (it only calls ``data`` and
``faces``), before ``generator``, so training and scoring code can both use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipCrops:
    """Frames of one clip cropped with the first frame's square.

    Attributes:
        frames: ``(T, S, S, 3)`` float32 crops in [0, 1] of the video frames ``indices``.
        landmarks: ``(T, 68, 2)`` float32 landmarks of those frames, in crop pixels.
        indices: ``(T,)`` int video frame numbers; always starts with frame 0.
        video_shape: ``(H, W)`` of the decoded video frames (pixels).
        fps: frames per second of the video.
    """

    frames: np.ndarray
    landmarks: np.ndarray
    indices: np.ndarray
    video_shape: tuple[int, int]
    fps: float


def crop_clip(
    path: str | os.PathLike, size: int, max_frames: int | None = None, every: int = 1
) -> ClipCrops:
    """Decode a video, track its landmarks (unsmoothed) and crop frames with frame 0's square.

    Args:
        path: the video file.
        size: crop side ``S`` in pixels.
        max_frames: decode at most this many frames (None: all).
        every: crop frame 0 and every ``every``-th frame after it (1, 1 + every, ...).

    Raises:
        NoFaceFoundError: no frame shows a face.
    """
    from . import data, faces

    video = data.read_video(path, max_frames=max_frames)
    track = faces.track_landmarks(video.frames, smoothing=False, fps=video.fps)
    lm0 = track.landmarks[0]
    first = faces.crop_face(video.frames[0], lm0, size)
    indices = np.array([0, *range(1, len(video.frames), every)])
    later = [faces.crop_face(video.frames[i], lm0, size).image for i in indices[1:]]
    return ClipCrops(
        np.stack([first.image, *later]),
        first.to_crop(track.landmarks[indices]),
        indices,
        tuple(video.frames.shape[1:3]),
        video.fps,
    )
