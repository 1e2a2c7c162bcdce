"""How an animation is scored (chapter 6): the self-reenactment and cross-identity protocols.

Two tasks, one home for how each is measured, used by the benchmarks and by notebook 06:

* **Self-reenactment** (:func:`prepare_self_reenactment`, :func:`self_reenactment_references`,
  :func:`score_self_reenactment`): the first frame of a talking-head clip is the photo and every
  later frame is rebuilt from it and that frame's own landmarks. The one task with a ground truth;
  scored on 256-px crops (L1, perceptual distance, AKD, AED) against the true frames.
* **Cross-identity** (:func:`score_cross_identity`): what a user does — the WHOLE photo of
  someone else, driven by a clip, relative mode, pasted back. No ground truth, so it is scored on
  the whole output frames against what they were asked to show:

  ========================  ==================================================================
  ``detail``                Laplacian energy inside the (moving) face outline, output / photo
  ``frame0_psnr``           frame 0 (target = the photo's own landmarks) vs the photo, in the
                            landmarks' box (dB; the still renderer's identical frame is +inf,
                            reported as :data:`PSNR_CAP`)
  ``identity``              dlib face-embedding distance, output vs photo (< 0.6 = same person)
  ``motion``                landmarks found on the output vs the target landmarks, % of the
                            targets' inter-ocular distance
  ``jitter``                the output landmarks' mean frame-to-frame acceleration minus the
                            targets' own, % of the inter-ocular distance
  ``face_score``            the HOG face detector's score on the output / on the photo
  ========================  ==================================================================

  Detection, landmarks and embeddings run on the face's region of the whole frame, resampled so
  the face is :data:`READ_FACE_SIDE` pixels wide: what dlib sees is the same for every photo size
  (its models work on ~150-px chips anyway) and a 12 MP frame costs no more than a small one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data import quantize
from .errors import NoFaceFoundError

#: Crop side of the self-reenactment protocol (the shipped model's working size).
REENACT_SIZE = 256
#: Face width (landmark box, pixels) the detectors see in cross-identity scoring.
READ_FACE_SIDE = 200
#: frame-0 PSNR of a pixel-identical frame (instead of +inf, so means stay finite).
PSNR_CAP = 99.0
#: Lowest detector score reported (dlib's ``adjust_threshold``): a face scored below it counts
#: as not found and its ``face_score`` is this value.
SCORE_FLOOR = -1.0


@dataclass(frozen=True)
class Score:
    """One measure a protocol reports: its result key, table header, number format and meaning."""

    key: str
    header: str
    format: str
    meaning: str


#: What self-reenactment reports per method (``fps`` is measured by the caller).
REENACT_SCORES = (
    Score("l1", "L1 ↓", ".4f", "mean |output − true frame|, pixels in [0, 1]"),
    Score("perceptual", "perceptual ↓", ".3f", "chapter 1's VGG pyramid distance"),
    Score("akd", "AKD ↓ (px)", ".2f", "landmarks found in the output vs the true frame's"),
    Score("aed", "AED ↓", ".3f", "dlib identity distance to the true frame (< 0.6: same person)"),
    Score("fps", "fps ↑", ".1f", "frames rendered per second, landmarks given"),
)
#: What cross-identity reports per method (``fps``: end to end, measured by :func:`cross_identity`).
CROSS_SCORES = (
    Score("detail", "detail ↑", ".3f", "the face's fine detail kept, vs the photo's"),
    Score("frame0_psnr", "frame 0 (dB) ↑", ".1f", "PSNR of frame 0 against the photo"),
    Score("identity", "identity ↓", ".4f", "dlib identity distance to the photo"),
    Score("motion", "motion (% IOD) ↓", ".2f", "landmarks found vs asked for"),
    Score("jitter", "jitter (% IOD) ↓", ".3f", "landmark acceleration added by the rendering"),
    Score("face_score", "face score ↑", ".3f", "HOG face-detector score (is it still a face?)"),
    Score("fps", "fps ↑", ".1f", "frames per second, end to end"),
)
#: The cross-identity measures a :class:`CrossIdentityScorer` computes (all but ``fps``).
CROSS_KEYS = tuple(s.key for s in CROSS_SCORES if s.key != "fps")


def mean_over(results: dict) -> dict:
    """``{ROW: {METHOD: {key: value}}}`` -> ``{METHOD: {key: mean over the rows}}`` (the methods
    and keys of the first row)."""
    first: dict = next(iter(results.values()), {})
    return {
        m: {k: float(np.mean([row[m][k] for row in results.values()])) for k in keys}
        for m, keys in first.items()
    }


def markdown_table(results: dict, scores: tuple[Score, ...], first: str = "clip") -> str:
    """``{ROW: {METHOD: {key: value}}}`` as a Markdown table, one line per row and method.

    ``scores``: :data:`REENACT_SCORES` or :data:`CROSS_SCORES` (missing keys are left empty).
    """
    head = f"| {first} | method | " + " | ".join(s.header for s in scores) + " |"
    lines = [head, "|" + "---|" * (len(scores) + 2)]
    for name, row in results.items():
        for method, r in row.items():
            cells = [format(r[s.key], s.format) if s.key in r else "" for s in scores]
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Self-reenactment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReenactmentClip:
    """One clip prepared for self-reenactment, all in crop pixels of the first frame's square.

    Attributes:
        photo: (S, S, 3) the first frame's face crop; ks: (68, 2) its landmarks.
        truth: (T, S, S, 3) later frames cropped with the SAME square; kps: (T, 68, 2) theirs.
    """

    photo: np.ndarray
    ks: np.ndarray
    truth: np.ndarray
    kps: np.ndarray


def prepare_self_reenactment(
    path: str | Path, max_frames: int | None = None, every: int = 1, size: int = REENACT_SIZE
) -> ReenactmentClip:
    """The photo crop, its keypoints, the true crops and their keypoints of one clip.

    Every frame is cropped with the FIRST frame's square (:func:`reenactment.crop_clip`, the
    recipe training uses too), so head motion counts. ``every``: keep every ``every``-th later
    frame (the metrics cost ~1 s per frame and method on 2 CPU cores; a sample of frames
    measures the same).
    """
    from .reenactment import crop_clip

    crops = crop_clip(path, size, max_frames=max_frames, every=every)
    return ReenactmentClip(
        crops.frames[0], crops.landmarks[0], crops.frames[1:], crops.landmarks[1:]
    )


def landmark_box(kp: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) bounding box of (68, 2) landmarks."""
    lo, hi = np.asarray(kp).min(axis=0), np.asarray(kp).max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def self_reenactment_references(truth: np.ndarray, kps: np.ndarray) -> list:
    """Per true frame: landmarks, face box and dlib embedding, found the way outputs' are.

    The tracked landmarks ``kps`` only supply a fallback box when the detector misses the face.
    """
    from . import metrics

    refs = []
    for frame, kp in zip(truth, kps, strict=True):
        box = metrics.find_face(frame, landmark_box(kp))
        refs.append((metrics.landmarks_of(frame, box), box, metrics.face_embedding(frame, box)))
    return refs


