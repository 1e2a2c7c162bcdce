"""Metrics: exact values on known pairs, and landmark/identity metrics on the portrait."""

import numpy as np
import pytest
from scipy import ndimage

from didlearn import data, faces, metrics
from didlearn.errors import NoFaceFoundError


@pytest.fixture(scope="module")
def crop():
    photo = data.sample_portrait()
    return faces.crop_face(photo, faces.face_landmarks(photo), 256).image


def test_l1_and_psnr_on_known_pairs():
    a = np.zeros((8, 8, 3), np.float32)
    b = np.full((8, 8, 3), 0.1, np.float32)
    assert metrics.l1(a, b) == pytest.approx(0.1)
    assert metrics.psnr(a, b) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert metrics.psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="same shape"):
        metrics.l1(a, b[:4])


def test_ssim_is_one_for_equal_images_and_drops_with_noise(crop):
    rng = np.random.default_rng(0)
    noisy = np.clip(crop + rng.normal(0, 0.1, crop.shape), 0, 1).astype(np.float32)
    assert metrics.ssim(crop, crop) == pytest.approx(1.0)
    assert metrics.ssim(crop, noisy) < 0.8
    batch = np.stack([crop, noisy])
    assert metrics.ssim(batch, batch) == pytest.approx(1.0)


def test_akd_is_zero_on_the_same_frame_and_measures_a_shift(crop):
    assert metrics.akd(crop, crop) == pytest.approx(0.0, abs=1e-6)
    shifted = ndimage.shift(crop, (0, 6, 0), order=1, mode="nearest")  # 6 px to the right
    assert metrics.akd(shifted, crop) == pytest.approx(6.0, abs=1.5)


def test_aed_separates_the_same_face_from_a_destroyed_one(crop):
    assert metrics.aed(crop, crop) == pytest.approx(0.0, abs=1e-6)
    moved = ndimage.shift(crop, (3, -4, 0), order=1, mode="nearest")
    same = metrics.aed(moved, crop)
    assert same < metrics.SAME_PERSON_DISTANCE
    # rows shuffled inside the face: a face box still exists (the reference's), the face does not
    rng = np.random.default_rng(1)
    scrambled = crop.copy()
    scrambled[60:200] = scrambled[60:200][rng.permutation(140)]
    assert metrics.aed(scrambled, crop) > same + 0.2


def test_embedding_needs_a_face():
    with pytest.raises(NoFaceFoundError, match="No face"):
        metrics.face_embedding(np.full((100, 100, 3), 0.5, np.float32))
