"""Generator fusion: shapes, starts as thin-plate warping, seeds, save/load with the settings,
shipped weights."""

import json
import random
import warnings

import numpy as np
import pytest
import tensorflow as tf

from didlearn import data, faces, flow, generator, landmarks, motion, protocol, provenance
from didlearn.errors import MissingResourceError, OutputExistsError, UsageError

SMALL = generator.GeneratorConfig(size=64)


@pytest.fixture(scope="module")
def small_models():
    return generator.build_models(SMALL, seed=0)


@pytest.fixture(scope="module")
def portrait_crop():
    photo = data.sample_portrait()
    lm = faces.face_landmarks(photo)
    crop = faces.crop_face(photo, lm, 64)
    return crop.image, crop.to_crop(lm)


def _moved(ks: np.ndarray, b: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (ks[None] + rng.normal(0, 1.0, (b, *ks.shape))).astype(np.float32)


def test_forward_shapes_and_ranges(small_models, portrait_crop):
    crop, ks = portrait_crop
    kp = _moved(ks, 3)
    out = generator.forward(small_models, crop[None], ks[None], kp)
    s, r = 64, 64 // SMALL.refine_factor
    expected = {
        "frame": (3, s, s, 3),
        "flow": (3, s, s, 2),
        "coarse_flow": (3, s, s, 2),
        "occlusion": (3, r, r, 1),
        "mask": (3, s, s, 1),
        "colour": (3, s, s, 3),
        "warped": (3, s, s, 3),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    for key in ("frame", "occlusion", "mask", "colour"):
        v = out[key].numpy()
        assert v.min() >= 0.0 and v.max() <= 1.0, key


def test_refiner_input_channels(portrait_crop):
    crop, ks = portrait_crop
    f = tf.zeros((1, 64, 64, 2))
    x = generator.refiner_input(crop[None], f, ks[None], ks[None], SMALL)
    assert tuple(x.shape) == (1, 16, 16, SMALL.refiner_inputs)
    # same keypoints: the heatmap differences are zero
    np.testing.assert_allclose(x[..., 6 : 6 + SMALL.n_keypoints], 0.0, atol=1e-6)


def test_untrained_models_reproduce_thin_plate_warping(small_models, portrait_crop):
    """The residual starts at zero and occlusion/mask at 'trust the warp' (~0.98)."""
    crop, ks = portrait_crop
    kp = _moved(ks, 2)
    out = generator.forward(small_models, crop[None], ks[None], kp)
    tps = motion.tps_flow(
        np.broadcast_to(ks, kp.shape),
        kp,
        64,
        64,
        step=generator.TPS_STEP,
        regularization=motion.TPS_SMOOTHING,
    )
    np.testing.assert_allclose(out["flow"].numpy(), tps.numpy(), atol=1e-5)
    warped = flow.warp(np.repeat(crop[None], 2, 0), tps).numpy()
    assert np.abs(out["frame"].numpy() - warped).mean() < 0.01


def test_coincident_landmarks_do_not_explode(small_models, portrait_crop):
    """A blink puts two landmarks on one pixel: the exact spline would be singular."""
    crop, ks = portrait_crop
    kp = ks.copy()
    kp[37] = kp[41]  # upper eyelid onto the lower one
    out = generator.forward(small_models, crop[None], ks[None], kp[None])
    f = out["flow"].numpy()
    assert np.isfinite(f).all() and np.abs(f).max() < 64


def _leftover(f, ks: np.ndarray, kp: np.ndarray) -> float:
    """Mean distance (px) between where each target keypoint reads the photo and its photo twin."""
    return float(np.linalg.norm(generator.keypoint_leftover(f, ks, kp), axis=-1).mean())


def test_keypoint_leftover_is_zero_for_a_flow_that_lands_every_keypoint(portrait_crop):
    _, ks = portrait_crop
    kp = (ks + np.float32([3.0, -2.0]))[None]
    shift = tf.fill((1, 64, 64, 2), 0.0) + tf.constant([-3.0, 2.0])  # kp reads kp - (3, -2) = ks
    np.testing.assert_allclose(generator.keypoint_leftover(shift, ks[None], kp), 0.0, atol=1e-4)
    left = generator.keypoint_leftover(tf.zeros_like(shift), ks[None], kp).numpy()
    np.testing.assert_allclose(left, np.broadcast_to([-3.0, 2.0], left.shape), atol=1e-4)


def test_snap_to_keypoints_lands_the_keypoints(portrait_crop):
    crop, ks = portrait_crop
    kp = _moved(ks, 2)
    ksb = np.broadcast_to(ks, kp.shape).astype(np.float32)
    tps = motion.tps_flow(ksb, kp, 64, 64, step=generator.TPS_STEP, regularization=1e-6)
    off = tps + tf.constant([2.0, -1.0])  # every keypoint now reads 2.2 px further off
    snapped = generator.snap_to_keypoints(off, ksb, kp)
    # the smooth error is taken out; what stays is the jitter the smoothing spline ignores
    # (1 px landmark noise on a 64 px crop, which the coarse step-8 spline does not follow)
    before, after = _leftover(off, ksb, kp), _leftover(snapped, ksb, kp)
    assert after < 0.5 * before and after < _leftover(tps, ksb, kp) + 0.1
    # the correction is smooth: no step larger than a pixel between neighbouring pixels
    correction = (snapped - off).numpy()
    assert np.abs(np.diff(correction, axis=1)).max() < 1.0
    assert np.abs(np.diff(correction, axis=2)).max() < 1.0


def test_unfold_beside_face_replaces_folds_beside_the_face_only(outline_landmarks):
    s = 128
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    mirror = np.stack([-2.0 * (xs - 64), np.zeros_like(ys)], -1)[None]  # reads 128 - x: folds
    coarse = np.zeros_like(mirror)
    kp = outline_landmarks((64.0, 64.0), 48.0)
    out = generator.unfold_beside_face(tf.constant(mirror), tf.constant(coarse), kp).numpy()
    # beside the face the mirror is gone (the coarse flow, which does not fold) ...
    np.testing.assert_allclose(out[0, :12, :12], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[0, -12:, -12:], 0.0, atol=1e-6)
    # ... deep inside it the fold stays: there it stands for an occlusion
    np.testing.assert_allclose(out[0, 56:72, 56:72], mirror[0, 56:72, 56:72])
    # a flow that folds nowhere is left exactly as it was
    zoom = tf.constant(np.stack([0.1 * (xs - 64), -0.2 * (ys - 64)], -1)[None])
    same = generator.unfold_beside_face(zoom, tf.constant(coarse), kp)
    np.testing.assert_array_equal(same.numpy(), zoom.numpy())


def test_guards_are_for_inference_and_animate_crop_uses_them(small_models, portrait_crop):
    crop, ks = portrait_crop
    kp = _moved(ks, 8, seed=2) + np.float32(1.5)  # a shifted face: the coarse spline lags
    ksb = np.broadcast_to(ks, kp.shape)
    raw = generator.forward(small_models, crop[None], ksb, kp)
    guarded = generator.forward(small_models, crop[None], ksb, kp, guards=True)
    assert _leftover(guarded["flow"], ksb, kp) < _leftover(raw["flow"], ksb, kp)
    frames = generator.animate_crop(small_models, crop, ks, kp)
    np.testing.assert_allclose(frames, np.clip(guarded["frame"].numpy(), 0, 1), atol=5e-4)
    assert np.abs(frames - raw["frame"].numpy()).max() > 1e-3


def test_animate_crop_checks_the_crop_size(small_models, portrait_crop):
    crop, ks = portrait_crop
    frames = generator.animate_crop(small_models, crop, ks, _moved(ks, 2))
    assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.float32
    with pytest.raises(ValueError, match="crop_face"):
        generator.animate_crop(small_models, np.zeros((32, 32, 3), np.float32), ks, ks[None])


def test_save_load_round_trip(small_models, portrait_crop, tmp_path):
    crop, ks = portrait_crop
    kp = _moved(ks, 2, seed=1)
    # change the zero-initialised layers so the round trip is tested on non-trivial weights
    for v in small_models.refiner.trainable_variables:
        v.assign(v + 0.01)
    files = generator.save_models(small_models, tmp_path, info={"steps": 3})
    assert all(p.is_file() for p in files.values())
    loaded = generator.load_models(tmp_path)
    assert loaded.config == SMALL and loaded.info["steps"] == 3
    a = generator.forward(small_models, crop[None], ks[None], kp)["frame"].numpy()
    b = generator.forward(loaded, crop[None], ks[None], kp)["frame"].numpy()
    np.testing.assert_array_equal(a, b)


def test_save_refuses_to_overwrite_and_writes_nothing(small_models, tmp_path):
    generator.save_models(small_models, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(OutputExistsError, match="overwrite"):
        generator.save_models(small_models, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def _weights(models) -> dict[str, list[np.ndarray]]:
    return {p: getattr(models, p).get_weights() for p in generator.PARTS}


def test_the_seed_alone_fixes_the_initial_weights():
    """Same seed, same weights; another seed, other weights; no global random state touched."""
    tf_state = tf.random.get_global_generator().state.numpy()
    np_state, py_state = np.random.get_state(), random.getstate()
    a = _weights(generator.build_models(SMALL, seed=1))
    b = _weights(generator.build_models(SMALL, seed=1))
    c = _weights(generator.build_models(SMALL, seed=2))
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert random.getstate() == py_state
    np.testing.assert_array_equal(tf.random.get_global_generator().state.numpy(), tf_state)
    for p in generator.PARTS:
        for wa, wb in zip(a[p], b[p], strict=True):
            np.testing.assert_array_equal(wa, wb)
    first_kernels = [a[p][0] for p in generator.PARTS], [c[p][0] for p in generator.PARTS]
    assert all(not np.array_equal(x, y) for x, y in zip(*first_kernels, strict=True))
    # each layer draws its own seed: two same-shaped kernels of one model differ
    decoder = generator.build_models(SMALL, seed=1).decoder
    res0, res1 = (decoder.get_layer(f"res{i}_a").kernel.numpy() for i in (0, 1))
    assert res0.shape == res1.shape and not np.array_equal(res0, res1)


def test_shipped_settings_are_the_codes():
    """The shipped weights were trained and tuned with these settings: changing a constant in
    the code (thin-plate step or smoothing, a guard's) must fail here, not change the model."""
    meta = json.loads((generator.WEIGHTS_DIR / f"{generator.WEIGHTS_NAME}.json").read_text())
    assert meta["settings"] == generator.weight_settings()
    assert meta["settings"]["tps_step"] == 8 and meta["settings"]["tps_smoothing"] == 1e-2


def test_saved_settings_survive_a_round_trip(small_models, tmp_path):
    files = generator.save_models(small_models, tmp_path)
    meta = json.loads(files["config"].read_text())
    assert meta["settings"] == generator.weight_settings()
    assert set(meta["versions"]) == {"python", "tensorflow", "keras", "numpy", "didlearn"}
    assert meta["git_commit"] == provenance.git_state()[0]
    assert meta["git_commit"] is None or len(meta["git_commit"]) == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = generator.load_models(tmp_path)
    assert loaded.config == small_models.config


def test_weights_saved_with_other_settings_are_refused(small_models, tmp_path):
    files = generator.save_models(small_models, tmp_path)
    meta = json.loads(files["config"].read_text())
    meta["settings"]["tps_smoothing"] = 1e-4
    meta["settings"]["old_knob"] = 3
    files["config"].write_text(json.dumps(meta))
    with pytest.raises(UsageError, match=r"tps_smoothing saved 0.0001, code 0.01") as err:
        generator.load_models(tmp_path)
    assert "old_knob saved 3, code nothing" in str(err.value)
    assert "check_settings=False" in str(err.value)
    generator.load_models(tmp_path, check_settings=False)  # asked for: loads anyway


def test_weights_saved_before_settings_were_recorded_load_quietly(small_models, tmp_path):
    files = generator.save_models(small_models, tmp_path)
    meta = json.loads(files["config"].read_text())
    files["config"].write_text(json.dumps({"config": meta["config"], "info": {}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert generator.load_models(tmp_path).config == small_models.config


def test_a_failed_save_leaves_no_file_behind(small_models, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(small_models.encoder, "save_weights", broken)  # the second part
    with pytest.raises(OSError, match="disk full"):
        generator.save_models(small_models, tmp_path)
    assert list(tmp_path.iterdir()) == []
    # over an existing set, a failed overwrite keeps the old set whole
    monkeypatch.undo()
    files = generator.save_models(small_models, tmp_path, info={"steps": 1})
    before = {p: p.read_bytes() for p in files.values()}
    monkeypatch.setattr(small_models.encoder, "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        generator.save_models(small_models, tmp_path, info={"steps": 2}, overwrite=True)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_load_of_a_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(MissingResourceError, match="didlearn.optimize"):
        generator.load_models(tmp_path / "nothing")


def test_config_rejects_sizes_the_models_cannot_take():
    with pytest.raises(ValueError, match="multiple of 32"):
        generator.GeneratorConfig(size=100)


def test_shipped_weights_load_offline_and_animate_the_portrait():
    models = generator.load_pretrained()
    assert models.config.size == 256
    assert models.info.get("steps", 0) > 0  # trained, not a fresh initialisation
    photo = data.sample_portrait()
    lm = faces.face_landmarks(photo)
    crop = faces.crop_face(photo, lm, 256)
    ks = crop.to_crop(lm)
    frames = generator.animate_crop(models, crop.image, ks, ks[None])
    assert frames.shape == (1, 256, 256, 3)
    # no motion asked: the face stays the photo's face
    assert np.abs(frames[0] - crop.image).mean() < 0.05
    np.testing.assert_array_equal(frames[0], crop.image)  # exactly: no motion, no correction


def test_the_refiners_correction_fades_out_with_the_motion(portrait_crop):
    _, ks = portrait_crop
    rng = np.random.default_rng(0)
    coarse = tf.constant(rng.normal(0, 1, (3, 64, 64, 2)).astype(np.float32))
    refined = coarse + 0.7
    kp = np.stack([ks, ks + [0.5, 0.0], ks + [0.0, 2.0]]).astype(np.float32)
    out = generator.fade_with_motion(refined, coarse, np.broadcast_to(ks, kp.shape), kp).numpy()
    np.testing.assert_array_equal(out[0], coarse.numpy()[0])  # no motion: no correction
    assert 0.0 < (out[1] - coarse.numpy()[1]).mean() < 0.7  # half a pixel: part of it
    np.testing.assert_allclose(out[2], refined.numpy()[2], atol=1e-6)  # 2 px: all of it


def test_painting_only_inside_a_mouth_opening_wider_than_the_photos(portrait_crop):
    _, ks = portrait_crop
    opened = ks.copy()
    opened[65:68, 1] += 4.0  # the inner lower lip (dlib 65-67) moves down
    assert generator.mouth_opening(opened[None]) > generator.mouth_opening(ks[None])
    holes = tf.zeros((2, 64, 64, 1))  # a decoder that would paint everything
    kp = np.stack([ks, opened]).astype(np.float32)
    mask = generator.paint_only_opening_mouth(holes, np.stack([ks, ks]), kp).numpy()
    assert (mask[0] == 1.0).all()  # mouth as in the photo: nothing painted
    inside = motion.inside_polygon(kp[1:, landmarks.INNER_LIPS], 64, 64).numpy()[0, ..., 0] > 0
    assert mask[1][inside].mean() < 0.6  # the opened mouth is painted (soft edge: 1 px) ...
    centre = np.round(kp[1, landmarks.INNER_LIPS].mean(axis=0)).astype(int)
    far = np.hypot(*(np.mgrid[0:64, 0:64][::-1] - centre[:, None, None])) > 12
    assert (mask[1][far] == 1.0).all()  # ... and nothing far from it


def test_no_grey_blotches_on_the_bundled_pair():
    """The bundled portrait driven by the bundled clip, frames 85-100 (the biggest head rolls):
    the decoder's own mask opens on cheek, forehead and chin and its painting shows there as flat
    grey patches; the rendered frames must show none inside the face (outside the mouth)."""
    from didlearn import animate

    anim = animate.Animator(data.sample_portrait(), method="model", progress=False)
    kps = anim.driving_targets(data.sample_driving_video(), 101)[85:101]
    ks = np.broadcast_to(anim.source_kp, kps.shape)
    out = generator.forward(anim.models, anim.crop.image[None], ks, kps, guards=True)
    warped = out["warped"].numpy()

    def blotched(frames) -> float:
        return max(
            protocol.blotched_share(f, w, k) for f, w, k in zip(frames, warped, kps, strict=True)
        )

    decoder = out["decoder_mask"] * out["warped"] + (1 - out["decoder_mask"]) * out["colour"]
    decoder = decoder.numpy()
    assert blotched(decoder) > 0.01  # the blotches are there in what the decoder proposes ...
    assert blotched(out["frame"].numpy()) < 1e-4  # ... and not in the frames rendered


def test_a_greyscale_photo_gets_a_grey_painting(small_models):
    """The painter learned from colour videos; on a black-and-white photo its colours are wrong
    (a tinted blob in the mouth), so the guarded render paints in grey there and nowhere else."""
    size = small_models.config.size
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.uniform(0.2, 0.8, (1, size, size, 1)), 3, -1).astype(np.float32)
    tinted = grey * np.array([1.0, 0.8, 0.6], np.float32)
    ks = np.tile(np.linspace(10, size - 10, 68, dtype=np.float32)[:, None], (1, 1, 2))
    kp = ks + 2.0
    for photo, expect_grey in ((grey, True), (tinted, False)):
        out = generator.forward(small_models, photo, ks, kp, guards=True)
        colour = out["colour"].numpy()
        spread = float((colour.max(-1) - colour.min(-1)).mean())
        assert (spread < 1e-6) == expect_grey, spread
        fused = out["mask"] * out["warped"] + (1 - out["mask"]) * out["colour"]
        np.testing.assert_allclose(out["frame"].numpy(), fused.numpy(), atol=1e-6)
    raw = generator.forward(small_models, grey, ks, kp, guards=False)["colour"].numpy()
    assert float((raw.max(-1) - raw.min(-1)).mean()) > 1e-4  # unguarded, the painting has hue
