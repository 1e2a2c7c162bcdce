"""Motion: relative/absolute transfer, thin-plate-spline flow, heatmaps."""

import numpy as np
import pytest
import tensorflow as tf

from didlearn import motion
from didlearn.flow import warp


@pytest.fixture(scope="module")
def face_kp():
    """68 distinct integer keypoints, about 8 px apart (like landmarks), inside a 128x128 frame."""
    rng = np.random.default_rng(0)
    gy, gx = np.mgrid[30:100:8, 30:102:8]
    grid = np.stack([gx.ravel(), gy.ravel()], 1)[:68]
    return (grid + rng.integers(-1, 2, grid.shape)).astype(np.float32)


def reference_tps(ks, kp, height, width):
    """Float64 NumPy thin-plate spline (the textbook formula, pixels, anchors included)."""
    anchors = motion.border_anchors(height, width).astype(np.float64)
    c = np.concatenate([kp, anchors]).astype(np.float64)
    v = np.concatenate([ks, anchors]).astype(np.float64)
    n = len(c)

    def u(r2):
        return r2 * np.log(np.where(r2 > 0, r2, 1.0))

    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = u(((c[:, None] - c[None]) ** 2).sum(-1))
    system[:n, n] = 1.0
    system[:n, n + 1 :] = c
    system[n:, :n] = system[:n, n:].T
    sol = np.linalg.solve(system, np.concatenate([v, np.zeros((3, 2))]))
    ys, xs = np.mgrid[0:height, 0:width]
    p = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float64)
    f = u(((p[:, None] - c[None]) ** 2).sum(-1)) @ sol[:n] + sol[n] + p @ sol[n + 1 :]
    return (f - p).reshape(height, width, 2)


def test_tps_matches_a_float64_reference(face_kp):
    rng = np.random.default_rng(5)
    kp = face_kp + rng.normal(0, 2, face_kp.shape).astype(np.float32)
    got = motion.tps_flow(face_kp, kp, 72, 96, regularization=0.0).numpy()[0]
    np.testing.assert_allclose(got, reference_tps(face_kp, kp, 72, 96), atol=1e-2)


def test_tps_passes_exactly_through_its_control_points(face_kp):
    rng = np.random.default_rng(1)
    kp = face_kp + rng.integers(-4, 5, face_kp.shape).astype(np.float32)
    ks = kp + rng.integers(-4, 5, kp.shape).astype(np.float32)
    # 129: the 8 anchors per side are pixels
    flow = motion.tps_flow(ks, kp, 129, 129, regularization=0.0).numpy()
    assert flow.shape == (1, 129, 129, 2) and flow.dtype == np.float32
    at = flow[0, kp[:, 1].astype(int), kp[:, 0].astype(int)]
    np.testing.assert_allclose(at, ks - kp, atol=0.01)
    anchors = motion.border_anchors(129, 129)
    assert np.array_equal(anchors, np.round(anchors)) and len(anchors) == 32
    anchors = anchors.astype(int)
    np.testing.assert_allclose(flow[0, anchors[:, 1], anchors[:, 0]], 0.0, atol=0.01)


def test_tps_zero_motion_gives_zero_flow(face_kp):
    for anchors in (True, False):
        flow = motion.tps_flow(face_kp, face_kp, 96, 128, anchors=anchors).numpy()
        assert flow.shape == (1, 96, 128, 2)
        assert np.abs(flow).max() < 1e-3


def test_tps_without_anchors_reproduces_an_affine_motion(face_kp):
    a = np.array([[1.05, 0.1], [-0.08, 0.95]], np.float32)
    kp = face_kp @ a.T + np.array([3.0, -2.0], np.float32)
    flow = motion.tps_flow(face_kp, kp, 128, 128, anchors=False).numpy()[0]
    ys, xs = np.mgrid[0:128, 0:128].astype(np.float32)
    p = np.stack([xs, ys], -1)
    expected = (p - np.array([3.0, -2.0])) @ np.linalg.inv(a).T - p  # f = inverse affine
    np.testing.assert_allclose(flow, expected, atol=0.01)


