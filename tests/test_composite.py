"""Composite: crop motion -> crops, and -> the whole photo at its own resolution."""

import numpy as np
import pytest

from didlearn import faces
from didlearn.composite import CropMotion, NativeCompositor, compose_crop


def _photo(size: int = 600, seed: int = 0) -> np.ndarray:
    """A photo full of fine detail (smoothed noise), where resampling blur shows."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 0.8) * 1.5 - 0.25, 0, 1)


def _crop(photo: np.ndarray, centre=(300.0, 300.0), side: float = 400.0, size: int = 64):
    """A FaceCrop whose square of ``side`` photo pixels is centred on ``centre``."""
    s = (size - 1) / side
    m = np.array([[s, 0, -s * (centre[0] - side / 2)], [0, s, -s * (centre[1] - side / 2)]])
    import cv2

    return faces.FaceCrop(cv2.warpAffine(photo, m, (size, size)), m, size)


def _laplacian_energy(img: np.ndarray) -> float:
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return float(np.mean(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[8:-8, 8:-8] ** 2))


def test_no_motion_is_the_photo_bit_for_bit():
    photo = _photo()
    comp = NativeCompositor(photo, _crop(photo))
    assert np.array_equal(comp(np.zeros((64, 64, 2), np.float32)), photo)


def test_an_integer_shift_moves_the_photo_pixels_exactly():
    photo = _photo()
    crop = _crop(photo)
    comp = NativeCompositor(photo, crop)
    flow = np.zeros((64, 64, 2), np.float32)
    flow[..., 0] = 3.0 * crop.matrix[0, 0]  # 3 photo pixels, in crop pixels
    out = comp(flow)
    # the middle of the crop (feather ramp 1): out[y, x] = photo[y, x + 3]
    np.testing.assert_array_equal(out[260:340, 260:340], photo[260:340, 263:343])
    # outside the crop's square the photo is untouched; at its edge the motion fades to 0
    assert np.array_equal(out[:95], photo[:95]) and np.array_equal(out[:, 505:], photo[:, 505:])


def test_a_sub_pixel_shift_keeps_the_fine_detail():
    """The photo's own pixels, resampled sharply: >= 0.9 of the Laplacian energy survives a
    half-pixel shift; the crop rendered at its own size and scaled up keeps < 0.2 of it."""
    photo = _photo()
    crop = _crop(photo)
    flow = np.full((64, 64, 2), 0.5 * crop.matrix[0, 0], np.float32)
    out = NativeCompositor(photo, crop, feather=0.01)(flow)
    inner = (slice(200, 400), slice(200, 400))
    kept = _laplacian_energy(out[inner]) / _laplacian_energy(photo[inner])
    assert kept >= 0.9
    old_way = faces.paste_back(photo, compose_crop(crop.image, CropMotion(flow[None]))[0], crop)
    assert _laplacian_energy(old_way[inner]) / _laplacian_energy(photo[inner]) < 0.2


def test_the_painting_shows_only_where_the_mask_asks():
    photo = _photo()
    crop = _crop(photo)
    mask = np.ones((64, 64, 1), np.float32)
    mask[28:36, 28:36] = 0.0  # paint the middle
    colour = np.zeros((64, 64, 3), np.float32)
    colour[..., 0] = 1.0  # red
    out = NativeCompositor(photo, crop)(np.zeros((64, 64, 2), np.float32), mask, colour)
    middle = out[290:310, 290:310]
    assert np.allclose(middle, [1.0, 0.0, 0.0], atol=1e-3)
    assert np.array_equal(out[:250], photo[:250])  # far from the painted square: the photo


def test_crops_compose_warp_and_painting():
    photo = _photo(64)
    flow = np.zeros((2, 64, 64, 2), np.float32)
    flow[1, ..., 0] = 1.0
    mask = np.ones((2, 64, 64, 1), np.float32)
    mask[0] = 0.25
    colour = np.full((2, 64, 64, 3), 0.5, np.float32)
    out = compose_crop(photo, CropMotion(flow, mask, colour))
    np.testing.assert_allclose(out[0], 0.25 * photo + 0.375, atol=1e-5)
    np.testing.assert_allclose(out[1, :, :-1], photo[:, 1:], atol=1e-5)


def test_crop_motion_checks_its_arrays():
    with pytest.raises(ValueError, match=r"\(B, S, S, 2\)"):
        CropMotion(np.zeros((64, 64, 2)))
    with pytest.raises(ValueError, match="both or neither"):
        CropMotion(np.zeros((1, 64, 64, 2)), mask=np.ones((1, 64, 64, 1)))
