"""Faces: detection, 68 landmarks, square crops with paste-back, and tracking over a video (ch. 3).

dlib's HOG face detector and its 68-point shape predictor (the iBUG 300-W layout) run on the
model files shipped by ``face_recognition_models``. Landmarks are ``(68, 2)`` float ``(x, y)``
pixel coordinates of the image they were found in; the index groups below name the parts
("right"/"left" are the *subject's* right/left, i.e. image left/right for a frontal face).

Tracking (:class:`LandmarkTracker`) runs the detector once, then predicts each frame's landmarks
inside a box derived from the previous frame's landmarks (the shape predictor costs ~0.6 ms, the
detector ~10-20 ms): the detector runs again only when the face is lost (the box became implausible
or the face patch no longer looks like the one last detected). A one-euro filter removes jitter.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from .data import to_uint8
from .errors import MissingResourceError, NoFaceFoundError

# The 68-point layout lives in didlearn.landmarks; re-exported here, where chapter 3 meets it.
from .landmarks import (  # noqa: F401
    GROUPS,
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    MOUTH,
    NOSE,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
)

_NO_FACE_HINT = (
    "Try a photo where the face is larger (at least ~80 pixels wide), frontal, well lit and not "
    "covered (no sunglasses or hands), or crop the photo around the face."
)


@dataclass(frozen=True)
class Face:
    """A detected face: ``box`` (x0, y0, x1, y1) in pixels and the detector's ``score``.

    The score is dlib's HOG-SVM margin: > 0 means "face" at the default threshold; larger is surer.
    """

    box: tuple[float, float, float, float]
    score: float

    @property
    def size(self) -> float:
        """Side of the (square) box in pixels."""
        return float(np.sqrt(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0)))


# --------------------------------------------------------------------------------------------
# Models (loaded once)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def _predictor():
    import dlib

    try:
        import face_recognition_models as frm
    except ImportError as err:  # pragma: no cover - the package is a dependency
        raise MissingResourceError(
            "The 68-landmark model ships with face_recognition_models; install it with "
            "`pip install face-recognition-models`."
        ) from err
    return dlib.shape_predictor(frm.pose_predictor_model_location())


@functools.lru_cache(maxsize=1)
def _cnn_detector():
    import dlib
    import face_recognition_models as frm

    return dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())


# --------------------------------------------------------------------------------------------
# Detection and landmarks
# --------------------------------------------------------------------------------------------

#: The CNN detector (the last resort of :func:`find_faces`) sees the photo at most this large:
#: it finds faces of ~80 px and up, and costs ~1 s a megapixel on a laptop CPU.
CNN_MAX_SIDE = 640


def _auto_upsample(image: np.ndarray) -> int:
    # HOG finds faces >= ~80 px; small frames (video, thumbnails) need one 2x upsampling.
    return 1 if max(image.shape[:2]) <= 640 else 0


def _face_of(rect, score: float, scale: float = 1.0) -> Face:
    """A dlib rectangle (pixels of the image it ran on, times ``scale``) and score as a Face."""
    box = (rect.left(), rect.top(), rect.right(), rect.bottom())
    return Face(tuple(float(v) * scale for v in box), float(score))  # type: ignore[arg-type]


def detect_faces(
    image: np.ndarray, upsample: int | None = None, threshold: float = 0.0
) -> list[Face]:
    """Detect faces with dlib's HOG detector, best first.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1] (uint8 also accepted).
        upsample: times the image is doubled before detection (finds smaller faces, 4x slower
            each); default 1 for images up to 640 px, else 0.
        threshold: detector score threshold (dlib's ``adjust_threshold``); lower finds more.

    Returns:
        Faces sorted by ``score + 0.5 * log2(size / largest size)``: the detector's confidence
        first, with a penalty for small boxes, so that on the astronaut portrait the face wins
        over the round mission patch on the suit. Empty list when nothing is found.
    """
    img = to_uint8(image)
    up = _auto_upsample(img) if upsample is None else int(upsample)
    rects, scores, _ = _detector().run(img, up, float(threshold))
    faces = [_face_of(r, s) for r, s in zip(rects, scores, strict=True)]
    if not faces:
        return []
    biggest = max(f.size for f in faces)
    return sorted(faces, key=lambda f: -(f.score + 0.5 * np.log2(max(f.size, 1.0) / biggest)))


def _predict(img_u8: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = _predictor()(img_u8, dlib.rectangle(x0, y0, x1, y1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_faces_cnn(image: np.ndarray) -> list[Face]:
    """Detect faces with dlib's CNN detector (MMOD), best first: slower than the HOG detector of
    :func:`detect_faces`, but it also finds faces turned away (three-quarter views) or tilted.

    Boxes are in ``image`` pixels; ``score`` is the CNN's confidence. The image is scaled to at
    most :data:`CNN_MAX_SIDE` pixels first (upsampled once when it is smaller than half that).
    """
    img = to_uint8(image)
    scale = min(1.0, CNN_MAX_SIDE / max(img.shape[:2]))
    small = (
        img
        if scale == 1.0
        else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    )
    found = _cnn_detector()(small, 1 if max(small.shape[:2]) < CNN_MAX_SIDE // 2 else 0)
    faces = [_face_of(d.rect, d.confidence, 1 / scale) for d in found]
    return sorted(faces, key=lambda f: -f.score)


def find_faces(image: np.ndarray) -> tuple[list[Face], list[str]]:
    """Faces of a photo, trying harder before giving up: the HOG detector (:func:`detect_faces`),
    then, on a large photo, the HOG detector at twice the size, then the CNN detector.

    Returns:
        ``(faces best first, the detectors tried)``; the faces are those of the first detector
        that found any.
    """
    img = to_uint8(image)
    tried = ["the HOG detector"]
    faces = detect_faces(img)
    if not faces and _auto_upsample(img) == 0:
        tried.append("the HOG detector at 2x")
        faces = detect_faces(img, upsample=1)
    if not faces:
        tried.append("the CNN detector")
        faces = detect_faces_cnn(img)
    return faces, tried


def describe_faces(faces: list[Face]) -> str:
    """One line listing faces by index: ``0: box (x0, y0)-(x1, y1), 75 px; 1: ...`` (pixels)."""
    return "; ".join(
        f"{i}: box ({f.box[0]:.0f}, {f.box[1]:.0f})-({f.box[2]:.0f}, {f.box[3]:.0f}), "
        f"{f.size:.0f} px"
        for i, f in enumerate(faces)
    )


def pick_face(
    image: np.ndarray, face: int | Face = 0, upsample: int | None = None, hint: str = ""
) -> Face:
    """One face of a photo: ``face`` itself if it is a :class:`Face`, else face number ``face``
    of those found (0 = best).

    Args:
        image: (H, W, 3) RGB, float32 in [0, 1] or uint8.
        face: index into the faces found, or a :class:`Face` to use directly.
        upsample: passed to :func:`detect_faces`; None (default) tries harder when nothing is
            found (:func:`find_faces`: the HOG detector at 2x, then the CNN detector).
        hint: what to do when no face is found (default: how to take a photo the detectors find).

    Raises:
        NoFaceFoundError: no face (or fewer faces than ``face + 1``) was found.
    """
    if isinstance(face, Face):
        return face
    img = to_uint8(image)
    if upsample is None:
        faces, tried = find_faces(img)
    else:
        faces, tried = (
            detect_faces(img, upsample=upsample),
            [f"the HOG detector (upsample={upsample})"],
        )
    if not faces:
        raise NoFaceFoundError(
            f"No face was found in the {img.shape[1]}x{img.shape[0]} image (tried "
            f"{', '.join(tried)}). " + (hint or _NO_FACE_HINT)
        )
    if not 0 <= face < len(faces):
        raise NoFaceFoundError(
            f"Face {face} was asked for but only {len(faces)} face(s) were found "
            f"({describe_faces(faces)}); use an index between 0 and {len(faces) - 1}."
        )
    return faces[face]


def face_landmarks(
    image: np.ndarray, face: int | Face = 0, upsample: int | None = None
) -> np.ndarray:
    """The 68 landmarks of one face (:func:`pick_face` chooses it).

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        face: index into the faces found (0 = best face) or a :class:`Face` to use directly.
        upsample: passed to :func:`detect_faces`; None (default) tries harder when nothing is
            found (:func:`find_faces`: the HOG detector at 2x, then the CNN detector).

    Returns:
        (68, 2) float32 (x, y) pixel coordinates.

    Raises:
        NoFaceFoundError: no face (or fewer faces than ``face + 1``) was found.
    """
    img = to_uint8(image)
    return _predict(img, pick_face(img, face, upsample).box)


# --------------------------------------------------------------------------------------------
# Crop and paste-back
# --------------------------------------------------------------------------------------------


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    out = pts @ matrix[:, :2].T + matrix[:, 2]
    return out.astype(np.float32)


@dataclass(frozen=True)
class FaceCrop:
    """A square face crop and the affine map between it and the full photo.

    Attributes:
        image: (size, size, 3) float32 crop.
        matrix: (2, 3) float64 affine full -> crop: ``[u, v] = matrix @ [x, y, 1]`` (pixel centres
            at integer coordinates in both images).
        size: crop side in pixels.
    """

    image: np.ndarray
    matrix: np.ndarray
    size: int
    inverse: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inverse", cv2.invertAffineTransform(self.matrix))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Full-photo (..., 2) (x, y) points -> crop coordinates."""
        return _apply(self.matrix, points)

    def to_full(self, points: np.ndarray) -> np.ndarray:
        """Crop (..., 2) (x, y) points -> full-photo coordinates."""
        return _apply(self.inverse, points)


def crop_matrix(landmarks: np.ndarray, size: int = 256, margin: float = 2.0) -> np.ndarray:
    """The (2, 3) full -> crop affine of :func:`crop_face` (scale + translation, no rotation).

    The square is centred on the landmarks' bounding box, moved up by 10 % of its height (the
    landmarks stop at the eyebrows; the forehead belongs to the face too), with side
    ``margin * max(box width, box height)``: like FOMM's crops, the whole head with some background.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float(margin * max(hi - lo))
    if side <= 0:
        raise ValueError("landmarks span no area; cannot build a face crop")
    cx = (lo[0] + hi[0]) / 2
    cy = (lo[1] + hi[1]) / 2 - 0.1 * (hi[1] - lo[1])
    s = (size - 1) / side  # maps the square's extreme pixel centres onto 0 and size-1
    return np.array([[s, 0.0, -s * (cx - side / 2)], [0.0, s, -s * (cy - side / 2)]])


def crop_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = 256, margin: float = 2.0
) -> FaceCrop:
    """Square crop around a face, resized to ``size`` x ``size``.

    Args:
        image: (H, W, 3) float32 photo.
        landmarks: (68, 2) (x, y) landmarks of the face in ``image``.
        size: crop side in pixels (256 = the model resolution).
        margin: crop side / largest side of the landmarks' box (~2: whole head).

    Returns:
        :class:`FaceCrop`; outside the photo the border pixels are replicated.
    """
    img: np.ndarray = np.asarray(image, dtype=np.float32)
    m = crop_matrix(landmarks, size, margin)
    if m[0, 0] < 0.8:
        # Downscaling: blur first so the bilinear warp does not alias (sigma ~ half a crop pixel).
        sigma = 0.5 / m[0, 0]
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    out = cv2.warpAffine(
        img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return FaceCrop(out.astype(np.float32), m, int(size))


def feather_mask(size: int, feather: float = 0.15) -> np.ndarray:
    """(size, size) float32 mask: 1 inside, ramping to 0 over ``feather * size`` at the edges."""
    r = np.arange(size, dtype=np.float32)
    edge = np.minimum(r, size - 1 - r) / max(feather * size, 1e-6)
    ramp = np.clip(edge, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no visible seam at the ramp's ends
    return np.minimum(ramp[:, None], ramp[None, :])


def paste_back(
    photo: np.ndarray, crop_image: np.ndarray, crop: FaceCrop, feather: float = 0.15
) -> np.ndarray:
    """Put an (animated) crop back into the full photo.

    The crop is warped back with the inverse of ``crop.matrix`` and blended with a mask that is 1
    in the middle of the crop and ramps to 0 over ``feather * size`` crop pixels at its edges.

    Args:
        photo: (H, W, 3) float32 full photo.
        crop_image: (size, size, 3) crop in the coordinates of ``crop``.
        crop: the :class:`FaceCrop` the crop came from.
        feather: width of the blending ramp as a fraction of the crop side.

    Returns:
        (H, W, 3) float32; pixels outside the crop's square are exactly those of ``photo``.
    """
    full = np.asarray(photo, dtype=np.float32)
    h, w = full.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(
        np.asarray(crop_image, np.float32),
        crop.matrix,
        (w, h),
        flags=flags,
        borderMode=cv2.BORDER_REPLICATE,
    )
    mask = cv2.warpAffine(
        feather_mask(crop.size, feather),
        crop.matrix,
        (w, h),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )[..., None]
    blended = full + mask * (back - full)
    return np.where(mask > 0, blended, full).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Temporal smoothing
# --------------------------------------------------------------------------------------------


class OneEuroFilter:
    """One-euro filter (Casiez et al., CHI 2012) for arrays of points.

    An exponential smoother whose cutoff rises with speed: ``fc = min_cutoff + beta * |speed|``
    (Hz), so a still face is smoothed hard (no jitter) and a fast move gets little lag. Speed is
    measured in ``scale`` units per second (pass the face size so the settings suit any resolution).
    The defaults (1 Hz, beta 10) were tuned on the bundled clip and three talking heads: jitter
    drops to 0.3-0.8 of the raw tracker's for a mean lag of about 1 % of the face size.
    """

    def __init__(
        self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 10.0, d_cutoff: float = 1.0
    ) -> None:
        self.dt = 1.0 / fps
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        self.x = self.dx = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.astype(np.float32)
        raw_dx = (x - self.x) / self.dt / max(scale, 1e-6)
        self.dx = self.dx + self._alpha(self.d_cutoff) * (raw_dx - self.dx)
        # one speed per point (norm over x, y) so both coordinates get the same cutoff
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True)
        a = self._alpha(self.min_cutoff + self.beta * speed)
        self.x = self.x + a * (x - self.x)
        return self.x.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Tracking
# --------------------------------------------------------------------------------------------


def _face_scale(lm: np.ndarray) -> float:
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    return float(max(hi - lo))


def _patch(gray: np.ndarray, lm: np.ndarray, n: int = 24) -> np.ndarray:
    """Zero-mean unit-norm n x n patch of the landmarks' box (the face's appearance)."""
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    side = max(float(max(hi - lo)), 2.0)
    c = (lo + hi) / 2
    s = (n - 1) / side
    m = np.array([[s, 0, -s * (c[0] - side / 2)], [0, s, -s * (c[1] - side / 2)]])
    p = cv2.warpAffine(gray, m, (n, n), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    p = p.astype(np.float32) - p.mean()
    norm = float(np.linalg.norm(p))
    return p / norm if norm > 1e-3 else p * 0.0


#: Frames a tracker holds a lost face before it takes whatever face the detector finds.
REACQUIRE_AFTER = 15


class LandmarkTracker:
    """Streaming 68-landmark tracker with re-detection and one-euro smoothing.

    ``update(frame)`` returns the (68, 2) landmarks of the frame. After a detection, each frame's
    shape-predictor box comes from the previous landmarks (with the detector-box / landmark-box
    relation measured at the last detection). The face counts as lost, and the detector runs again,
    when the new landmark box changed size by more than ``max_scale_change`` or jumped by more than
    half a face, when most landmarks left the frame, or when the normalised cross-correlation of
    the face patch with the patch at the last detection falls below ``min_similarity``. If the
    detector finds nothing, the previous landmarks are held and ``found`` is False for the frame.
    Once a face is followed, a re-detection must be near it (within one face of where it was,
    half to twice its size): another face, or a face-like patch elsewhere in the frame, is no
    replacement for one the detector missed on a turned head. After :data:`REACQUIRE_AFTER`
    frames without it, any face is taken again (a cut in the video).

    Attributes:
        found: whether the last ``update`` found the face (False = bridged/held).
        detections: detector runs so far; ``frames``: frames seen; ``bridged``: frames held.
    """

    def __init__(
        self,
        smoothing: bool = True,
        fps: float = 30.0,
        upsample: int | None = None,
        min_similarity: float = 0.35,
        max_scale_change: float = 0.25,
        min_cutoff: float = 1.0,
        beta: float = 10.0,
    ) -> None:
        self.smoothing = smoothing
        self.upsample = upsample
        self.min_similarity = min_similarity
        self.max_scale_change = max_scale_change
        self.filter = OneEuroFilter(fps=fps, min_cutoff=min_cutoff, beta=beta)
        self.raw: np.ndarray | None = None  # last unsmoothed landmarks
        self.output: np.ndarray | None = None
        self._ref_patch: np.ndarray | None = None
        self._box_rel = (0.0, 0.0, 1.0)  # detector box vs landmark box: (dx, dy, side) / lm side
        self.found = False
        self.frames = self.detections = self.bridged = 0
        self._missed = 0  # frames in a row without the face

    # -- the two ways of finding the landmarks ------------------------------------------------
    def _detect(self, img: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
        self.detections += 1
        faces = detect_faces(img, upsample=self.upsample)
        if self.raw is not None and self._missed < REACQUIRE_AFTER:
            faces = self._near_ours(faces)
        if not faces:
            return None
        box = faces[0].box
        lm = _predict(img, box)
        s = _face_scale(lm)
        c = (lm.min(axis=0) + lm.max(axis=0)) / 2
        self._box_rel = (
            ((box[0] + box[2]) / 2 - c[0]) / s,
            ((box[1] + box[3]) / 2 - c[1]) / s,
            (box[2] - box[0]) / s,
        )
        self._ref_patch = _patch(gray, lm)
        return lm

    def _near_ours(self, faces: list) -> list:
        """The detections that can be the face we followed, nearest first (see the class)."""
        assert self.raw is not None
        s = _face_scale(self.raw)
        c = (self.raw.min(axis=0) + self.raw.max(axis=0)) / 2
        dx, dy, side = self._box_rel
        expected = np.array([c[0] + dx * s, c[1] + dy * s]), side * s

        def distance(f) -> float:
            centre = np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2])
            return float(np.linalg.norm(centre - expected[0]))

        def plausible(f) -> bool:
            ratio = (f.box[2] - f.box[0]) / max(expected[1], 1e-6)
            return distance(f) < expected[1] and 0.5 <= ratio <= 2.0

        return sorted((f for f in faces if plausible(f)), key=distance)

    def _follow(self, img: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
        prev = self.raw
        assert prev is not None  # only called once a face was found
        s = _face_scale(prev)
        c = (prev.min(axis=0) + prev.max(axis=0)) / 2
        dx, dy, side = self._box_rel
        cx, cy, half = c[0] + dx * s, c[1] + dy * s, side * s / 2
        lm = _predict(img, (cx - half, cy - half, cx + half, cy + half))
        return lm if self._plausible(lm, prev, gray) else None

    def _plausible(self, lm: np.ndarray, prev: np.ndarray, gray: np.ndarray) -> bool:
        s0, s1 = _face_scale(prev), _face_scale(lm)
        if abs(s1 / s0 - 1) > self.max_scale_change:
            return False
        if np.linalg.norm(lm.mean(axis=0) - prev.mean(axis=0)) > 0.5 * s0:
            return False
        h, w = gray.shape
        inside = (lm[:, 0] >= 0) & (lm[:, 0] < w) & (lm[:, 1] >= 0) & (lm[:, 1] < h)
        if inside.mean() < 0.7:
            return False
        return float(np.sum(_patch(gray, lm) * self._ref_patch)) >= self.min_similarity

    def update(self, frame: np.ndarray) -> np.ndarray:
        """Landmarks (68, 2) float32 of the next video frame (H, W, 3).

        Raises:
            NoFaceFoundError: no face has been found in any frame so far (nothing to hold).
        """
        img = to_uint8(frame)
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        self.frames += 1
        lm = self._follow(img, gray) if self.raw is not None else None
        if lm is None:
            lm = self._detect(img, gray)
        self.found = lm is not None
        self._missed = 0 if self.found else self._missed + 1
        if lm is None:
            if self.raw is None:
                raise NoFaceFoundError(
                    f"No face was found in frame {self.frames - 1} and none before it. "
                    + _NO_FACE_HINT
                )
            self.bridged += 1
            assert self.output is not None  # set with raw, which is not None here
            return self.output
        self.raw = lm
        self.output = self.filter(lm, _face_scale(lm)) if self.smoothing else lm
        return self.output


class Track(NamedTuple):
    """Landmarks tracked over a video.

    Attributes:
        landmarks: (T, 68, 2) float32 (x, y) per frame.
        bridged: number of frames where no face was found (their landmarks are interpolated
            between the nearest frames with a face, or held at the ends).
        found: (T,) bool, False for bridged frames.
        detections: how many times the face detector ran (the rest were tracked frames).
    """

    landmarks: np.ndarray
    bridged: int
    found: np.ndarray
    detections: int


def _bridge(raw: list[np.ndarray | None]) -> np.ndarray:
    """Fill missing frames by linear interpolation between found neighbours (hold at the ends)."""
    have = np.array([r is not None for r in raw])
    idx = np.flatnonzero(have)
    stack = np.stack([np.asarray(raw[i]) for i in idx])  # (K, 68, 2)
    t = np.arange(len(raw))
    flat = stack.reshape(len(idx), -1)
    out = np.stack([np.interp(t, idx, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(len(raw), *stack.shape[1:]).astype(np.float32)


def track_landmarks(
    frames: Iterable[np.ndarray],
    smoothing: bool = True,
    fps: float = 30.0,
    upsample: int | None = None,
    min_cutoff: float = 1.0,
    beta: float = 10.0,
    progress: bool = False,
) -> Track:
    """Track the 68 landmarks through a video.

    Args:
        frames: (T, H, W, 3) array or an iterable of (H, W, 3) float32 frames.
        smoothing: apply the one-euro filter (after bridging, so gaps do not reset it).
        fps: frame rate (the filter's cutoffs are in Hz).
        upsample: detector upsampling (default: 1 for frames up to 640 px).
        min_cutoff, beta: one-euro parameters (Hz, and Hz per face-size/s of speed).
        progress: show a tqdm progress bar.

    Returns:
        :class:`Track`.

    Raises:
        NoFaceFoundError: no frame contains a face.
    """
    tracker = LandmarkTracker(smoothing=False, fps=fps, upsample=upsample)
    raw: list[np.ndarray | None] = []
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, desc="landmarks", unit="frame")
    for frame in frames:
        try:
            lm = tracker.update(frame)
        except NoFaceFoundError:
            lm = None
        raw.append(lm.copy() if (lm is not None and tracker.found) else None)
    found = np.array([r is not None for r in raw], dtype=bool)
    if not found.any():
        raise NoFaceFoundError(
            f"No face was found in any of the {len(raw)} frames. " + _NO_FACE_HINT
        )
    lms = _bridge(raw)
    if smoothing:
        filt = OneEuroFilter(fps=fps, min_cutoff=min_cutoff, beta=beta)
        lms = np.stack([filt(lm, _face_scale(lm)) for lm in lms])
    return Track(lms.astype(np.float32), int((~found).sum()), found, tracker.detections)


def jitter(landmarks: np.ndarray) -> float:
    """Mean frame-to-frame landmark acceleration ``|x[t+1] - 2 x[t] + x[t-1]|`` in pixels.

    ``landmarks``: (T, N, 2). Lower is steadier; real motion contributes too, so compare
    trackers on the same clip.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    acc = lm[2:] - 2 * lm[1:-1] + lm[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())
