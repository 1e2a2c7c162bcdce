"""Gradient optimization: losses, augmentation, tf.data pairs, train steps, fit, fine-tuning."""

import dataclasses
import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from didlearn import data, faces, generator, landmarks, motion, optimize, provenance
from didlearn.errors import UsageError

SMALL = generator.GeneratorConfig(size=64)
#: Coarse perceptual scales only: a 64 px crop at 1/8 is the smallest VGG input worth having.
FAST = optimize.LossWeights(perceptual_scales=(1.0,))


@pytest.fixture(scope="module")
def clip():
    """A short real clip (the bundled driving video) cropped at 64 px."""
    return optimize.prepare_clip(data.sample_driving_video(), size=64, max_frames=16)


def _batch(clip, pairs):
    f = clip.frames.astype(np.float32) / 255
    i, j = np.array(pairs).T
    return tuple(tf.constant(x) for x in (f[i], f[j], clip.landmarks[i], clip.landmarks[j]))


def test_mirror_permutation_is_an_involution():
    m = landmarks.MIRROR
    assert sorted(m) == list(range(68))
    np.testing.assert_array_equal(m[m], np.arange(68))
    assert m[36] == 45 and m[48] == 54 and m[30] == 30 and m[0] == 16


def test_flipped_landmarks_keep_left_and_right(clip):
    """After a flip, the person's right eye (36-41) is still left of the left eye in the image."""
    lm = clip.landmarks[0]
    for seed in range(8):
        _, _, ks, _ = optimize.augment_pair(
            clip.frames[0], clip.frames[1], lm, clip.landmarks[1], tf.constant([seed, 1])
        )
        k = ks.numpy()
        assert k[36:42, 0].mean() < k[42:48, 0].mean(), seed


def test_augmentation_moves_landmarks_with_the_pixels():
    """A dot drawn at a landmark is still under that landmark after flip + crop."""
    s = 64
    img = np.zeros((s, s, 3), np.uint8)
    pts = np.random.default_rng(0).uniform(16, 48, (68, 2)).astype(np.float32)
    x, y = np.round(pts[36]).astype(int)
    img[y - 1 : y + 2, x - 1 : x + 2] = 255
    pts[36] = [x, y]
    for seed in range(6):
        a, b, ka, kb = optimize.augment_pair(img, img, pts, pts, tf.constant([seed, 7]))
        a = a.numpy().mean(axis=-1)
        k = ka.numpy()
        yy, xx = np.unravel_index(np.argmax(a), a.shape)
        assert a[yy, xx] > 0.5  # the dot survived
        # unflipped it is landmark 36; flipped, the mirror order puts it at 45
        near = [np.hypot(*(k[i] - [xx, yy])) for i in (36, landmarks.MIRROR[36])]
        assert min(near) < 1.5, (seed, near)
        np.testing.assert_allclose(a, b.numpy().mean(axis=-1), atol=1e-6)  # same change


def test_keypoint_loss_is_zero_for_the_exact_flow_only(clip):
    ks, kd = clip.landmarks[0][None], clip.landmarks[8][None]
    exact = motion.tps_flow(ks, kd, 64, 64, regularization=0.0)  # the interpolating spline
    assert float(optimize.keypoint_loss(exact, ks, kd)) < 1e-3
    still = tf.zeros_like(exact)
    assert float(optimize.keypoint_loss(still, ks, kd)) > 0.005


def test_fold_loss_prices_only_a_warp_that_folds():
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    shift = tf.constant(np.stack([np.full_like(xs, 3.0), np.full_like(ys, -2.0)], -1)[None])
    zoom = tf.constant(np.stack([-0.5 * (xs - 16), -0.5 * (ys - 16)], -1)[None])
    assert float(optimize.fold_loss(shift)) == float(optimize.fold_loss(zoom)) == 0
    # x -> 16 - (x - 16): the photo mirrored, det(I + grad F) = -1 everywhere
    mirror = tf.constant(np.stack([-2.0 * (xs - 16), np.zeros_like(ys)], -1)[None])
    assert np.isclose(float(optimize.fold_loss(mirror)), 1.0)
    # only the folded half of the picture costs
    half = np.stack([-2.0 * (xs - 16) * (ys < 16), np.zeros_like(ys)], -1)[None]
    assert 0.4 < float(optimize.fold_loss(tf.constant(half))) < 0.6


