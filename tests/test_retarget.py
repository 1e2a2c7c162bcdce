"""Retargeting (``didlearn.retarget``): openness targets, head-pose offsets, the pose / expression
split, on the keypoints (``Retarget.apply``) and on the output frames of the command line as a
user runs it (subprocesses, thin-plate, the bundled clip; landmarks measured with dlib on the
decoded video)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import didlearn
from didlearn import animate, data, faces, head, templates
from didlearn.errors import UsageError
from didlearn.landmarks import (
    MOUTH,
    RIGID,
    eye_aspect_ratio,
    mouth_aspect_ratio,
)
from didlearn.retarget import MIN_MOUTH_GAP, Retarget, set_mouth_openness, split

ROOT = Path(didlearn.__file__).resolve().parents[1]
FAST = ["--method", "thin_plate", "-q"]
#: frames of the constructed driving video (a head turn while the mouth opens)
DRIVER_FRAMES = 6


@pytest.fixture(scope="module")
def ks() -> np.ndarray:
    return templates.canonical_face()


# --------------------------------------------------------------------------------------------
# Retarget.apply on keypoints
# --------------------------------------------------------------------------------------------


def test_eyes_zero_closes_the_eyes_and_one_keeps_the_photos_opening(ks):
    driver = head.rotate_head(templates.smile(ks[None], np.ones(1))[0], 5, 15, 5)[0]
    assert eye_aspect_ratio(Retarget(eyes=0).apply(ks, driver)).max() < 0.03
    half = eye_aspect_ratio(Retarget(eyes=0.5).apply(ks, driver)) / eye_aspect_ratio(ks)
    np.testing.assert_allclose(half, 0.5, atol=0.02)
    # the driver's blink does not close the eyes when the target says open
    shut = templates.close_eyes(ks[None], np.ones(1))[0]
    opened = eye_aspect_ratio(Retarget(eyes=1).apply(ks, shut))
    np.testing.assert_allclose(opened, eye_aspect_ratio(ks), rtol=0.03)


def test_mouth_target_is_the_mouth_aspect_ratio(ks):
    for target in (0.0, 0.3, 0.6):
        got = mouth_aspect_ratio(Retarget(mouth=target).apply(ks, ks))
        assert got == pytest.approx(max(target, MIN_MOUTH_GAP), abs=0.005)


def test_region_expression_removes_a_pure_rigid_rotation(ks):
    turned = head.rotate_head(ks, 8.0, -15.0, 6.0)[0]
    assert np.abs(turned - ks).max() > 10
    np.testing.assert_allclose(Retarget(region="expression").apply(ks, turned), ks, atol=0.01)


def test_region_pose_of_a_pure_expression_change_is_the_photo(ks):
    smiling = templates.smile(ks[None], np.ones(1))[0]
    assert np.abs(smiling - ks).max() > 3
    np.testing.assert_allclose(Retarget(region="pose").apply(ks, smiling), ks, atol=0.01)


def test_the_split_separates_a_turned_smile_and_recomposes_it(ks):
    smiling = templates.smile(ks[None], np.ones(1))[0]
    both = head.rotate_head(smiling, 8.0, 15.0, 5.0)[0]
    pose, expression = split(ks, both)
    np.testing.assert_allclose(pose.angles(), (8.0, 15.0, 5.0), atol=0.01)
    np.testing.assert_allclose(head.place(ks, expression, pose), both, atol=1e-3)
    # the turned smile's expression is the smile (the 3-D head's depth of the moved lips
    # differs from the photo's by less than a pixel)
    assert np.abs(expression - smiling).max() < 1.0
    np.testing.assert_allclose(
        Retarget(region="pose").apply(ks, both), head.rotate_head(ks, 8.0, 15.0, 5.0)[0], atol=0.01
    )
    lips = Retarget(region="lips").apply(ks, both)
    assert np.abs(lips[MOUTH] - smiling[MOUTH]).max() < 1.0
    assert np.abs(lips[list(RIGID)] - ks[list(RIGID)]).max() < 1e-3


def test_yaw_offset_turns_the_face_to_the_images_right(ks):
    nose = lambda p: p[30, 0] - (p[0, 0] + p[16, 0]) / 2  # noqa: E731
    assert nose(Retarget(yaw=15).apply(ks, ks)) > nose(ks) + 10
    assert nose(Retarget(yaw=-15).apply(ks, ks)) < nose(ks) - 10
    pose, _ = split(ks, Retarget(yaw=10, pitch=-5, roll=3).apply(ks, ks))
    np.testing.assert_allclose(pose.angles(), (-5.0, 10.0, 3.0), atol=0.01)


def test_neutral_retarget_changes_nothing_and_bad_values_are_refused(ks):
    kp = head.rotate_head(ks, 3.0, 4.0, 5.0)[0]
    np.testing.assert_array_equal(Retarget().apply(ks, kp), kp)
    for bad, match in [
        ({"eyes": 2.0}, "eyes 2 is out of range"),
        ({"mouth": -0.1}, "mouth -0.1"),
        ({"yaw": float("nan")}, "yaw must be a number"),
        ({"region": "hair"}, "region 'hair'"),
    ]:
        with pytest.raises(UsageError, match=match):
            Retarget(**bad)


@pytest.fixture(scope="module")
def animator():
    from didlearn.animate import Animator

    return Animator(data.sample_portrait(), method="thin_plate", paste_back=False, progress=False)


def test_the_animator_retargets_given_targets(animator):
    smile = templates.smile(animator.source_kp[None], np.ones(1))
    moved = next(iter(animator.animate_targets(smile)))
    animator.retarget = Retarget(region="pose")
    try:
        kept = next(iter(animator.animate_targets(smile)))
    finally:
        animator.retarget = Retarget()
    assert np.abs(moved - animator.crop.image).max() > 0.2  # the smile moved the mouth's pixels
    assert np.abs(kept - animator.crop.image).max() < 0.02  # pose only: the photo, as it was
    # a mouth target opens the rendered mouth (dlib's landmarks on the rendered crop)
    animator.retarget = Retarget(mouth=0.5)
    try:
        opened = next(iter(animator.animate_targets(animator.source_kp[None])))
    finally:
        animator.retarget = Retarget()
    before = mouth_aspect_ratio(faces.face_landmarks(animator.crop.image))
    assert mouth_aspect_ratio(faces.face_landmarks(opened)) > before + 0.1


# --------------------------------------------------------------------------------------------
# The command line, as a user runs it
# --------------------------------------------------------------------------------------------


def run(*args) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DIDLEARN_QUICK": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "didlearn", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("retarget") / "portrait.png"
    Image.fromarray(data.to_uint8(data.sample_portrait())).save(path)
    return path


@pytest.fixture(scope="module")
def driver(animator, photo) -> Path:
    """A driving video whose head turns (yaw 0 -> 20 degrees) while the face smiles and the
    mouth opens (mouth aspect ratio -> 0.8): the bundled portrait's crop rendered along those
    landmarks."""
    ks = animator.source_kp
    yaws = np.linspace(0.0, 20.0, DRIVER_FRAMES)
    opening = np.linspace(float(mouth_aspect_ratio(ks)), 0.8, DRIVER_FRAMES)
    smiles = templates.smile(
        np.repeat(ks[None], DRIVER_FRAMES, 0), np.linspace(0, 1, DRIVER_FRAMES)
    )
    kps = [
        head.rotate_head(set_mouth_openness(k, m), 0.0, y, 0.0)[0]
        for k, y, m in zip(smiles, yaws, opening, strict=True)
    ]
    path = photo.parent / "driver.mp4"
    animate.save(animator.animate_targets(np.stack(kps)), path, fps=5.0)
    return path


def output_landmarks(photo: Path, driver: Path, *options: str) -> np.ndarray:
    """dlib's landmarks (T, 68, 2) on the decoded frames of the photo driven by ``driver``
    with ``options``, through the command line."""
    out = photo.parent / f"out{'_'.join(options).replace('-', '')}.mp4"
    res = run("animate", photo, "--driving", driver, *FAST, "-o", out, *options)
    assert res.returncode == 0, res.stderr
    frames = data.read_video(out).frames
    assert len(frames) == DRIVER_FRAMES
    # tracked, not detected frame by frame: on a turned head with shut eyes the detector's best
    # "face" can be the astronaut's mission patch
    return faces.track_landmarks(frames, smoothing=False).landmarks


@pytest.fixture(scope="module")
def plain(photo, driver) -> np.ndarray:
    return output_landmarks(photo, driver)


def nose_offset(lm: np.ndarray) -> np.ndarray:
    """(T,) the nose tip's x relative to the jaw ends' midpoint, pixels: > 0 faces image right."""
    return lm[:, 30, 0] - (lm[:, 0, 0] + lm[:, 16, 0]) / 2


def mouth_width(lm: np.ndarray) -> np.ndarray:
    """(T,) the mouth's width over the outer eye corners' distance (a smile widens the mouth;
    a turned head foreshortens both alike)."""
    return np.linalg.norm(lm[:, 54] - lm[:, 48], axis=-1) / np.linalg.norm(
        lm[:, 45] - lm[:, 36], axis=-1
    )


def test_region_pose_keeps_the_mouths_shape_while_the_head_turns(photo, driver, plain):
    posed = output_landmarks(photo, driver, "--region", "pose")
    still = faces.face_landmarks(data.sample_portrait())[None]
    # the head moves as much as with the whole motion ...
    assert np.ptp(nose_offset(posed)) > 0.5 * np.ptp(nose_offset(plain)) > 2
    # ... while the mouth keeps the photo's opening and width, which the whole motion changes
    mar_posed = np.abs(mouth_aspect_ratio(posed) - mouth_aspect_ratio(still))
    mar_plain = np.abs(mouth_aspect_ratio(plain) - mouth_aspect_ratio(still))
    assert np.median(mar_posed) < 0.03 and mar_posed.max() < 0.5 * mar_plain.max()
    assert mar_plain.max() > 0.1
    width_posed = np.abs(mouth_width(posed) / mouth_width(still) - 1)
    width_plain = np.abs(mouth_width(plain) / mouth_width(still) - 1)
    # (medians: dlib's mouth corners wobble by a few pixels on the most turned frame)
    assert np.median(width_posed) < 0.5 * np.median(width_plain)


@pytest.fixture(scope="module")
def turned_shut(photo, driver) -> np.ndarray:
    """The output's landmarks with ``--yaw 15 --eyes 0`` (one run serves two tests)."""
    return output_landmarks(photo, driver, "--yaw", "15", "--eyes", "0")


