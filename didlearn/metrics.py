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

from .data import to_uint8
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


def find_face(image: np.ndarray, fallback_box=None):
    """Box (x0, y0, x1, y1) of the best face, or ``fallback_box`` when none is detected.

    Tries the detector without upsampling first (5 ms on a 256 crop, where faces are ~130 px),
    then with the default upsampling for small faces.
    """
    from . import faces

    found = faces.detect_faces(image, upsample=0) or faces.detect_faces(image)
    if found:
        return found[0].box
    return None if fallback_box is None else tuple(float(v) for v in fallback_box)


def landmarks_of(image: np.ndarray, fallback_box=None) -> np.ndarray:
    """(68, 2) landmarks predicted in the box of :func:`find_face` (the same procedure for outputs
    and ground truth, so that AKD compares like with like: the shape predictor's result moves by
    about half a pixel with its starting box).

    Raises:
        NoFaceFoundError: no face detected and no ``fallback_box``.
    """
    from . import faces

    img = np.asarray(image, dtype=np.float32)
    box = find_face(img, fallback_box)
    if box is None:
        raise NoFaceFoundError(
            f"No face was found in the {img.shape[1]}x{img.shape[0]} image; use a larger, "
            "frontal, well-lit face."
        )
    return faces.face_landmarks(img, faces.Face(tuple(box), 0.0))


def akd(output, driving, driving_landmarks: np.ndarray | None = None, output_box=None) -> float:
    """Average keypoint distance in pixels between the output's and the driving frame's faces.

    Args:
        output: (H, W, 3) generated frame.
        driving: (H, W, 3) driving (ground-truth) frame of the same size.
        driving_landmarks: (68, 2) landmarks of ``driving`` if already known (saves a detection;
            compute them with :func:`landmarks_of` for a like-with-like comparison).
        output_box: face box of ``output`` if already detected. By default the detector runs;
            if it misses the face (a blurry output), the shape predictor starts from the driving
            landmarks' box and still has to find the parts.

    Returns:
        Mean over the 68 landmarks of the Euclidean distance (pixels of the frame).

    Raises:
        NoFaceFoundError: no face in the driving frame.
    """
    from . import faces

    out, drv = _pair(output, driving)
    kd = (
        landmarks_of(drv)
        if driving_landmarks is None
        else np.asarray(driving_landmarks, dtype=np.float64)
    )
    out = out.astype(np.float32)
    if output_box is None:
        output_box = find_face(out, (*kd.min(axis=0), *kd.max(axis=0)))
    ko = faces.face_landmarks(out, faces.Face(tuple(output_box), 0.0))
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

    img = to_uint8(image)
    if box is None:
        box = find_face(img)
        if box is None:
            raise NoFaceFoundError(
                "No face was found to compute an identity embedding; pass a face box, or use a "
                "larger, frontal face."
            )
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    model, aligner = _embedder()
    shape = aligner(img, dlib.rectangle(x0, y0, x1, y1))
    return np.asarray(model.compute_face_descriptor(img, shape), dtype=np.float64)


def aed(
    output,
    reference,
    box=None,
    reference_embedding: np.ndarray | None = None,
    output_box=None,
) -> float:
    """Identity distance: Euclidean distance of dlib embeddings of ``output`` and ``reference``.

    Args:
        output: (H, W, 3) generated frame.
        reference: (H, W, 3) photo of the person the output should show (the source photo, or in
            self-reenactment the ground-truth frame).
        box: face box used for ``output`` when the detector misses it (default: the
            reference's detected box, valid when both images share coordinates, e.g. crops).
        reference_embedding: the reference's embedding if already computed.
        output_box: the output's face box if already detected (skips detection).

    Returns:
        Distance (0 = same embedding; < 0.6 counts as the same person for dlib).

    Raises:
        NoFaceFoundError: no face found in the reference (when its embedding is needed) or in
            either image (when no box is known at all).
    """
    if reference_embedding is None or (box is None and output_box is None):
        ref = np.asarray(reference, dtype=np.float32)
        ref_box = find_face(ref)
        if reference_embedding is None:
            reference_embedding = face_embedding(ref, ref_box)
        box = ref_box if box is None else box
    out = np.asarray(output, dtype=np.float32)
    if output_box is None:
        output_box = find_face(out, box)
    if output_box is None:
        raise NoFaceFoundError("No face was found in the output nor in the reference image.")
    return float(np.linalg.norm(face_embedding(out, output_box) - reference_embedding))
