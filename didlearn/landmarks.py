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