def test_yaw_turns_the_head_to_the_images_right(turned_shut, plain):
    # dlib's jaw points wobble by a few pixels on a frame: the median frame, and the mean
    shift = nose_offset(turned_shut) - nose_offset(plain)
    assert np.median(shift) > 8 and shift.mean() > 5


def test_eyes_zero_closes_the_eyes_on_the_output(turned_shut, plain):
    """dlib reads a warped shut eye as a slit (an aspect ratio of about 0.15-0.25, against
    about 0.3 open), and a smile's squint as much the same: most frames' eyes are well below the
    plain run's. Before the eyelids followed their landmarks (``motion.follow_eyelids``) the
    ratio was about 1 on every frame."""
    ratio = eye_aspect_ratio(turned_shut).mean(1) / eye_aspect_ratio(plain).mean(1)
    assert np.median(ratio) < 0.75 and (ratio < 0.8).sum() >= 4, ratio


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--eyes", "2", "--eyes 2 is out of range: give a value from 0 to 1.5"),
        ("--mouth", "nan", "--mouth must be a number from 0 to 0.8"),
        ("--yaw", "-90", "--yaw -90 is out of range: give a value from -45 to 45"),
    ],
)
def test_bad_values_are_one_line_before_any_work(photo, tmp_path, option, value, expected):
    res = run("animate", photo, "--template", "nod", "-o", tmp_path / "o.mp4", option, value)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {expected}")
    assert list(tmp_path.iterdir()) == []