def test_fold_loss_with_landmarks_prices_only_folds_beside_the_face(outline_landmarks):
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    mirror = tf.constant(np.stack([-2.0 * (xs - 16), np.zeros_like(ys)], -1)[None])
    whole_face = outline_landmarks((16.0, 16.0), 30.0)  # the outline encloses the picture
    assert float(optimize.fold_loss(mirror, whole_face)) == 0
    small_face = outline_landmarks((16.0, 16.0), 6.0)
    beside = float(tf.reduce_mean(motion.outside_face(small_face, 32, 32)))
    assert np.isclose(float(optimize.fold_loss(mirror, small_face)), beside)
    assert 0.5 < beside < 0.9


def test_losses_vanish_for_the_right_answer(clip):
    src, drv, ks, kd = _batch(clip, [(0, 5)])
    flow = motion.tps_flow(ks, kd, 64, 64)
    out = {"frame": drv, "flow": flow, "colour": drv, "mask": tf.ones_like(drv[..., :1])}
    losses = optimize.compute_losses(out, drv, ks, kd, FAST)
    assert float(losses["l1"]) == float(losses["colour"]) == float(losses["perceptual"]) == 0
    assert float(losses["paint"]) == 0  # the mask keeps the warp everywhere: nothing painted
    wrong = optimize.compute_losses({**out, "frame": src}, drv, ks, kd, FAST)
    assert float(wrong["total"]) > float(losses["total"]) + 0.01
    # the painting is judged on its own, even where the fusion mask would hide it
    bad_paint = optimize.compute_losses({**out, "colour": src}, drv, ks, kd, FAST)
    mouth = motion.inside_mouth(kd, 64, 64)
    in_mouth = float(tf.reduce_sum(mouth * tf.abs(src - drv)) / (3 * tf.reduce_sum(mouth) + 1))
    assert float(losses["mouth"]) == 0 and in_mouth > 0.01
    expected = FAST.colour * float(tf.reduce_mean(tf.abs(src - drv))) + FAST.mouth * in_mouth / 2
    assert np.isclose(float(bad_paint["total"]) - float(losses["total"]), expected, rtol=1e-4)
    # painting costs paint * (1 - M) per pixel, even when the painting is right
    half = tf.concat([tf.zeros_like(drv[:, :32, :, :1]), tf.ones_like(drv[:, 32:, :, :1])], 1)
    painted = optimize.compute_losses({**out, "mask": half}, drv, ks, kd, FAST)
    assert np.isclose(float(painted["paint"]), 0.5)
    expected = FAST.paint * 0.5
    assert np.isclose(float(painted["total"]) - float(losses["total"]), expected, rtol=1e-4)
    # the fold price (off by default): 0 for the thin-plate flow, weight * fold_loss for a fold
    assert "fold" not in losses
    priced = dataclasses.replace(FAST, fold=10.0)
    unfolded = optimize.compute_losses(out, drv, ks, kd, priced)
    assert float(unfolded["fold"]) == 0 and float(unfolded["total"]) == float(losses["total"])
    xs = np.arange(64, dtype=np.float32)[None, None, :, None] * np.ones((1, 64, 1, 1), np.float32)
    mirror = tf.concat([32 - 2 * tf.constant(xs), tf.zeros_like(xs)], -1)  # reads 32 - x: folds
    folded = optimize.compute_losses({**out, "flow": mirror}, drv, ks, kd, priced)
    beside_face = float(tf.reduce_mean(motion.outside_face(kd, 64, 64)))  # only there it costs
    assert 0.3 < beside_face < 0.95
    assert np.isclose(float(folded["fold"]), beside_face)
    unpriced = optimize.compute_losses({**out, "flow": mirror}, drv, ks, kd, FAST)
    expected = 10.0 * beside_face
    assert np.isclose(float(folded["total"]) - float(unpriced["total"]), expected, rtol=1e-4)


def test_loss_weights_and_parsing_come_from_the_registry():
    fields = {f.name for f in dataclasses.fields(optimize.LossWeights)}
    assert fields == set(optimize.LOSS_TERMS) | {"perceptual_scales"}
    assert all(
        getattr(optimize.LossWeights(), t.name) == t.default for t in optimize.LOSS_TERMS.values()
    )
    assert list(optimize.LOSS_TERMS)[:2] == ["l1", "perceptual"]  # the log's column order
    assert optimize.describe_losses().count("\n") == len(optimize.LOSS_TERMS) - 1


