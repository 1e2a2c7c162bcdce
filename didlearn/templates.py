"""Motion templates: driving landmark trajectories for when there is no driving video (ch. 6).

Deep Nostalgia offers a menu of "drivers" instead of asking for a video. Here a driver is what
the Animator needs from a video anyway: 68 landmarks per frame, ``(T, 68, 2)``, whose frame 0 is
the neutral face (relative transfer borrows only the displacement ``kd_t - kd_0``).

They are generated, not recorded:

* head motion (``nod`` = pitch, ``turn`` = yaw, ``tilt`` = roll) lifts the 2-D landmarks onto the
  3-D head of :mod:`didlearn.head` (an ellipsoid for the face plus a nose that sticks out),
  rotates them about a pivot in the neck, and projects them back orthographically
  (:func:`rotate_head`, importable from here too);
* ``blink`` closes the eyelids (upper lid down to the lower one) with the fast-close / slower-open
  profile of a real blink (about 100 ms + 150 ms);
* ``smile`` pulls the mouth corners out and up and opens the lips slightly;
* ``idle`` is what a face does while listening: slow, small head motion (a few sines with random
  phases, fixed by ``seed``) with blinks every 2–5 s.

The base face is either the photo's own landmarks (what :class:`didlearn.animate.Animator` uses,
so the 3-D rotation is that of the photo's face) or :func:`canonical_face`, a symmetric mean-ish
face built from the bundled portrait.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .head import rotate_head
from .landmarks import LIDS, MIRROR

#: natural amplitudes at intensity 1 (degrees for rotations, fractions for the rest)
AMPLITUDES = {"nod": 12.0, "turn": 22.0, "tilt": 10.0, "blink": 1.0, "smile": 1.0}


@functools.lru_cache(maxsize=1)
def canonical_face(size: int = 256) -> np.ndarray:
    """A frontal, left-right symmetric 68-point face in a ``size`` x ``size`` face crop.

    Built from the bundled portrait: its landmarks, averaged with their mirror image (so the
    slight head turn of the photo cancels), placed the way :func:`didlearn.faces.crop_face` places
    a face. Computed once (one face detection, about a second).

    Returns:
        (68, 2) float32 (x, y) pixels.
    """
    from . import data, faces

    lm = faces.face_landmarks(data.sample_portrait()).astype(np.float64)
    cx = lm[:, 0].mean()
    mirrored = lm[MIRROR] * [-1.0, 1.0] + [2 * cx, 0.0]
    sym = (lm + mirrored) / 2
    m = faces.crop_matrix(sym, size)
    return (sym @ m[:, :2].T + m[:, 2]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Time profiles: f(t) in [0, 1] (or [-1, 1]), f(0) = 0 so frame 0 is the neutral face
# --------------------------------------------------------------------------------------------


def _swing(t: np.ndarray, duration: float, cycles: float) -> np.ndarray:
    """Back-and-forth motion: a sine with a smooth envelope that is 0 at both ends."""
    phase = t / max(duration, 1e-9)
    envelope = np.sin(np.pi * phase) ** 2
    return envelope * np.sin(2 * np.pi * cycles * phase)


def _blink_profile(t: np.ndarray, at: float, close: float = 0.1, reopen: float = 0.15):
    """Eye closure in [0, 1] of one blink starting at ``at`` seconds (fast close, slower open)."""
    s = t - at
    closing = np.clip(s / close, 0.0, 1.0)
    opening = np.clip((s - close) / reopen, 0.0, 1.0)
    return np.where(
        s < close, np.sin(0.5 * np.pi * closing) ** 2, np.cos(0.5 * np.pi * opening) ** 2
    )


def _hold(t: np.ndarray, duration: float, rise: float = 0.25) -> np.ndarray:
    """Rise smoothly over ``rise`` of the duration, hold, fall back over the last ``rise``."""
    phase = t / max(duration, 1e-9)
    up = np.clip(phase / rise, 0.0, 1.0)
    down = np.clip((1 - phase) / rise, 0.0, 1.0)
    ramp = np.minimum(up, down)
    return ramp * ramp * (3 - 2 * ramp)


# --------------------------------------------------------------------------------------------
# Geometry: eyelids, mouth (the 3-D head rotation is didlearn.head.rotate_head)
# --------------------------------------------------------------------------------------------


def close_eyes(frames: np.ndarray, closure: np.ndarray) -> np.ndarray:
    """Move each upper eyelid towards its lower lid by ``closure`` (T,) in [0, 1] (1 = shut).

    The lower lid rises by an eighth of the way, as in a real blink; a shut eye keeps a gap of
    5 % of the opening, so no two landmarks ever coincide (a thin-plate spline through two
    different targets at one point has no solution).
    """
    out = np.array(frames, dtype=np.float32, copy=True)
    c = np.asarray(closure, dtype=np.float32)[:, None]
    for up, low in LIDS:
        gap = out[:, low] - out[:, up]
        out[:, up] += 0.83 * c * gap
        out[:, low] -= 0.12 * c * gap
    return out


def smile(frames: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Pull the mouth corners out and up and part the lips, by ``amount`` (T,) (1 = a clear smile).

    Displacements are fractions of the mouth width, so they scale with the face.
    """
    out = np.array(frames, dtype=np.float32, copy=True)
    a = np.asarray(amount, dtype=np.float32)[:, None]
    width = np.linalg.norm(out[:, 54] - out[:, 48], axis=-1)[:, None]
    for corner, sign in ((48, -1.0), (54, 1.0), (60, -1.0), (64, 1.0)):
        out[:, corner, 0] += sign * 0.12 * a[:, 0] * width[:, 0]
        out[:, corner, 1] -= 0.1 * a[:, 0] * width[:, 0]
    # the lips next to the corners follow half-way: a curved, not a kinked, smile
    for pt, sign in ((49, -1.0), (59, -1.0), (53, 1.0), (55, 1.0)):
        out[:, pt, 0] += sign * 0.06 * a[:, 0] * width[:, 0]
        out[:, pt, 1] -= 0.05 * a[:, 0] * width[:, 0]
    # lips part: the lower lip (outer 55-59, inner 65-67) drops a little
    for pt in (56, 57, 58, 65, 66, 67):
        out[:, pt, 1] += 0.06 * a[:, 0] * width[:, 0]
    return out