def score_self_reenactment(outputs: np.ndarray, truth: np.ndarray, refs: list) -> dict:
    """Mean L1, perceptual distance, AKD and AED of rendered crops against the true crops.

    ``refs``: per true frame ``(landmarks, face box, embedding)`` from
    :func:`self_reenactment_references`.
    """
    from . import metrics
    from .features import perceptual_distance

    perceptual = np.concatenate(
        [
            perceptual_distance(outputs[i : i + 8], truth[i : i + 8], per_image=True).numpy()
            for i in range(0, len(outputs), 8)
        ]
    )
    akd, aed = [], []
    for out, true, (lm, box, emb) in zip(outputs, truth, refs, strict=True):
        found = metrics.find_face(out, box)  # one detection for both metrics
        akd.append(metrics.akd(out, true, driving_landmarks=lm, output_box=found))
        aed.append(metrics.aed(out, true, reference_embedding=emb, output_box=found))
    return {
        "l1": float(np.mean(np.abs(outputs - truth))),
        "perceptual": float(perceptual.mean()),
        "akd": float(np.mean(akd)),
        "aed": float(np.mean(aed)),
    }


# --------------------------------------------------------------------------------------------
# Cross-identity: reading a face off a whole frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceReading:
    """What dlib sees of the face near ``expected`` landmarks in a whole frame.

    Attributes:
        landmarks: (68, 2) found landmarks, whole-frame pixels.
        embedding: (128,) identity embedding.
        score: HOG detector score of the face (:data:`SCORE_FLOOR` if not detected).
    """

    landmarks: np.ndarray
    embedding: np.ndarray
    score: float


def inter_ocular(kp: np.ndarray) -> float:
    """Distance (pixels) between the eye centres of (68, 2) landmarks."""
    from .faces import LEFT_EYE, RIGHT_EYE

    kp = np.asarray(kp, np.float64)
    return float(np.linalg.norm(kp[RIGHT_EYE].mean(axis=0) - kp[LEFT_EYE].mean(axis=0)))


