"""Motion templates: shapes, neutral first frame, the motion each one claims."""

import numpy as np
import pytest

from didlearn import templates
from didlearn.landmarks import JAW, LEFT_EYE, MIRROR, MOUTH, RIGHT_EYE


@pytest.fixture(scope="module")
def base():
    return templates.canonical_face()


def test_canonical_face_is_symmetric_and_inside_the_crop(base):
    assert base.shape == (68, 2)
    assert (base >= 0).all() and (base < 256).all()
    mirrored = base[MIRROR] * [-1, 1] + [2 * base[:, 0].mean(), 0]
    np.testing.assert_allclose(mirrored, base, atol=1e-3)


def test_every_template_has_shape_duration_and_a_neutral_first_frame(base):
    names = templates.list_templates()
    assert {"nod", "turn", "tilt", "blink", "smile", "idle"} <= set(names)
    for name in names:
        traj = templates.make_template(name, duration=2.0, fps=15, base=base)
        assert traj.shape == (30, 68, 2) and traj.dtype == np.float32
        np.testing.assert_allclose(traj[0], base, atol=1e-4)
        assert np.abs(traj - base).max() > 1.0, name  # it moves


def test_intensity_scales_motion_and_zero_means_still(base):
    small = templates.make_template("turn", 2.0, 20, intensity=0.5, base=base)
    big = templates.make_template("turn", 2.0, 20, intensity=1.0, base=base)
    none = templates.make_template("turn", 2.0, 20, intensity=0.0, base=base)
    np.testing.assert_allclose(none, np.broadcast_to(base, none.shape), atol=1e-4)
    assert np.abs(small - base).max() < 0.6 * np.abs(big - base).max()


def test_head_rotations_move_the_expected_axis(base):
    nod = templates.make_template("nod", 2.0, 25, base=base)
    turn = templates.make_template("turn", 2.0, 25, base=base)
    tilt = templates.make_template("tilt", 2.0, 25, base=base)
    nose = 30
    # nod: the nose tip moves mostly vertically; turn: mostly horizontally
    dn = np.abs(nod[:, nose] - base[nose]).max(axis=0)
    dt = np.abs(turn[:, nose] - base[nose]).max(axis=0)
    assert dn[1] > 2 * dn[0] and dt[0] > 2 * dt[1]
    # tilt is a rotation in the image plane: distances between landmarks are kept
    d0 = np.linalg.norm(base[JAW][0] - base[JAW][-1])
    d = np.linalg.norm(tilt[:, 0] - tilt[:, 16], axis=-1)
    np.testing.assert_allclose(d, d0, rtol=1e-3)
    # a turn foreshortens the face: the jaw width shrinks
    assert np.linalg.norm(turn[:, 0] - turn[:, 16], axis=-1).min() < 0.97 * d0


def eye_opening(lm):
    upper = lm[..., [37, 38, 43, 44], 1]
    lower = lm[..., [41, 40, 47, 46], 1]
    return (lower - upper).mean(axis=-1)


def test_blink_closes_the_eyes_and_opens_them_again(base):
    traj = templates.make_template("blink", 2.0, 30, base=base)
    opening = eye_opening(traj)
    assert opening.min() < 0.25 * opening[0]
    assert opening[-1] == pytest.approx(opening[0], abs=1e-3)
    # only the eyes move
    others = np.ones(68, bool)
    others[RIGHT_EYE] = others[LEFT_EYE] = False
    still = np.broadcast_to(base[others], traj[:, others].shape)
    np.testing.assert_allclose(traj[:, others], still)


def test_smile_widens_the_mouth_and_raises_its_corners(base):
    traj = templates.make_template("smile", 2.0, 20, base=base)
    width = np.linalg.norm(traj[:, 54] - traj[:, 48], axis=-1)
    assert width.max() > 1.15 * width[0]
    assert traj[:, [48, 54], 1].min() < base[[48, 54], 1].min() - 1.0
    moved = np.abs(traj - base).max(axis=(0, 2)) > 0
    assert not moved[: MOUTH.start].any()


def test_idle_blinks_and_is_reproducible(base):
    a = templates.make_template("idle", 6.0, 25, base=base, seed=3)
    b = templates.make_template("idle", 6.0, 25, base=base, seed=3)
    c = templates.make_template("idle", 6.0, 25, base=base, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.5
    opening = eye_opening(a)
    assert opening.min() < 0.4 * opening.max()  # at least one blink in 6 s
    assert np.abs(a[:, 30] - base[30]).max() < 25  # small motion


def test_bad_arguments_are_explained(base):
    with pytest.raises(ValueError, match="unknown template 'wave'.*nod"):
        templates.make_template("wave")
    with pytest.raises(ValueError, match="positive"):
        templates.make_template("nod", duration=0, base=base)
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        templates.make_template("nod", base=base[:5])


def test_the_head_model_is_one_for_templates_and_puppet(base):
    from didlearn import head
    from didlearn.widgets import motion as wm

    assert templates.rotate_head is head.rotate_head
    rot = head.rotation(12.0, -20.0, 5.0)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    # the nose sticks out of the face on both parameter sets
    z = head.head_points_3d(base)[:, 2]
    assert z[30] > z[[36, 45, 48, 54]].max()
    size = float(max(base.max(0) - base.min(0)))
    np.testing.assert_array_equal(head.rotate_sphere(base, size, 0.0, 0.0), base)
    # the puppet's turn is the sphere model's: its pivot is the face front, so the nose stays put
    turned = wm.move_landmarks(base, turn=15.0)
    np.testing.assert_allclose(turned, head.rotate_sphere(base, size, 15.0, 0.0), atol=1e-4)
    assert np.abs(turned[30] - base[30]).max() < 0.1 * size