# --------------------------------------------------------------------------------------------
# The templates
# --------------------------------------------------------------------------------------------


def _nod(base, t, duration, k, seed):
    return rotate_head(base, AMPLITUDES["nod"] * k * _swing(t, duration, 2.0), 0.0, 0.0)


def _turn(base, t, duration, k, seed):
    return rotate_head(base, 0.0, AMPLITUDES["turn"] * k * _swing(t, duration, 1.0), 0.0)


def _tilt(base, t, duration, k, seed):
    return rotate_head(base, 0.0, 0.0, AMPLITUDES["tilt"] * k * _swing(t, duration, 1.0))


def _blink_times(duration: float, rng: np.random.Generator, first: float) -> list[float]:
    times, at = [], first
    while at < duration - 0.3:
        times.append(at)
        at += rng.uniform(2.0, 5.0)
    return times


def _blink(base, t, duration, k, seed):
    still = np.repeat(np.asarray(base, np.float32)[None], len(t), axis=0)
    at = [duration * f for f in (0.25, 0.65)] if duration >= 1.0 else [0.05]
    closure = np.max([_blink_profile(t, a) for a in at], axis=0)
    return close_eyes(still, np.clip(k * closure, 0.0, 1.0))


def _smile(base, t, duration, k, seed):
    still = np.repeat(np.asarray(base, np.float32)[None], len(t), axis=0)
    return smile(still, k * _hold(t, duration))


def _idle(base, t, duration, k, seed):
    rng = np.random.default_rng(seed)
    angles = []
    for amplitude in (3.0, 5.0, 2.0):  # pitch, yaw, roll in degrees: small, slow, never still
        freqs = rng.uniform(0.1, 0.35, size=2)
        phases = rng.uniform(0, 2 * np.pi, size=2)
        wave = sum(
            np.sin(2 * np.pi * f * t + p) - np.sin(p) for f, p in zip(freqs, phases, strict=True)
        )
        angles.append(k * amplitude * wave / 2)
    frames = rotate_head(base, *angles)
    closure = np.zeros_like(t)
    for at in _blink_times(duration, rng, first=rng.uniform(0.5, 1.5)):
        closure = np.maximum(closure, _blink_profile(t, at))
    frames = close_eyes(frames, np.clip(k, 0.0, 1.0) * closure)
    return smile(frames, 0.15 * k * _hold(t, duration, rise=0.4))


_TEMPLATES: dict[str, tuple[Callable, str]] = {
    "nod": (_nod, "head nods twice (pitch)"),
    "turn": (_turn, "head turns to one side and the other (yaw)"),
    "tilt": (_tilt, "head tilts side to side (roll)"),
    "blink": (_blink, "eyes blink twice"),
    "smile": (_smile, "a slow smile, held, then relaxed"),
    "idle": (
        _idle,
        "natural idle: small slow head motion, blinks every few seconds, a hint of smile",
    ),
}


def list_templates() -> dict[str, str]:
    """Template names and one-line descriptions, in menu order."""
    return {name: desc for name, (_, desc) in _TEMPLATES.items()}


def make_template(
    name: str,
    duration: float = 4.0,
    fps: float = 25.0,
    intensity: float = 1.0,
    base: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Driving landmarks of a motion template.

    Args:
        name: one of :func:`list_templates`.
        duration: seconds.
        fps: frames per second.
        intensity: motion amplitude (1 = natural; 0 = no motion; 2 = exaggerated).
        base: (68, 2) neutral landmarks to move (the photo's own, in any coordinates); default
            :func:`canonical_face` in a 256 x 256 crop.
        seed: randomness of ``idle``.

    Returns:
        (T, 68, 2) float32 landmarks with ``T = round(duration * fps)``; frame 0 equals ``base``.

    Raises:
        ValueError: unknown name, or non-positive duration/fps.
    """
    if name not in _TEMPLATES:
        raise ValueError(
            f"unknown template '{name}': choose one of {', '.join(_TEMPLATES)} "
            "(see `didlearn templates`)"
        )
    if duration <= 0 or fps <= 0:
        raise ValueError(f"duration and fps must be positive, got {duration} s at {fps} fps")
    frames = max(int(round(duration * fps)), 1)
    t = np.arange(frames, dtype=np.float64) / fps
    pts = canonical_face() if base is None else np.asarray(base, dtype=np.float32)
    if pts.shape != (68, 2):
        raise ValueError(f"base must be (68, 2) landmarks, got shape {pts.shape}")
    fn = _TEMPLATES[name][0]
    return np.asarray(fn(pts, t, float(duration), float(intensity), seed), dtype=np.float32)