def test_tps_warp_moves_a_dot_from_ks_to_kp():
    ks = np.array([[40.0, 50.0], [80.0, 70.0], [60.0, 90.0]], np.float32)
    kp = ks + np.array([[6.0, -4.0], [-5.0, 3.0], [0.0, 5.0]], np.float32)
    ys, xs = np.mgrid[0:128, 0:128]
    image = np.exp(-((xs - ks[0, 0]) ** 2 + (ys - ks[0, 1]) ** 2) / 8.0)[..., None].astype(
        np.float32
    )
    out = warp(image[None], motion.tps_flow(ks, kp, 128, 128)).numpy()[0, ..., 0]
    y, x = np.unravel_index(np.argmax(out), out.shape)
    assert (x, y) == (46, 46)


def test_tps_is_batched_and_differentiable(face_kp):
    rng = np.random.default_rng(2)
    ks = np.stack([face_kp, face_kp + 1.0])
    kp = ks + rng.normal(0, 2, ks.shape).astype(np.float32)
    both = motion.tps_flow(ks, kp, 64, 64).numpy()
    one = motion.tps_flow(ks[1], kp[1], 64, 64).numpy()
    np.testing.assert_allclose(both[1], one[0], atol=1e-3)
    var = tf.Variable(kp)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(motion.tps_flow(ks, var, 64, 64) ** 2)
    grad = tape.gradient(loss, var).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    fn = tf.function(lambda a, b: motion.tps_flow(a, b, 64, 64))
    np.testing.assert_allclose(fn(ks, kp).numpy(), both, atol=1e-2)


def test_tps_coarse_step_approximates_the_full_spline(face_kp):
    kp = face_kp + np.array([2.0, -1.0], np.float32)
    kp[:10] += 3.0
    full = motion.tps_flow(face_kp, kp, 128, 128).numpy()
    coarse = motion.tps_flow(face_kp, kp, 128, 128, step=4).numpy()
    assert coarse.shape == full.shape
    err = np.linalg.norm(coarse - full, axis=-1)
    assert err.mean() < 0.1
    np.testing.assert_allclose(coarse[0, ::127, ::127], full[0, ::127, ::127], atol=1e-3)


def test_tps_survives_coinciding_keypoints(face_kp):
    kp = face_kp.copy()
    kp[1] = kp[0]  # e.g. a closed mouth: upper and lower inner lip on the same pixel
    flow = motion.tps_flow(face_kp, kp, 64, 64, regularization=1e-6).numpy()
    assert np.isfinite(flow).all()


def test_tps_is_the_smoothing_spline_by_default(face_kp):
    rng = np.random.default_rng(7)
    kp = face_kp + rng.normal(0, 2, face_kp.shape).astype(np.float32)
    default = motion.tps_flow(face_kp, kp, 128, 128).numpy()
    smooth = motion.tps_flow(face_kp, kp, 128, 128, regularization=motion.TPS_SMOOTHING).numpy()
    exact = motion.tps_flow(face_kp, kp, 128, 128, regularization=0.0).numpy()
    np.testing.assert_array_equal(default, smooth)
    assert np.abs(default - exact).max() > 0.1  # it does smooth ...
    at = default[0, np.round(kp[:, 1]).astype(int), np.round(kp[:, 0]).astype(int)]
    assert np.abs(at - (face_kp - kp)).mean() < 1.5  # ... and still moves the keypoints
    closed = kp.copy()
    closed[1] = closed[0]  # a blink: two different photo points on one pixel
    assert np.isfinite(motion.tps_flow(face_kp, closed, 64, 64).numpy()).all()


def test_zero_driving_motion_transfers_to_zero_motion(face_kp):
    rng = np.random.default_rng(3)
    kd0 = rng.uniform(0, 50, (68, 2)).astype(np.float32)
    out = motion.transfer_relative(face_kp, np.stack([kd0, kd0]), kd0, rotation=True)
    np.testing.assert_allclose(out, np.stack([face_kp, face_kp]), atol=1e-4)