def test_a_registered_term_enters_compute_losses(clip, monkeypatch):
    """Adding a loss term is one function plus one registration."""
    src, drv, ks, kd = _batch(clip, [(0, 5)])
    out = {
        "frame": src,
        "flow": tf.zeros((1, 64, 64, 2)),
        "colour": src,
        "mask": tf.ones_like(drv[..., :1]),
    }
    base = optimize.compute_losses(out, drv, ks, kd, FAST)
    monkeypatch.setattr(optimize.losses, "LOSS_TERMS", dict(optimize.LOSS_TERMS))
    with pytest.raises(ValueError, match="registered already"):
        optimize.loss_term("l1", 1.0, "again", "l1", 1, 0.1)(lambda *a: 0.0)

    @optimize.loss_term("dummy", 0.5, "a constant 2", "dm", 1, 0.1)
    def dummy(out, target, ks, kd, weights):
        return tf.constant(2.0)

    weights = types.SimpleNamespace(**dataclasses.asdict(FAST), dummy=0.5)
    more = optimize.compute_losses(out, drv, ks, kd, weights)
    assert float(more["dummy"]) == 2.0 and list(more)[-2:] == ["dummy", "total"]
    assert np.isclose(float(more["total"]), float(base["total"]) + 1.0)


def test_pair_dataset_batches_are_reproducible(clip):
    a = next(iter(optimize.pair_dataset([clip], batch=3, seed=4)))
    b = next(iter(optimize.pair_dataset([clip], batch=3, seed=4)))
    assert tuple(a[0].shape) == (3, 64, 64, 3) and a[0].dtype == tf.float32
    assert tuple(a[2].shape) == (3, 68, 2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert 0.0 <= float(tf.reduce_min(a[0])) and 0.5 < float(tf.reduce_max(a[0])) <= 1.0


def test_a_few_train_steps_lower_the_loss_on_a_fixed_batch(clip):
    models = generator.build_models(SMALL, seed=0)
    batch = _batch(clip, [(0, 9), (3, 14)])
    opt = optimize.make_optimizer(1e-3)
    step = optimize.make_train_step(models, opt, FAST)

    def loss() -> float:
        out = generator.forward(models, batch[0], batch[2], batch[3])
        return float(optimize.compute_losses(out, batch[1], batch[2], batch[3], FAST)["total"])

    before = loss()
    for _ in range(15):
        step(batch)
    after = loss()
    assert after < 0.97 * before, (before, after)  # measured: 0.102 -> 0.096


def test_fit_logs_checkpoints_and_resumes(clip, tmp_path):
    models = generator.build_models(SMALL, seed=1)
    ds = optimize.pair_dataset([clip], batch=2, seed=0)
    hist = optimize.fit(models, ds, 3, weights=FAST, log_dir=tmp_path, progress=False)
    assert [h["step"] for h in hist] == [1, 2, 3]
    rows = optimize.read_log(tmp_path / "log.csv")
    assert [r["step"] for r in rows] == [1, 2, 3] and {"l1", "perceptual", "keypoint"} <= set(
        rows[0]
    )
    assert (tmp_path / "losses.png").stat().st_size > 1000
    # a second run with more steps continues from the checkpoint (step 4), not from 1
    more = optimize.fit(models, ds, 5, weights=FAST, log_dir=tmp_path, progress=False)
    assert [h["step"] for h in more] == [4, 5]
    # a time budget ends the run early, checkpointed: the next run resumes after it
    budget = optimize.fit(
        models, ds, 50, weights=FAST, log_dir=tmp_path, progress=False, max_minutes=0
    )
    assert [h["step"] for h in budget] == [6]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("-6")


def test_fit_writes_its_whole_configuration(clip, tmp_path):
    models = generator.build_models(SMALL, seed=1)
    ds = optimize.pair_dataset([clip], batch=2, seed=0)
    options = {"seed": 7, "clips": [clip.name]}
    optimize.fit(
        models, ds, 1, lr=1e-3, weights=FAST, log_dir=tmp_path, progress=False, options=options
    )
    config = optimize.read_config(tmp_path)
    assert not list(tmp_path.glob(".*part*"))  # written atomically: no temporary file left

    def as_json(value):
        return json.loads(json.dumps(value))

    assert config["loss_weights"] == as_json(dataclasses.asdict(FAST))
    assert config["model_config"] == as_json(dataclasses.asdict(SMALL))
    assert config["weight_settings"] == generator.weight_settings()
    training = config["training"]
    assert training["steps"] == 1 and training["batch"] == 2 and training["start_step"] == 0
    assert np.isclose(training["lr"], 1e-3) and training["seed"] == 7
    assert training["clips"] == [clip.name]
    assert {"tensorflow", "keras", "numpy", "didlearn"} <= set(config["versions"])
    assert config["versions"]["numpy"] == np.__version__
    commit = config["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    # a resumed run records where it started
    optimize.fit(models, ds, 2, weights=FAST, log_dir=tmp_path, progress=False)
    assert optimize.read_config(tmp_path)["training"]["start_step"] == 1


def test_git_state_outside_a_checkout_is_none(tmp_path):
    assert provenance.git_state(tmp_path) == (None, None)


def test_self_pairs_move_landmarks_with_the_image():
    photo = data.sample_portrait()
    lm = faces.face_landmarks(photo)
    crop = faces.crop_face(photo, lm, 64)
    ks = crop.to_crop(lm)
    src, tgt, kss, kds = optimize.self_pairs(crop.image, ks, 4, seed=0)
    assert src.shape == (4, 64, 64, 3) and kds.shape == (4, 68, 2)
    for a, b, ka, kb in zip(src, tgt, kss, kds, strict=True):
        # the thin-plate warp defined by the landmarks turns one image into the other
        f = motion.tps_flow(ka, kb, 64, 64, anchors=False)
        from didlearn.flow import warp

        moved = warp(a, f[0]).numpy()
        inner = (slice(16, 48), slice(16, 48))
        assert np.abs(moved[inner] - b[inner]).mean() < 0.03


def test_fine_tune_trains_a_copy_and_keeps_the_original(clip):
    models = generator.build_models(SMALL, seed=2)
    before = [w.copy() for w in models.refiner.get_weights()]
    crop = clip.frames[0].astype(np.float32) / 255
    tuned = optimize.fine_tune(models, crop, clip.landmarks[0], steps=2, progress=False)
    assert tuned is not models
    for a, b in zip(before, models.refiner.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    changed = [
        not np.array_equal(a, b) for a, b in zip(before, tuned.refiner.get_weights(), strict=True)
    ]
    assert any(changed)


def test_parse_loss_weights_changes_only_the_named_terms():
    weights = optimize.parse_loss_weights(["fold=10", "paint=0.2"])
    assert weights == optimize.LossWeights(fold=10.0, paint=0.2)
    assert optimize.parse_loss_weights([]) == optimize.LossWeights()


@pytest.mark.parametrize(
    "item, message",
    [("folds=1", "unknown loss term 'folds'.*fold"), ("fold=lots", "needs a number")],
)
def test_training_command_rejects_bad_loss_weights(item, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        optimize.main(["--weight", item])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_mouth_mask_covers_the_lips_only(clip):
    """The mouth term's mask: the outer-lip polygon (a few px grown), not the rest of the face."""
    points = clip.landmarks[0]
    mouth = motion.inside_mouth(tf.constant(points[None]), 64, 64)[0, ..., 0].numpy()
    lips = points[landmarks.OUTER_LIPS]
    for x, y in lips.round().astype(int):
        assert mouth[np.clip(y, 0, 63), np.clip(x, 0, 63)] == 1
    eyes = points[landmarks.RIGHT_EYE].mean(0).round().astype(int)
    assert mouth[eyes[1], eyes[0]] == 0
    assert 0.005 < mouth.mean() < 0.2


def test_person_comes_from_the_clip_name():
    assert optimize.person_of("styletalk_Obama_clip2") == "styletalk_Obama"
    assert optimize.person_of("styletalk_andrew_clip_1") == "styletalk_andrew"
    assert optimize.person_of("styletalk_feifeili_clip2_short") == "styletalk_feifeili"
    assert optimize.person_of("styletalk_furious_talk2_clip7") == "styletalk_furious"
    assert optimize.person_of("styletalk_KristiNoem") == "styletalk_KristiNoem"
    assert optimize.person_of("liveportrait_d11") == "liveportrait_d11"


def test_validation_clips_never_train_and_their_people_cannot_leak(tmp_path):
    paths = [tmp_path / f"{s}.mp4" for s in ("liveportrait_d0", *optimize.VALIDATION_CLIPS)]
    training, validation = optimize.split_videos(paths)
    assert [p.stem for p in training] == ["liveportrait_d0"]
    assert sorted(p.stem for p in validation) == sorted(optimize.VALIDATION_CLIPS)
    assert len(optimize.VALIDATION_PEOPLE) == len(optimize.VALIDATION_CLIPS) >= 5
    with pytest.raises(UsageError, match="styletalk_KristiNoem, a validation person"):
        optimize.split_videos([tmp_path / "styletalk_KristiNoem_clip2.mp4"])


SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


@pytest.mark.skipif(not SHARED_VIDEOS.is_dir(), reason="needs ../shared/data/videos")
def test_each_validation_person_is_in_one_clip_of_the_shared_set():
    stems = [p.stem for p in SHARED_VIDEOS.glob("*.mp4")]
    people = [optimize.person_of(s) for s in stems]
    assert len(stems) == 41 and len(set(people)) == 27  # the shared set's README
    for person in optimize.VALIDATION_PEOPLE:
        assert people.count(person) == 1, person


def _fake_clip(name, frames=6, value=0):
    crops = np.full((frames, 8, 8, 3), value, np.uint8)
    return optimize.Clip(name, crops, np.zeros((frames, 68, 2), np.float32))


def test_prepared_clips_are_cached_and_prepared_again_when_the_video_changes(tmp_path, monkeypatch):
    from didlearn.optimize import clips as clips_module

    prepared = []

    def prepare(path, size, max_frames):
        prepared.append(path.name)
        return _fake_clip(path.stem, value=len(prepared))

    monkeypatch.setattr(clips_module, "prepare_clip", prepare)
    video, cache = tmp_path / "talk.mp4", tmp_path / "cache"
    video.write_bytes(b"first version")
    first = optimize.prepare_clips([video], 8, cache=cache, progress=False)[0]
    again = optimize.prepare_clips([video], 8, cache=cache, progress=False)[0]
    assert prepared == ["talk.mp4"]  # the rerun read the cache
    assert isinstance(again.frames, np.memmap) and np.array_equal(again.frames, first.frames)
    assert again.person == "talk"
    video.write_bytes(b"second version")  # same name, other bytes: prepared again
    changed = optimize.prepare_clips([video], 8, cache=cache, progress=False)[0]
    assert prepared == ["talk.mp4", "talk.mp4"] and int(changed.frames[0, 0, 0, 0]) == 2
    assert not list(cache.rglob(".*part*"))  # no temporary file left


def test_pairs_are_drawn_evenly_by_person_not_by_clip():
    # one person in three clips (value 1), another in one short clip (value 2)
    many = [_fake_clip(f"styletalk_a_clip{i}", frames=40, value=1) for i in range(3)]
    clips = [*many, _fake_clip("solo", frames=5, value=2)]
    ds = optimize.pair_dataset(clips, batch=8, seed=3, augment=False)
    values = np.concatenate([b[0].numpy()[:, 0, 0, 0] for b in ds.take(40)])
    share = np.mean(np.isclose(values, 2 / 255))
    assert 0.4 < share < 0.6, share  # by clip it would be 1/4, by frame 1/25


def test_the_shipped_weights_never_saw_a_validation_person():
    """The split is in the code and in the weights' record: the shipped run trained on no clip
    of a validation person, and its validation clips are the code's."""
    meta = json.loads((generator.WEIGHTS_DIR / f"{generator.WEIGHTS_NAME}.json").read_text())
    info = meta["info"]
    assert info["validation_clips"] == list(optimize.VALIDATION_CLIPS)
    trained_people = {optimize.person_of(v) for v in info["videos"]}
    assert sorted(trained_people) == sorted(info["people"])
    assert not trained_people & optimize.VALIDATION_PEOPLE
    assert info["run_config"]["weight_settings"] == generator.weight_settings()
