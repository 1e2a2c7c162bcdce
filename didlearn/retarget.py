"""Retargeting: eye and mouth openness targets, head-pose offsets, and the pose / expression split.

Everything happens on the target keypoints, in crop pixels, just before they are rendered, so it
acts on any motion source (a driving video, a template, given targets). With ``ks`` the photo's
own (68, 2) landmarks and ``kp`` one frame's targets, :meth:`Retarget.apply` does, in order:

1. **Split** (only when needed): fit the rigid head pose of the photo's 3-D head that explains
   ``kp`` (:func:`didlearn.head.fit_pose`: rotation + scale + shift, fitted to the landmarks
   that move with the head only), and take the **expression** as what the pose leaves over,
   carried back into the photo's frame: ``kp = place(ks, expression, pose)`` exactly.
2. **Region**: keep what ``region`` asks for: ``all`` (both), ``pose`` (the head moves, the
   face keeps the photo's expression), ``expression`` (the face moves, the head stays where the
   photo has it), ``eyes`` (only the eyes' and brows' expression), ``lips`` (only the mouth's
   and chin's expression). Then turn the head further by ``pitch``, ``yaw``, ``roll`` and put
   the expression back on it.
3. **Openness targets**: set the eyes' and the mouth's openness, measured as aspect ratios
   (:func:`didlearn.landmarks.eye_aspect_ratio`, :func:`~didlearn.landmarks.mouth_aspect_ratio`),
   whatever the driver does:

   * ``eyes``: the fraction of the photo's own eye opening (1 = as open as in the photo,
     0 = closed, up to 1.5 = wider). The upper lid does most of the moving, as in a blink.
   * ``mouth``: the mouth aspect ratio itself (mean inner-lip gap / mouth width): 0 = closed,
     about 0.2 = talking, up to 0.8 = wide open; the lower lip and the chin drop, as a jaw does.

A closed eye or mouth keeps a small gap (:data:`MIN_EYE_OPENNESS`, :data:`MIN_MOUTH_GAP`), so
no two target landmarks coincide (the thin-plate spline through them would have no solution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .errors import UsageError
from .head import Pose, fit_pose, place
from .landmarks import (
    EYE_CORNERS,
    INNER_LIP_PAIRS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    LIDS,
    MOUTH,
    MOUTH_CORNERS,
    OUTER_LIP_PAIRS,
    RIGHT_BROW,
    RIGHT_EYE,
)

#: What ``region`` may be, with what each keeps of a frame's motion.
REGIONS = {
    "all": "the whole motion (head pose and expression)",
    "pose": "the head pose only (rotation, scale, shift); the face keeps the photo's expression",
    "expression": "the expression only; the head stays as in the photo",
    "eyes": "the expression of the eyes and brows only",
    "lips": "the expression of the mouth and chin only",
}

#: The allowed values (inclusive): openness targets and head-pose offsets in degrees.
RANGES: dict[str, tuple[float, float]] = {
    "eyes": (0.0, 1.5),
    "mouth": (0.0, 0.8),
    "yaw": (-45.0, 45.0),
    "pitch": (-30.0, 30.0),
    "roll": (-45.0, 45.0),
}

#: What the values mean, for messages and the command line's help.
MEANINGS = {
    "eyes": "eye openness as a fraction of the photo's own open eye (0 closed, 1 as in the photo)",
    "mouth": "mouth aspect ratio: inner-lip gap / mouth width (0 closed, ~0.2 talking)",
    "yaw": "head turn in degrees added to the motion (> 0: the face turns to the image's right)",
    "pitch": "head nod in degrees added to the motion (> 0: the chin goes down)",
    "roll": "head tilt in degrees added to the motion (> 0: clockwise)",
}

#: A closed eye keeps this fraction of the photo's opening; a closed mouth this fraction of its
#: width: a gap of a pixel or so, so that no two target landmarks coincide.
MIN_EYE_OPENNESS = 0.05
MIN_MOUTH_GAP = 0.01

#: Share of a change in the lids' gap taken by the upper lid (the rest by the lower one), and of
#: a change in the lips' gap taken by the lower lip (the jaw drops; the upper lip hardly moves).
UPPER_LID_SHARE = 0.87
LOWER_LIP_SHARE = 0.8

#: The middle pair of inner lips opens most: the shape of an open mouth, side / middle / side.
LIP_PROFILE = np.array([0.8, 1.0, 0.8])

#: How far the chin (jaw points 6..10) follows the middle of the lower lip.
CHIN_FOLLOWS = {6: 0.3, 7: 0.6, 8: 0.8, 9: 0.6, 10: 0.3}

_EYES_REGION = np.r_[RIGHT_BROW, LEFT_BROW, RIGHT_EYE, LEFT_EYE]
_LIPS_REGION = np.r_[MOUTH, np.arange(JAW.start + 4, JAW.stop - 4)]  # the lips and the chin


def check_values(values: Mapping[str, object], prefix: str = "") -> None:
    """Raise :class:`UsageError` for the first value out of :data:`RANGES` (or an unknown
    region); ``prefix`` spells the names (``"--"`` for the command line's options). None = no
    openness target."""
    region = values.get("region", "all")
    if region not in REGIONS:
        raise UsageError(
            f"{prefix}region '{region}' is not one of {', '.join(REGIONS)}: choose one of them."
        )
    for name, (low, high) in RANGES.items():
        value = values.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise UsageError(f"{prefix}{name} must be a number from {low:g} to {high:g}.")
        if not low <= value <= high:
            raise UsageError(
                f"{prefix}{name} {value:g} is out of range: give a value from {low:g} to "
                f"{high:g}: {MEANINGS[name]}."
            )


@dataclass(frozen=True)
class Retarget:
    """What to keep of a motion and what to set, applied to each frame's target keypoints.

    Args:
        eyes: eye openness target, a fraction of the photo's own eye opening (0 = closed,
            1 = as in the photo, at most 1.5); None = the driver's.
        mouth: mouth aspect ratio target (inner-lip gap / mouth width; 0 = closed, at most
            0.8); None = the driver's.
        yaw, pitch, roll: head-pose offsets in degrees added to every frame (as
            :func:`didlearn.head.rotation`: yaw > 0 turns the face to the image's right, pitch
            > 0 lowers the chin, roll > 0 tilts clockwise).
        region: the part of the motion to transfer, one of :data:`REGIONS`.

    Raises:
        UsageError: a value out of :data:`RANGES` or an unknown region.
    """

    eyes: float | None = None
    mouth: float | None = None
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    region: str = "all"

    def __post_init__(self) -> None:
        check_values(asdict(self))

    @property
    def neutral(self) -> bool:
        """True if :meth:`apply` returns every ``kp`` unchanged."""
        return self.region == "all" and self.eyes is None and self.mouth is None and not self.turn

    @property
    def turn(self) -> bool:
        """True if there is a head-pose offset."""
        return bool(self.yaw or self.pitch or self.roll)

    def apply(self, ks: np.ndarray, kp: np.ndarray) -> np.ndarray:
        """Retarget one frame's target keypoints.

        Args:
            ks: (68, 2) the photo's own landmarks (its neutral face), crop pixels.
            kp: (68, 2) the frame's target keypoints, same pixels.

        Returns:
            (68, 2) float32 target keypoints (``kp`` itself, as float32, if :attr:`neutral`).
        """
        kp = np.asarray(kp, np.float32)
        if self.neutral:
            return kp
        ks64 = np.asarray(ks, np.float64)
        out = np.asarray(kp, np.float64)
        if self.region != "all" or self.turn:
            pose, expression = split(ks64, out)
            pose, expression = self._keep(ks64, pose, expression)
            out = place(ks64, expression, pose.turned(self.pitch, self.yaw, self.roll))
        if self.eyes is not None:
            out = set_eye_openness(ks64, out, self.eyes)
        if self.mouth is not None:
            out = set_mouth_openness(out, self.mouth)
        return out.astype(np.float32)

    def _keep(self, ks: np.ndarray, pose: Pose, expression: np.ndarray) -> tuple[Pose, np.ndarray]:
        """The part of (pose, expression) that :attr:`region` keeps."""
        if self.region == "pose":
            return pose, ks.copy()
        if self.region == "expression":
            return Pose(), expression
        if self.region in ("eyes", "lips"):
            part = _EYES_REGION if self.region == "eyes" else _LIPS_REGION
            kept = ks.copy()
            kept[part] = expression[part]
            return Pose(), kept
        return pose, expression


def split(ks: np.ndarray, kp: np.ndarray) -> tuple[Pose, np.ndarray]:
    """A frame's keypoints as head pose + expression.

    Args:
        ks: (68, 2) the photo's landmarks; kp: (68, 2) the frame's, same pixels.

    Returns:
        ``(pose, expression)``: the rigid :class:`~didlearn.head.Pose` of the photo's head
        fitted to ``kp`` (:func:`~didlearn.head.fit_pose`), and (68, 2) float64 landmarks in the
        photo's frame (``ks`` + what the pose does not explain, its turn and scale undone),
        with ``place(ks, expression, pose) == kp``.
    """
    ks, kp = np.asarray(ks, np.float64), np.asarray(kp, np.float64)
    pose = fit_pose(ks, kp)
    residual = kp - place(ks, ks, pose)
    # place() is affine in the points with linear part pose.linear(): undo it on the residual
    return pose, ks + residual @ np.linalg.inv(pose.linear()).T


def _down(points: np.ndarray, a: int, b: int) -> tuple[np.ndarray, float]:
    """Unit normal of the line from landmark ``a`` to ``b``, pointing down the face; its length."""
    u = points[b] - points[a]
    width = float(np.linalg.norm(u))
    return np.array([-u[1], u[0]]) / max(width, 1e-9), width


def set_eye_openness(ks: np.ndarray, kp: np.ndarray, openness: float) -> np.ndarray:
    """Move the eyelids of ``kp`` (68, 2) so each lid pair is open ``openness`` times as wide as
    in the photo ``ks`` (68, 2), scaled by the eye's width; at least :data:`MIN_EYE_OPENNESS`.

    Each pair is set across the eye (normal to its corners' line) about the point where a blink
    would close it (the upper lid does :data:`UPPER_LID_SHARE` of the closing): an eye aspect
    ratio of ``openness`` times the photo's. Returns float64.
    """
    out = np.array(kp, np.float64)
    for (a, b), lids in zip(EYE_CORNERS, (LIDS[:2], LIDS[2:]), strict=True):
        n, width = _down(out, a, b)
        n0, width0 = _down(ks, a, b)
        for up, low in lids:
            photo_gap = float((ks[low] - ks[up]) @ n0)
            target = max(openness, MIN_EYE_OPENNESS) * photo_gap * width / max(width0, 1e-9)
            # the lids meet where a blink closes them; the gap across the eye becomes the
            # target, and its slant (a turned head's) shrinks with it, so a closed eye is shut
            gap = out[low] - out[up]
            across = float(gap @ n)
            slant = (gap - across * n) * min(target / max(across, 1e-9), 1.0)
            meet = out[up] + UPPER_LID_SHARE * gap
            new_gap = target * n + slant
            out[up] = meet - UPPER_LID_SHARE * new_gap
            out[low] = meet + (1 - UPPER_LID_SHARE) * new_gap
    return out


def set_mouth_openness(kp: np.ndarray, ratio: float) -> np.ndarray:
    """Open or close the mouth of ``kp`` (68, 2) to a mouth aspect ratio of ``ratio``.

    Each inner-lip pair gets the gap ``ratio * width`` shaped by :data:`LIP_PROFILE` (at least
    :data:`MIN_MOUTH_GAP` of the width); the lower lip takes :data:`LOWER_LIP_SHARE` of each
    change, the outer lips follow the inner lips facing them, and the chin follows the middle
    (:data:`CHIN_FOLLOWS`). Returns float64.
    """
    out = np.array(kp, np.float64)
    n, width = _down(out, *MOUTH_CORNERS)
    targets = ratio * width * LIP_PROFILE / LIP_PROFILE.mean()
    changes = [
        max(t, MIN_MOUTH_GAP * width) - float((out[lo] - out[up]) @ n)
        for t, (up, lo) in zip(targets, INNER_LIP_PAIRS, strict=True)
    ]
    # outer pairs (from the image's left) follow the inner pair facing them; the ends half-way
    outer = (0.5 * changes[0], changes[0], changes[1], changes[2], 0.5 * changes[2])
    pairs = (*INNER_LIP_PAIRS, *OUTER_LIP_PAIRS)
    for (up, lo), change in zip(pairs, (*changes, *outer), strict=True):
        out[up] -= (1 - LOWER_LIP_SHARE) * change * n
        out[lo] += LOWER_LIP_SHARE * change * n
    for i, share in CHIN_FOLLOWS.items():
        out[i] += share * LOWER_LIP_SHARE * changes[1] * n
    return out


__all__ = [
    "MEANINGS",
    "RANGES",
    "REGIONS",
    "Retarget",
    "check_values",
    "set_eye_openness",
    "set_mouth_openness",
    "split",
]