def _face_region(frame: np.ndarray, expected: np.ndarray):
    """The frame's region around the expected face, resampled to a face :data:`READ_FACE_SIDE`
    wide; returns ``(region uint8, matrix frame -> region)``."""
    x0, y0, x1, y1 = landmark_box(expected)
    side = max(x1 - x0, y1 - y0)
    scale = READ_FACE_SIDE / max(side, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out = int(round(2.2 * READ_FACE_SIDE))  # the face and about its width around it
    m = np.array([[scale, 0, out / 2 - scale * cx], [0, scale, out / 2 - scale * cy]])
    img: np.ndarray = np.asarray(frame, np.float32)
    if scale < 0.8:  # anti-alias before shrinking, as faces.crop_face does
        img = cv2.GaussianBlur(img, (0, 0), 0.5 / scale)
    region = cv2.warpAffine(
        img, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return quantize(region), m


def read_face(frame: np.ndarray, expected: np.ndarray) -> FaceReading:
    """Detect, landmark and embed the face near ``expected`` (68, 2) landmarks of ``frame``.

    The detector's best box closest to the expected face is used; when it finds nothing above
    :data:`SCORE_FLOOR`, the landmarks start from the expected landmarks' box (as in
    :func:`didlearn.metrics.akd`) and the score is the floor.
    """
    from . import faces, metrics

    region, m = _face_region(frame, expected)
    exp = faces.FaceCrop(region, m, region.shape[0]).to_crop(expected)
    found = faces.detect_faces(region, upsample=0, threshold=SCORE_FLOOR)
    face = faces.Face(landmark_box(exp), SCORE_FLOOR)
    if found:
        centre = exp.mean(axis=0)

        def off_centre(f: faces.Face) -> float:
            x0, y0, x1, y1 = f.box
            return float(np.hypot((x0 + x1) / 2 - centre[0], (y0 + y1) / 2 - centre[1]))

        face = min(found, key=lambda f: off_centre(f) - 1e-3 * f.score)
    lm = faces.face_landmarks(region, face)
    emb = metrics.face_embedding(region, face.box)
    inverse = cv2.invertAffineTransform(m)
    return FaceReading(lm @ inverse[:, :2].T + inverse[:, 2], emb, face.score)


# --------------------------------------------------------------------------------------------
# Cross-identity: the measures
# --------------------------------------------------------------------------------------------


def _polygon_mask(shape: tuple[int, int], *polygons: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels inside any of the (N, 2) pixel polygons (sub-pixel vertices)."""
    mask = np.zeros(shape, np.uint8)
    for poly in polygons:
        cv2.fillPoly(
            mask, [np.round(np.asarray(poly, np.float64) * 16).astype(np.int32)], 1, shift=4
        )
    return mask > 0


def laplacian_energy(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image inside the face outline of ``landmarks``.

    The fine detail of the face (skin texture, lashes, hair strands); blur lowers it. Computed on
    the outline's bounding box only, at the image's own resolution.
    """
    from .motion import FACE_OUTLINE

    h, w = image.shape[:2]
    poly = np.asarray(landmarks, np.float64)[list(FACE_OUTLINE)]
    x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 3, [w, h])
    grey = cv2.cvtColor(np.asarray(image[y0:y1, x0:x1], np.float32), cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    inside = _polygon_mask(grey.shape, poly - [x0, y0])
    if not inside.any():
        raise ValueError("the face outline covers no pixel of the image")
    return float(np.mean(lap[inside] ** 2))


def box_psnr(a: np.ndarray, b: np.ndarray, landmarks: np.ndarray) -> float:
    """PSNR (dB, capped at :data:`PSNR_CAP`) of two images inside the landmarks' box."""
    x0, y0, x1, y1 = landmark_box(landmarks)
    h, w = a.shape[:2]
    ys = slice(max(int(np.floor(y0)), 0), min(int(np.ceil(y1)) + 1, h))
    xs = slice(max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, w))
    mse = float(
        np.mean((np.asarray(a[ys, xs], np.float64) - np.asarray(b[ys, xs], np.float64)) ** 2)
    )
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else float(10 * np.log10(1.0 / mse))


def _acceleration(track: np.ndarray, iod: np.ndarray) -> float:
    """Mean |L[t+1] - 2 L[t] + L[t-1]| of a (T, 68, 2) track, % of each frame's inter-ocular."""
    if len(track) < 3:
        return 0.0
    acc = np.linalg.norm(track[2:] - 2 * track[1:-1] + track[:-2], axis=-1).mean(axis=-1)
    return float(np.mean(100 * acc / iod[1:-1]))


@dataclass
class CrossIdentityScorer:
    """Scores the whole output frames of one photo, frame by frame (streaming: constant memory).

    Args:
        photo: (H, W, 3) the photo; landmarks: its (68, 2) landmarks (whole-photo pixels).

    Feed each output frame with the target landmarks (whole-photo pixels) it was asked to show
    to :meth:`add`, then read :meth:`result`.
    """

    photo: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        self.photo = np.asarray(self.photo, np.float32)
        self.reference = read_face(self.photo, self.landmarks)
        if self.reference.score <= SCORE_FLOOR:
            raise NoFaceFoundError("the detector finds no face in the photo to score against")
        self.photo_energy = laplacian_energy(self.photo, self.landmarks)
        self._found: list[np.ndarray] = []
        self._targets: list[np.ndarray] = []
        self._rows: list[dict[str, float]] = []

    def add(self, frame: np.ndarray, target: np.ndarray) -> None:
        """Score one (H, W, 3) output frame against its (68, 2) target landmarks."""
        target = np.asarray(target, np.float64)
        seen = read_face(frame, target)
        iod = inter_ocular(target)
        row = {
            "detail": laplacian_energy(frame, target) / self.photo_energy,
            "identity": float(np.linalg.norm(seen.embedding - self.reference.embedding)),
            "motion": float(100 * np.linalg.norm(seen.landmarks - target, axis=-1).mean() / iod),
            "face_score": max(seen.score, 0.0) / self.reference.score,
        }
        if not self._rows:
            row["frame0_psnr"] = box_psnr(frame, self.photo, self.landmarks)
        self._rows.append(row)
        self._found.append(seen.landmarks)
        self._targets.append(target)

    def result(self) -> dict[str, float]:
        """Means over the frames added so far (``frame0_psnr``: of the first frame)."""
        if not self._rows:
            raise ValueError("no frame was scored")
        out = {
            k: float(np.mean([r[k] for r in self._rows]))
            for k in ("detail", "identity", "motion", "face_score")
        }
        out["frame0_psnr"] = self._rows[0]["frame0_psnr"]
        targets = np.stack(self._targets)
        iod = np.array([inter_ocular(t) for t in targets])
        out["jitter"] = _acceleration(np.stack(self._found), iod) - _acceleration(targets, iod)
        return {k: out[k] for k in CROSS_KEYS}


def cross_identity(
    photo: np.ndarray,
    driving,
    method: str,
    models=None,
    frames: int | None = None,
    landmarks: np.ndarray | None = None,
) -> dict[str, float]:
    """Animate ``photo`` with a driving clip by one method, score the whole frames.

    Relative mode, pasted back (what a user gets). ``fps`` is end to end: decoded driving frames
    -> finished whole frames (decoding, tracking, transfer, rendering, compositing), after one
    warm-up batch; the scoring is not counted.

    Args:
        photo: (H, W, 3) float32 portrait; driving: a video path (or frames, see
            :meth:`didlearn.animate.Animator.animate`); method: a registered renderer
            (:mod:`didlearn.renderers`); models: the trained weights if the renderer needs them;
            frames: use at most this many driving frames; landmarks: the photo's, if known.

    Returns:
        :data:`CROSS_KEYS` and ``fps``.
    """
    import time

    from . import animate, faces

    if landmarks is None:
        landmarks = faces.face_landmarks(photo)
    animator = animate.Animator(
        photo, method=method, models=models, landmarks=landmarks, progress=False
    )
    animator.render(np.repeat(animator.source_kp[None], 8, axis=0))  # warm-up: trace, compile
    scorer = CrossIdentityScorer(photo, landmarks)
    t0 = time.perf_counter()
    targets = animator.driving_targets(driving, frames)  # decode + track + transfer
    seconds = time.perf_counter() - t0
    stream = animator.animate_targets(targets)
    for kp in targets:
        t0 = time.perf_counter()
        frame = next(stream)
        seconds += time.perf_counter() - t0
        scorer.add(frame, animator.crop.to_full(kp))
    return {**scorer.result(), "fps": len(targets) / max(seconds, 1e-9)}


def blotched_share(frame: np.ndarray, warped: np.ndarray, landmarks: np.ndarray, tol=0.08):
    """Share of the face's skin whose colour is not the warped photo's: the painting showing.

    Args:
        frame, warped: (S, S, 3) a rendered crop and the photo warped by the same flow.
        landmarks: (68, 2) the frame's target landmarks (crop pixels).
        tol: mean absolute colour difference (in [0, 1]) that counts as visibly off.

    Returns:
        Fraction of the pixels inside the face outline, and more than 4 px from the inner
        lips (where painting is allowed), whose colour is off by more than ``tol``.
    """
    from .faces import INNER_LIPS
    from .motion import FACE_OUTLINE

    kp = np.asarray(landmarks, np.float64)
    face = _polygon_mask(frame.shape[:2], kp[list(FACE_OUTLINE)])
    mouth = _polygon_mask(frame.shape[:2], kp[INNER_LIPS]).astype(np.uint8)
    skin = face & (cv2.dilate(mouth, np.ones((9, 9), np.uint8)) == 0)
    off = np.abs(np.asarray(frame, np.float32) - np.asarray(warped, np.float32)).mean(-1) > tol
    return float((off & skin).sum() / max(skin.sum(), 1))