def test_relative_transfer_normalises_scale(face_kp):
    kd0 = 0.5 * face_kp + 7.0  # the driving face is half as big
    kd = kd0.copy()
    kd[5] += np.array([2.0, -1.0])
    out = motion.transfer_relative(face_kp, kd, kd0)
    expected = face_kp.copy()
    expected[5] += np.array([4.0, -2.0])  # the displacement doubles, nothing else moves
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_relative_transfer_can_normalise_rotation(face_kp):
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # driving face filmed turned by 90 degrees
    kd0 = (face_kp @ rot.T).astype(np.float32)
    kd = kd0.copy()
    kd[:, 1] += 3.0  # moves "down" in the driving frame = towards -x... in the face's frame
    out = motion.transfer_relative(face_kp, kd, kd0, rotation=True)
    np.testing.assert_allclose(out - face_kp, np.tile([3.0, 0.0], (68, 1)), atol=1e-3)
    plain = motion.transfer_relative(face_kp, kd, kd0)
    np.testing.assert_allclose(plain - face_kp, np.tile([0.0, 3.0], (68, 1)), atol=1e-3)


def test_absolute_transfer_takes_the_driving_shape(face_kp):
    rng = np.random.default_rng(4)
    other = (face_kp + rng.normal(0, 5, face_kp.shape)).astype(np.float32)  # another identity
    kd0 = 0.5 * other + 10.0
    aligned = motion.transfer_absolute(face_kp, kd0)
    s, r, t = motion.umeyama(other, face_kp)
    np.testing.assert_allclose(aligned, s * other @ r.T + t, atol=1e-3)  # the other's shape
    rel = motion.transfer_relative(face_kp, kd0, kd0)
    np.testing.assert_allclose(rel, face_kp, atol=1e-4)  # relative keeps the photo's shape
    seq = motion.transfer_absolute(face_kp, np.stack([kd0, kd0 + 1.0]))
    np.testing.assert_allclose(seq[1] - seq[0], np.tile(2 * s * r @ np.ones(2), (68, 1)), atol=1e-3)


def test_umeyama_recovers_a_similarity(face_kp):
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = 1.7 * face_kp @ rot.T + np.array([5.0, -3.0])
    s, r, t = motion.umeyama(face_kp, dst)
    assert s == pytest.approx(1.7, rel=1e-6)
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t, [5.0, -3.0], atol=1e-4)


def test_hull_area():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [5, 5]], np.float32)
    assert motion.hull_area(square) == pytest.approx(100.0)


def test_keypoint_heatmaps_peak_at_the_keypoints():
    kp = np.array([[[10.0, 20.0], [30.5, 5.0]]], np.float32)
    maps = motion.keypoint_heatmaps(kp, 32, 40, sigma=2.0).numpy()
    assert maps.shape == (1, 32, 40, 2)
    assert maps[0, 20, 10, 0] == pytest.approx(1.0)
    y, x = np.unravel_index(np.argmax(maps[0, ..., 1]), (32, 40))
    assert (y, x) in {(5, 30), (5, 31)}
    assert maps[0, 20, 12, 0] == pytest.approx(np.exp(-4 / 8), rel=1e-5)


# --------------------------------------------------------------------------------------------
# Chapter 3 widget callbacks (didlearn.widgets.motion), without a browser
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def puppet():
    """A synthetic face crop and its 68 landmarks (the portrait's, mapped into a 128 crop)."""
    from didlearn import faces
    from didlearn.data import sample_portrait

    photo = sample_portrait()
    crop = faces.crop_face(photo, faces.face_landmarks(photo), size=128)
    return crop.image, crop.to_crop(faces.face_landmarks(photo))


def test_puppet_defaults_do_nothing(puppet):
    from didlearn.widgets import motion as wm

    image, kp = puppet
    np.testing.assert_array_equal(wm.move_landmarks(kp), kp)
    res = wm.puppet_frame(image, kp)
    assert np.abs(res["flow"]).max() < 1e-3
    np.testing.assert_allclose(res["warped"], image, atol=1e-3)


