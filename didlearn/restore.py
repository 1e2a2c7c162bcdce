"""Restore, then animate (chapter 6): the face region of an old photo restored by the Deep Image
Prior of :mod:`didlearn.image_prior` before it is animated.

::

    photo ─► faces.find_faces (or the face's landmarks) ─► face_box: the box grown by FACE_MARGIN
    box ─► work_shape: scaled down to WORK_MAX_SIDE ─► image_prior.pad_to_multiple
    "scratches": find_scratches on the box and around it (top-hat / black-hat, straight pieces
                 lined up on long lines) ─► the scratches' pixels unknown to the fit
    image_prior.fit_image_prior (stopped at the photo's noise level) ─► restored box
    restored box ─► the box's size ─► pasted with a feathered edge (outside the box: the photo)

What is restored is the network's output over the whole box, so both kinds denoise: ``denoise``
fits every pixel of the box and stops at the noise level (Morozov's discrepancy principle, see
:func:`~didlearn.image_prior.fit_image_prior`); ``scratches`` first finds the scratches and leaves
their pixels out of the loss, so the network fills them from their surroundings (inpainting) and
stops at the noise level as well. On a photo without noise the fit runs all its steps and
reproduces the rest of the box, a little softer than it was.

This is not what D-ID or Deep Nostalgia do: they run restoration networks trained on many
photos (faces especially), which also sharpen and colourise. The Deep Image Prior learns from
nothing but the one photo; it removes noise and fills thin scratches, smooths skin and fine
detail on the way, and costs minutes on a CPU (0.05-0.15 s a step on 2 cores, up to
:data:`STEPS` steps): the box is therefore restored at :data:`WORK_MAX_SIDE` pixels at most, and a
larger face comes back softer still.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import cv2
import numpy as np

from .config import pick
from .errors import NoFaceFoundError, UsageError

#: The restorations, and what each does (read by the command line's ``--restore``).
KINDS = ("denoise", "scratches")
MEANINGS = {
    "denoise": "remove the grain of the face region, stopping at the photo's noise level",
    "scratches": "find thin line scratches on the face region and fill them from their "
    "surroundings, removing the grain too",
}
#: The face box (the detector's, or the landmarks' bounding box) grows by this fraction of its
#: width and height on every side (0.5: twice as wide, the whole face and some hair), clipped to
#: the photo.
FACE_MARGIN = 0.5
#: The box is restored with its longest side at most this many pixels (scaled down, never up):
#: the fit's cost grows with the pixels (about 0.1 s a step at 192x192 on a 2-core CPU).
WORK_MAX_SIDE = 256
#: Multiple of the network's input size (``2**levels`` of the default 4-level network).
MULTIPLE = 16
#: Steps of the fit (at most: the discrepancy rule stops it earlier on a noisy photo).
STEPS = 2000
QUICK_STEPS = 500
#: Width of the feathered edge of the pasted box, as a fraction of its shorter side.
FEATHER = 0.1
#: Scratch finding (:func:`find_scratches`), in fractions of the image's shorter side: the
#: top-hat's disc (scratches up to about half as wide are found); the straight pieces a scratch is
#: made of, standing out from their surroundings by SCRATCH_CONTRAST grey levels (in [0, 1]) all
#: along; the line they must line up on (at least SCRATCH_LENGTH long, with SCRATCH_VOTES of its
#: pixels on pieces, and gaps of at most SCRATCH_GAP where the scratch matches what it crosses).
SCRATCH_HAT = 0.045
SCRATCH_PIECE = 0.08
SCRATCH_CONTRAST = 0.08
SCRATCH_LENGTH = 0.25
SCRATCH_VOTES = 0.15
SCRATCH_GAP = 0.06
#: Directions of the straight pieces tried (every 180 / SCRATCH_ANGLES degrees).
SCRATCH_ANGLES = 16
#: Steps timed (after the first, which includes the tracing) before the estimate is printed.
TIMED_STEPS = 2


def check_kind(kind: str, prefix: str = "") -> str:
    """``kind`` if it is one of :data:`KINDS`; ``prefix`` spells the name (``"--"`` for the
    command line's option).

    Raises:
        UsageError: another value (the message lists the kinds).
    """
    if kind not in KINDS:
        choices = " or ".join(f"'{k}' ({MEANINGS[k]})" for k in KINDS)
        raise UsageError(f"{prefix}restore {kind!r} is not a restoration: choose {choices}.")
    return kind


# --------------------------------------------------------------------------------------------
# Where: the face box, and the size it is restored at
# --------------------------------------------------------------------------------------------


_NO_FACE = (
    "The restoration works on the face region: try a photo where the face is larger (at least "
    "~80 pixels wide) and frontal, or animate it without restoring."
)


def face_box(photo: np.ndarray, face: Any = 0) -> tuple[int, int, int, int]:
    """The region restored: a face's box grown by :data:`FACE_MARGIN` on every side, clipped.

    Args:
        photo: (H, W, 3) RGB in [0, 1].
        face: an index into the faces found (``faces.find_faces``, 0 = best), a
            :class:`didlearn.faces.Face`, or a face's (68, 2) landmarks in photo pixels (their
            bounding box is the face's box).

    Returns:
        ``(x0, y0, x1, y1)`` integer photo pixels, ``x1`` and ``y1`` excluded:
        ``photo[y0:y1, x0:x1]`` is the region.

    Raises:
        NoFaceFoundError: no face, or fewer than ``face + 1`` (the message lists those found).
    """
    from .faces import Face, pick_face

    h, w = np.asarray(photo).shape[:2]
    if isinstance(face, (Face, int, np.integer)):
        box = pick_face(photo, face if isinstance(face, Face) else int(face), hint=_NO_FACE).box
    else:
        points = np.asarray(face, np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            raise ValueError(f"face must be an index, a Face or (N, 2) landmarks, got {face!r}")
        (bx0, by0), (bx1, by1) = points.min(axis=0), points.max(axis=0)
        box = (bx0, by0, bx1, by1)
    x0, y0, x1, y1 = (float(v) for v in box)
    gx, gy = FACE_MARGIN * (x1 - x0), FACE_MARGIN * (y1 - y0)
    region = (
        max(0, int(np.floor(x0 - gx))),
        max(0, int(np.floor(y0 - gy))),
        min(w, int(np.ceil(x1 + gx)) + 1),
        min(h, int(np.ceil(y1 + gy)) + 1),
    )
    if region[2] - region[0] < 2 or region[3] - region[1] < 2:
        raise NoFaceFoundError(f"the face's box {box} lies outside the {w}x{h} photo")
    return region


def work_shape(height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` at which a ``height`` x ``width`` box is restored: scaled down (never up) so
    that its longer side is at most :data:`WORK_MAX_SIDE`, aspect kept. The network runs on it
    padded to multiples of :data:`MULTIPLE` (``image_prior.pad_to_multiple``: the padding is
    unknown to the fit and cropped away); ``network_shape`` gives that size."""
    scale = min(1.0, WORK_MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def network_shape(height: int, width: int) -> tuple[int, int]:
    """``(h, w)`` of the network's input for a box: :func:`work_shape` rounded up to multiples
    of :data:`MULTIPLE`."""
    h, w = work_shape(height, width)
    return -(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE


# --------------------------------------------------------------------------------------------
# What: the scratches
# --------------------------------------------------------------------------------------------


def _line_kernels(length: int, angles: int) -> list[np.ndarray]:
    """Straight lines ``length`` pixels long through the centre of a square, one per direction."""
    c = length // 2
    kernels = []
    for a in np.arange(angles) * np.pi / angles:
        k = np.zeros((length, length), np.uint8)
        dx, dy = c * np.cos(a), c * np.sin(a)
        cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1, 1)
        kernels.append(k)
    return kernels


def find_scratches(image: np.ndarray, size: int | None = None) -> np.ndarray:
    """The pixels under thin, long, straight bright or dark lines (scratches of an old print).

    1. On the grey image (lightly blurred: the grain of a noisy photo must not count), the white
       top-hat (the image minus its opening by a disc :data:`SCRATCH_HAT` of the shorter side
       wide) keeps what is brighter than its surroundings and narrower than the disc; the black
       top-hat what is darker.
    2. Straight pieces: opened by straight lines :data:`SCRATCH_PIECE` long in
       :data:`SCRATCH_ANGLES` directions (the largest kept), a pixel stays only where it lies on
       such a piece that stands out by :data:`SCRATCH_CONTRAST` all along it. The noise does not
       stand out along a whole piece, nor does a small spot (a catch light, a nostril).
    3. Lines: the pieces must line up (a probabilistic Hough transform, ``cv2.HoughLinesP``) on
       a segment at least :data:`SCRATCH_LENGTH` long, with gaps of at most :data:`SCRATCH_GAP`
       where the scratch has about the colour of what it crosses. Eyes, lips, brows and most
       hair strands are too short or too curved.
    4. The scratch's whole width: the pixels near a segment whose top-hat is at least half the
       contrast, grown by a pixel.

    A scratch that barely stands out (a white line on white skin) is missed where it does not;
    a long straight thin line of the photo itself (a collar's piping, a strand of hair) may be
    taken for one: the fit then fills it in from its surroundings.

    Args:
        image: (H, W, 3) RGB in [0, 1], e.g. a face box at its working size.
        size: the length in pixels the fractions above refer to; default the image's shorter
            side. :func:`restore_face` looks at more than the face box (a scratch that leaves
            the box is longer than its part inside) with the box's size.

    Returns:
        (H, W) bool, True under a scratch.
    """
    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image must be an RGB image (H, W, 3) in [0, 1], got shape {img.shape}")
    short = min(img.shape[:2]) if size is None else int(size)
    grey = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (0, 0), 1.0)
    hat = max(5, round(SCRATCH_HAT * short) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (hat, hat))
    pieces = _line_kernels(max(5, round(SCRATCH_PIECE * short) | 1), SCRATCH_ANGLES)
    found = np.zeros(img.shape[:2], np.uint8)
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        standing_out = cv2.morphologyEx(grey, op, disc)
        along = np.stack([cv2.morphologyEx(standing_out, cv2.MORPH_OPEN, k) for k in pieces])
        segments = cv2.HoughLinesP(
            (along.max(axis=0) >= SCRATCH_CONTRAST).astype(np.uint8),
            1,
            np.pi / 180,
            max(5, round(SCRATCH_VOTES * short)),
            minLineLength=round(SCRATCH_LENGTH * short),
            maxLineGap=max(2, round(SCRATCH_GAP * short)),
        )
        for x0, y0, x1, y1 in [] if segments is None else segments.reshape(-1, 4):
            _mark_segment(found, along, (x0, y0, x1, y1), max(3, hat // 2))
    return cv2.dilate(found, np.ones((3, 3), np.uint8)).astype(bool)


def _mark_segment(found: np.ndarray, along: np.ndarray, segment, width: int) -> None:
    """Mark in ``found`` the pixels of a Hough segment that stand out along *its* direction
    (``along[k]``: the opening by the piece in direction ``k``, and the two next to it): pieces
    that line up by chance across a real line, or across a face, run another way. A segment
    with fewer than half its pixels on such pieces is dropped."""
    x0, y0, x1, y1 = (int(v) for v in segment)
    angles = len(along)
    k = round(np.arctan2(y1 - y0, x1 - x0) % np.pi / (np.pi / angles)) % angles
    near = np.max(along[[(k - 1) % angles, k, (k + 1) % angles]], axis=0)
    n = max(abs(x1 - x0), abs(y1 - y0)) + 1
    xs = np.round(np.linspace(x0, x1, n)).astype(int)
    ys = np.round(np.linspace(y0, y1, n)).astype(int)
    if np.mean(near[ys, xs] >= SCRATCH_CONTRAST) < 0.5:
        return
    band = np.zeros(found.shape, np.uint8)
    cv2.line(band, (x0, y0), (x1, y1), 1, width)
    found |= (band > 0) & (near >= SCRATCH_CONTRAST / 2)


# --------------------------------------------------------------------------------------------
# Restoring and pasting back
# --------------------------------------------------------------------------------------------


def feather_weights(
    height: int, width: int, open_sides: tuple[bool, bool, bool, bool] = (True,) * 4
) -> np.ndarray:
    """(height, width) float32 weights of a pasted box: 1 inside, ramping (smoothstep) to 0
    at its edges over :data:`FEATHER` of its shorter side, on the sides marked open
    (left, top, right, bottom): a side on the photo's border has nothing to blend with."""
    ramp = max(2.0, FEATHER * min(height, width))

    def along(n: int, low: bool, high: bool) -> np.ndarray:
        r = np.arange(n, dtype=np.float32)
        near = np.full(n, np.inf, np.float32)
        if low:
            near = np.minimum(near, r)
        if high:
            near = np.minimum(near, n - 1 - r)
        t = np.clip(near / ramp, 0.0, 1.0)
        return t * t * (3 - 2 * t)

    left, top, right, bottom = open_sides
    return np.minimum(along(height, top, bottom)[:, None], along(width, left, right)[None, :])


def restore_face(
    photo: np.ndarray,
    kind: str,
    *,
    seed: int,
    steps: int | None = None,
    progress: bool = True,
    face: Any = 0,
) -> np.ndarray:
    """The photo with its face region restored by the Deep Image Prior.

    The region (:func:`face_box`) is scaled to its working size (:func:`work_shape`), padded for
    the network, fitted (``image_prior.fit_image_prior``, every pixel for ``"denoise"``, all but
    the scratches of :func:`scratch_mask` for ``"scratches"``; the noise level from
    ``image_prior.estimate_noise_sigma``), scaled back to the box and pasted with a feathered
    edge (:func:`feather_weights`). Outside the box the photo is returned bit for bit.

    Args:
        photo: (H, W, 3) float32 RGB in [0, 1] (uint8 is divided by 255).
        kind: one of :data:`KINDS`.
        seed: seed of the fit (the network's weights, its code and the perturbations).
        steps: at most this many steps (default :data:`STEPS`, :data:`QUICK_STEPS` in quick
            mode); the fit stops earlier when its residual reaches the photo's noise level.
        progress: show a progress bar, and print to stderr how long the fit will take (once
            its first steps are timed) and how long it took.
        face: which face: an index, a ``faces.Face`` or (68, 2) landmarks (see :func:`face_box`).

    Returns:
        (H, W, 3) float32 RGB in [0, 1].

    Raises:
        UsageError: an unknown ``kind``; NoFaceFoundError: no face (or not face ``face``).
    """
    from .image_prior import estimate_noise_sigma, fit_image_prior, pad_to_multiple

    check_kind(kind)
    image = np.asarray(photo)
    image = image / np.float32(255.0) if image.dtype == np.uint8 else image
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"photo must be an RGB image (H, W, 3) in [0, 1], got shape {image.shape}")
    steps = pick(STEPS, QUICK_STEPS) if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    x0, y0, x1, y1 = face_box(image, face)
    region = image[y0:y1, x0:x1]
    bh, bw = region.shape[:2]
    h, w = work_shape(bh, bw)
    work = (
        region if (h, w) == (bh, bw) else cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)
    )
    known = None
    if kind == "scratches":
        known = (~scratch_mask(image, (x0, y0, x1, y1))).astype(np.float32)[..., None]
    padded, mask = pad_to_multiple(work, MULTIPLE, known)
    t0 = time.perf_counter()
    fit = fit_image_prior(
        padded,
        mask,
        steps=steps,
        seed=seed,
        progress=progress,
        noise_sigma=estimate_noise_sigma(work),
        on_step=_announcer(kind, (bh, bw), (h, w), steps) if progress else None,
    )
    restored = np.clip(fit.image[:h, :w], 0.0, 1.0)
    if (h, w) != (bh, bw):
        restored = np.clip(cv2.resize(restored, (bw, bh), interpolation=cv2.INTER_CUBIC), 0, 1)
    if progress:
        why = "the photo's noise level" if fit.stopped_by == "discrepancy" else "the last step"
        _say(
            f"restore ({kind}): the face region restored in {time.perf_counter() - t0:.0f} s "
            f"(stopped at step {fit.step} of {steps}: {why})"
        )
    sides = (x0 > 0, y0 > 0, x1 < image.shape[1], y1 < image.shape[0])
    weights = feather_weights(bh, bw, sides)[..., None]
    out = image.copy()
    out[y0:y1, x0:x1] = region + weights * (restored - region)
    return out


def scratch_mask(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The scratches of a face box, as ``restore_face(kind="scratches")`` leaves them out.

    :func:`find_scratches` runs on the box and half its size around it (clipped to the photo: a
    scratch that leaves the box is longer than its part inside, and is found by its whole
    length), at the box's working scale, with its lengths measured in the box's size.

    Args:
        photo: (H, W, 3) RGB in [0, 1].
        box: ``(x0, y0, x1, y1)`` as :func:`face_box` gives it.

    Returns:
        (h, w) bool at :func:`work_shape` of the box, True under a scratch.
    """
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    shape = work_shape(bh, bw)
    cx0, cy0 = max(0, x0 - bw // 2), max(0, y0 - bh // 2)
    cx1, cy1 = min(photo.shape[1], x1 + bw // 2), min(photo.shape[0], y1 + bh // 2)
    context = photo[cy0:cy1, cx0:cx1]
    sy, sx = shape[0] / bh, shape[1] / bw
    if (sy, sx) != (1.0, 1.0):
        size = (max(1, round((cx1 - cx0) * sx)), max(1, round((cy1 - cy0) * sy)))
        context = cv2.resize(context, size, interpolation=cv2.INTER_AREA)
    found = find_scratches(context, size=min(shape)).astype(np.uint8)
    top, left = round((y0 - cy0) * sy), round((x0 - cx0) * sx)
    inside = found[top : top + shape[0], left : left + shape[1]]
    if inside.shape != shape:  # rounding: the box's part, at exactly the working shape
        return cv2.resize(inside, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return inside > 0


def _say(line: str) -> None:
    """One line on stderr, above a running progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def _announcer(kind: str, box: tuple[int, int], work: tuple[int, int], steps: int):
    """``on_step`` for the fit: once :data:`TIMED_STEPS` steps after the first are timed, one
    line saying how long all ``steps`` will take."""

    def on_step(step: int, seconds: float) -> None:
        if step != TIMED_STEPS + 1 or steps <= step:
            return
        per_step = seconds / TIMED_STEPS
        left = per_step * (steps - step)
        scaled = "" if work == box else f", restored at {work[1]}x{work[0]}"
        _say(
            f"restore ({kind}): the face region, {box[1]}x{box[0]} px{scaled}: {steps} steps at "
            f"{per_step:.2f} s, about {_duration(left)} at most (it stops sooner at the "
            "photo's noise level)"
        )

    return on_step


def _duration(seconds: float) -> str:
    """``"45 s"`` or ``"3 min 20 s"``."""
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"
