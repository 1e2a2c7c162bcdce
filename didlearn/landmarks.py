"""The 68-point face layout (iBUG 300-W, the order dlib's landmark model returns).

One home for what the indices mean: the groups, the eyelid pairs, the face outline and the
left/right mirror order. Subject's right = image left: ``RIGHT_EYE`` is the eye on the image's
left side. Everything here is plain data (NumPy arrays and slices), no model and no TensorFlow.
"""

from __future__ import annotations

import numpy as np

#: Number of landmarks in the layout.
COUNT = 68

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)

#: The named groups drawn in chapter 3 (the lips together as ``mouth``).
GROUPS = {
    "jaw": JAW,
    "right_brow": RIGHT_BROW,
    "left_brow": LEFT_BROW,
    "nose": NOSE,
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "mouth": MOUTH,
}

#: Eyelids: (upper-lid point, the lower-lid point it closes onto), both eyes, top to bottom.
LIDS = ((37, 41), (38, 40), (43, 47), (44, 46))

#: The face's outline as a closed polygon: the jaw, then the brows back from right to left.
FACE_OUTLINE = (*range(17), *range(26, 16, -1))

#: Index of each landmark's mirror image (left <-> right), for horizontal flips:
#: ``mirrored = points[MIRROR] * [-1, 1] + [2 * cx, 0]`` mirrors about the line x = cx.
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # right eye <-> left eye
    + [39, 38, 37, 36, 41, 40]  # left eye <-> right eye
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)

#: The landmarks that move with the head but hardly with the expression: the jaw's ends (by the
#: ears), the nose and the eyes' corners. A rigid head pose is fitted to these.
RIGID = (0, 1, 15, 16, *range(27, 36), 36, 39, 42, 45)

#: Eye corners (outer, inner) of the right then the left eye: the width of each eye.
EYE_CORNERS = ((36, 39), (42, 45))

#: The mouth's corners (outer lips): its width.
MOUTH_CORNERS = (48, 54)

#: Inner lips: (upper-lip point, the lower-lip point facing it), from the image's left.
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))

#: Outer lips: (upper-lip point, the lower-lip point facing it), from the image's left.
OUTER_LIP_PAIRS = ((49, 59), (50, 58), (51, 57), (52, 56), (53, 55))


def eye_aspect_ratio(points: np.ndarray) -> np.ndarray:
    """Eye aspect ratio (EAR) of each eye: the mean lid gap over the eye's width.

    ``EAR = (|p37 - p41| + |p38 - p40|) / (2 |p36 - p39|)`` for the right eye (42-47 for the
    left). Scale-free: about 0.25-0.35 for an open eye, under 0.1 for a closed one.

    Args:
        points: (..., 68, 2) landmarks in any pixel coordinates.

    Returns:
        (..., 2) float64: the right eye (image left) then the left eye.
    """
    pts = np.asarray(points, np.float64)
    out = []
    for (a, b), lids in zip(EYE_CORNERS, (LIDS[:2], LIDS[2:]), strict=True):
        gaps = [np.linalg.norm(pts[..., up, :] - pts[..., low, :], axis=-1) for up, low in lids]
        width = np.linalg.norm(pts[..., b, :] - pts[..., a, :], axis=-1)
        out.append(np.mean(gaps, axis=0) / np.maximum(width, 1e-9))
    return np.stack(out, axis=-1)


def mouth_aspect_ratio(points: np.ndarray) -> np.ndarray:
    """Mouth aspect ratio (MAR): the mean gap between the inner lips over the mouth's width.

    ``MAR = mean(|p61 - p67|, |p62 - p66|, |p63 - p65|) / |p48 - p54|``. Scale-free: about 0 for
    closed lips, 0.1-0.3 while talking, 0.4 and more for a wide-open mouth.

    Args:
        points: (..., 68, 2) landmarks in any pixel coordinates.

    Returns:
        (...) float64.
    """
    pts = np.asarray(points, np.float64)
    gaps = [np.linalg.norm(pts[..., u, :] - pts[..., lo, :], axis=-1) for u, lo in INNER_LIP_PAIRS]
    a, b = MOUTH_CORNERS
    width = np.linalg.norm(pts[..., b, :] - pts[..., a, :], axis=-1)
    return np.mean(gaps, axis=0) / np.maximum(width, 1e-9)