@pytest.mark.parametrize(
    ("slider", "value", "group", "axis", "sign"),
    [
        ("eyebrows", 8.0, slice(17, 27), 1, -1),  # up
        ("jaw", 10.0, slice(56, 59), 1, +1),  # lower lip down
        ("turn", 20.0, slice(27, 36), 0, +1),  # nose to the image's right
        ("nod", 15.0, slice(27, 36), 1, +1),  # nose down
    ],
)
def test_puppet_sliders_move_their_group(puppet, slider, value, group, axis, sign):
    from didlearn.widgets import motion as wm

    _, kp = puppet
    moved = wm.move_landmarks(kp, **{slider: value})
    shift = (moved - kp)[group, axis].mean()
    assert sign * shift > 1.0
    if slider in ("eyebrows", "jaw"):
        others = np.ones(68, bool)
        others[group] = False
        others[0:17] = slider != "jaw"  # the jaw slider moves the jaw line too
        others[48:68] &= slider != "jaw"
        assert np.abs(moved[others] - kp[others]).max() == 0


def test_puppet_eyelids_close_and_mouth_corners_smile(puppet):
    from didlearn.widgets import motion as wm

    _, kp = puppet
    closed = wm.move_landmarks(kp, eyelids=1.0)
    gap = lambda p: np.abs(p[41, 1] - p[37, 1])  # noqa: E731
    assert gap(closed) < 0.3 * gap(kp)
    smile = wm.move_landmarks(kp, mouth_corners=6.0)
    assert smile[48, 1] < kp[48, 1] and smile[54, 1] < kp[54, 1]
    assert smile[54, 0] - smile[48, 0] > kp[54, 0] - kp[48, 0]


def test_puppet_frame_warps_and_renders(puppet):
    import matplotlib

    matplotlib.use("Agg")
    from didlearn.widgets import motion as wm

    image, kp = puppet
    res = wm.puppet_frame(image, kp, jaw=10.0)
    assert res["flow"].shape == (128, 128, 2) and res["warped"].shape == image.shape
    i = 57  # lower lip: at its new position the flow reads back where it was
    x, y = np.round(res["moved"][i]).astype(int)
    np.testing.assert_allclose(res["flow"][y, x], kp[i] - res["moved"][i], atol=0.6)
    assert np.abs(res["warped"] - image).max() > 0.05
    assert np.abs(res["warped"][:8] - image[:8]).max() < 0.02  # the top border stays
    fig = wm.render_puppet(image, kp, turn=10.0)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="unknown slider"):
        wm.move_landmarks(kp, wink=1.0)


