"""Metrics for animated frames (chapter 6): pixels, structure, motion and identity.

* :func:`l1` and :func:`psnr` compare pixels; :func:`ssim` compares local structure (scikit-image).
* :func:`akd` (average keypoint distance) asks "did the face move where it should?": the 68
  landmarks found in the output against those of the driving (ground-truth) frame.
* :func:`aed` (average euclidean distance of identity embeddings) asks "is it still the same
  person?": dlib's 128-d face-recognition embedding of the output against a reference photo.
  Two photos of one person are typically < 0.6 apart (dlib's own same-person threshold).

Images are (H, W, 3) float32 RGB in [0, 1]; batched variants take (B, H, W, 3).
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import NoFaceFoundError

#: dlib's documented decision threshold: embeddings closer than this are "the same person".
SAME_PERSON_DISTANCE = 0.6


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images must have the same shape, got {x.shape} and {y.shape}")
    return x, y


def l1(a, b) -> float:
    """Mean absolute difference, in [0, 1] for images in [0, 1] (lower is better)."""
    x, y = _pair(a, b)
    return float(np.mean(np.abs(x - y)))


def psnr(a, b, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range² / MSE)``; ``inf`` for equal images."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(a, b) -> float:
    """Structural similarity (scikit-image, Gaussian window as in Wang et al. 2004), 1 = equal.

    Batches (B, H, W, 3) give the mean over the batch.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if x.ndim == 4:
        return float(np.mean([ssim(p, q) for p, q in zip(x, y, strict=True)]))
    return float(
        structural_similarity(
            x,
            y,
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


# --------------------------------------------------------------------------------------------
# Motion: average keypoint distance
# --------------------------------------------------------------------------------------------


def _landmarks_near(image: np.ndarray, box) -> np.ndarray:
    """68 landmarks of the face detected in ``image``, or predicted in ``box`` if none is found.

    The fallback keeps the metric defined for blurry outputs the HOG detector misses: the shape
    predictor then starts from where the face should be, and still has to find its parts.
    """
    from . import faces

    found = faces.detect_faces(image)
    face = found[0] if found else faces.Face(tuple(float(v) for v in box), 0.0)
    return faces.face_landmarks(image, face)


def akd(output, driving, driving_landmarks: np.ndarray | None = None) -> float:
    """Average keypoint distance in pixels between the output's and the driving frame's faces.

    Args:
        output: (H, W, 3) generated frame.
        driving: (H, W, 3) driving (ground-truth) frame of the same size.
        driving_landmarks: (68, 2) landmarks of ``driving`` if already known (saves a detection).

    Returns:
        Mean over the 68 landmarks of the Euclidean distance (pixels of the frame).

    Raises:
        NoFaceFoundError: no face in the driving frame.
    """
    from . import faces

    out, drv = _pair(output, driving)
    kd = (
        faces.face_landmarks(drv.astype(np.float32))
        if driving_landmarks is None
        else np.asarray(driving_landmarks, dtype=np.float64)
    )
    lo, hi = kd.min(axis=0), kd.max(axis=0)
    ko = _landmarks_near(out.astype(np.float32), (*lo, *hi))
    return float(np.linalg.norm(ko - kd, axis=-1).mean())


# --------------------------------------------------------------------------------------------
# Identity: dlib face-recognition embedding
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _embedder():
    """dlib's ResNet face-recognition model and its 5-point aligner (loaded once)."""
    import dlib
    import face_recognition_models as frm

    return (
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
    )


def face_embedding(image, box=None) -> np.ndarray:
    """dlib's 128-d face-recognition embedding of the (best) face in an image.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        box: (x0, y0, x1, y1) face box to use instead of running the detector.

    Returns:
        (128,) float64 unit-scale descriptor (Euclidean distances < 0.6 = same person).

    Raises:
        NoFaceFoundError: no box given and no face detected.
    """
    import dlib

    from . import faces

    img = faces._as_uint8(np.asarray(image))
    if box is None:
        found = faces.detect_faces(img)
        if not found:
            raise NoFaceFoundError(
                "No face was found to compute an identity embedding; pass a face box, or use a "
                "larger, frontal face."
            )
        box = found[0].box
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    model, aligner = _embedder()
    shape = aligner(img, dlib.rectangle(x0, y0, x1, y1))
    return np.asarray(model.compute_face_descriptor(img, shape), dtype=np.float64)


def aed(output, reference, box=None, reference_embedding: np.ndarray | None = None) -> float:
    """Identity distance: Euclidean distance of dlib embeddings of ``output`` and ``reference``.

    Args:
        output: (H, W, 3) generated frame.
        reference: (H, W, 3) photo of the person the output should show (the source photo, or in
            self-reenactment the ground-truth frame).
        box: face box used for ``output`` when the detector misses it (default: the
            reference's detected box, valid when both images share coordinates, e.g. crops).
        reference_embedding: the reference's embedding if already computed.

    Returns:
        Distance (0 = same embedding; < 0.6 counts as the same person for dlib).
    """
    from . import faces

    ref = np.asarray(reference, dtype=np.float32)
    if reference_embedding is None or box is None:
        found = faces.detect_faces(ref)
        ref_box = found[0].box if found else None
        if reference_embedding is None:
            reference_embedding = face_embedding(ref, ref_box)
        box = ref_box if box is None else box
    out = np.asarray(output, dtype=np.float32)
    found = faces.detect_faces(out)
    out_box = found[0].box if found else box
    if out_box is None:
        raise NoFaceFoundError("No face was found in the output nor in the reference image.")
    return float(np.linalg.norm(face_embedding(out, out_box) - reference_embedding))