def test_puppet_widget_builds():
    pytest.importorskip("ipywidgets")
    from didlearn.widgets import motion as wm

    image = np.full((64, 64, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    kp = rng.uniform(16, 48, (68, 2)).astype(np.float32)
    box = wm.landmark_puppet_widget(image, kp)
    assert len(box.children) == 3


def test_warp_sequence_is_the_batched_tps_warp(face_kp):
    rng = np.random.default_rng(6)
    image = rng.uniform(0, 1, (128, 128, 3)).astype(np.float32)
    kps = face_kp + rng.normal(0, 1.5, (5, 68, 2)).astype(np.float32)
    frames = motion.warp_sequence(image, face_kp, kps, batch=2)
    assert frames.shape == (5, 128, 128, 3) and frames.dtype == np.float32
    one = warp(image[None], motion.tps_flow(face_kp, kps[3], 128, 128)).numpy()[0]
    np.testing.assert_allclose(frames[3], np.clip(one, 0, 1), atol=1e-4)
    still = motion.warp_sequence(image, face_kp, face_kp[None])
    np.testing.assert_allclose(still[0], image, atol=1e-3)


def test_area_ratio_of_rigid_zoom_and_fold():
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    shift = np.stack([np.full_like(xs, 3.0), np.full_like(ys, -2.0)], -1)
    np.testing.assert_allclose(motion.area_ratio(shift), 1.0, atol=1e-6)
    zoom = np.stack([-0.5 * (xs - 16), -0.5 * (ys - 16)], -1)  # reads half: magnifies 2x
    np.testing.assert_allclose(motion.area_ratio(zoom[None]), 0.25, atol=1e-6)
    fold = np.stack([-2.0 * (xs - 16), np.zeros_like(ys)], -1)  # x -> -x: mirrored
    assert (motion.area_ratio(fold) < 0).all()


def test_area_ratio_is_numpys_determinant_and_differentiable():
    flow = np.random.default_rng(0).normal(0, 3, (2, 9, 13, 2)).astype(np.float32)
    dudy, dudx = np.gradient(flow[..., 0], axis=(1, 2))
    dvdy, dvdx = np.gradient(flow[..., 1], axis=(1, 2))
    expected = (1 + dudx) * (1 + dvdy) - dudy * dvdx
    np.testing.assert_allclose(motion.area_ratio(flow), expected, atol=1e-5)
    np.testing.assert_allclose(motion.area_ratio(flow[1]), expected[1], atol=1e-5)
    f = tf.Variable(flow)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(motion.area_ratio_tensor(f))
    grad = tape.gradient(total, f).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_outside_face_is_the_outline_polygon_grown_by_the_margin(outline_landmarks):
    kp = outline_landmarks((40.0, 24.0), 12.0)
    tight = motion.outside_face(kp, 48, 64, margin=0).numpy()[0, ..., 0]
    assert tight.shape == (48, 64)
    assert tight[24, 40] == 0 and tight[24, 55] == 1 and tight[0, 0] == 1
    polygon = kp[0, list(motion.FACE_OUTLINE)]
    area = 0.5 * abs(np.cross(polygon, np.roll(polygon, -1, 0)).sum())  # shoelace
    assert abs((1 - tight).sum() - area) < 0.1 * area
    grown = motion.outside_face(kp, 48, 64, margin=4).numpy()[0, ..., 0]
    assert grown[24, 55] == 0 and grown[24, 57] == 1 and np.all(grown <= tight)


def closed_eyes(kp: np.ndarray) -> np.ndarray:
    """``kp`` with every upper-lid point moved 90 % of the way onto its lower-lid point."""
    from didlearn.landmarks import LIDS

    out = np.array(kp, np.float32)
    for up, low in LIDS:
        out[up] = out[up] + 0.9 * (out[low] - out[up])
    return out


@pytest.fixture(scope="module")
def portrait_kp():
    """The bundled portrait's 68 landmarks in its 256-px face crop."""
    from didlearn import data, faces

    photo = data.sample_portrait()
    landmarks = faces.face_landmarks(photo)
    return faces.crop_face(photo, landmarks, 256).to_crop(landmarks).astype(np.float32)


def test_follow_eyelids_lands_every_eye_landmark_and_touches_nothing_else(portrait_kp):
    """The smoothing spline leaves a closing eye open; the eyelid correction lands the eye
    landmarks exactly, without folding, and the flow outside the eyes' rings is the spline's."""
    from didlearn.landmarks import LEFT_EYE, RIGHT_EYE

    ks = portrait_kp
    kp = closed_eyes(ks)[None]
    spline = motion.tps_flow(ks, kp, 256, 256, regularization=motion.TPS_SMOOTHING).numpy()
    fixed = motion.follow_eyelids(spline, ks, kp)
    eyes = list(range(68))[RIGHT_EYE] + list(range(68))[LEFT_EYE]

    def landed(flow):  # where the backward flow sends the target eye landmarks (bilinear)
        from didlearn.flow import sample_points

        return kp[0, eyes] + sample_points(tf.constant(flow), kp[:, eyes]).numpy()[0]

    spline_miss = np.abs(landed(spline) - ks[eyes]).max()
    fixed_miss = np.abs(landed(fixed) - ks[eyes]).max()
    # the lid's jump (~9 px over a ~1 px gap) is sampled on the pixel grid: ~1 px is left
    assert spline_miss > 3 and fixed_miss < spline_miss / 3
    assert motion.area_ratio(fixed).min() > 0  # nothing folds
    changed = np.abs(fixed - spline).max(-1)[0] > 0
    ys, xs = np.nonzero(changed)
    eye_box = kp[0, eyes]
    width = eye_box[:, 0].max() - eye_box[:, 0].min()  # both eyes: a ring is < 1 eye wide
    assert (
        xs.min() >= eye_box[:, 0].min() - width / 3 and xs.max() <= eye_box[:, 0].max() + width / 3
    )
    assert (
        ys.min() >= eye_box[:, 1].min() - width / 3 and ys.max() <= eye_box[:, 1].max() + width / 3
    )
