"""Restore, then animate: the scratch finder, the face box (the rest of the photo untouched bit
for bit), the Animator's and the group's restore, and ``--restore`` run as a user runs it.

The fits are tiny (a few steps: what is checked is where the pixels change, not how well) except
in the command-line run, which restores a 256-px copy of the portrait in quick mode and measures
what the restoration gains. About 40-60 s on 2 cores.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import didlearn
from didlearn import data, faces, image_prior, restore
from didlearn.errors import NoFaceFoundError, UsageError
from didlearn.metrics import psnr

ROOT = Path(didlearn.__file__).resolve().parents[1]


def small_portrait(side: int = 256) -> np.ndarray:
    return cv2.resize(data.sample_portrait(), (side, side), interpolation=cv2.INTER_AREA)


def face_hull(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """(H, W) bool: inside the convex hull of the 68 landmarks (jaw, brows, eyes, nose, mouth)."""
    hull = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    return hull.astype(bool)


# --------------------------------------------------------------------------------------------
# Finding scratches
# --------------------------------------------------------------------------------------------


def test_find_scratches_finds_drawn_lines_not_the_face():
    photo = data.sample_portrait()
    landmarks = faces.face_landmarks(photo)
    x0, y0, x1, y1 = restore.face_box(photo, landmarks)
    clean = photo[y0:y1, x0:x1]
    inside = face_hull(clean.shape[:2], landmarks - [x0, y0])
    h, w = clean.shape[:2]

    # The face itself (eyes, brows, lips, teeth, nostrils) is no scratch, with or without grain.
    for sigma in (0.0, 0.08):
        grainy, _ = image_prior.damage(clean, noise_sigma=sigma, seed=1)
        found = restore.find_scratches(grainy)
        assert found.shape == (h, w) and found.dtype == bool
        assert not (found & inside).any(), f"noise {sigma}: {(found & inside).sum()} px on the face"
        assert found.mean() < 0.03

    # A bright and a dark line, 3 px wide, across the face, on a grainy copy.
    lines = np.zeros((h, w), np.uint8)
    scratched = image_prior.damage(clean, noise_sigma=0.05, seed=2)[0]
    for (ax, ay), (bx, by), value in (
        ((0.05, 0.3), (0.95, 0.5), 0.95),
        ((0.25, 0.95), (0.65, 0.05), 0.05),
    ):
        one = np.zeros((h, w), np.uint8)
        cv2.line(one, (round(ax * w), round(ay * h)), (round(bx * w), round(by * h)), 1, 3)
        scratched[one > 0] = value
        lines |= one
    drawn = lines > 0
    visible = drawn & (np.abs(scratched - clean).mean(-1) > 0.1)  # where a line stands out
    found = restore.find_scratches(scratched)
    assert (found & visible).sum() >= 0.9 * visible.sum()
    near = cv2.dilate(lines, np.ones((7, 7), np.uint8)) > 0
    assert not (found & inside & ~near).any()  # nothing else on the face
    assert found.sum() < 3 * drawn.sum()

    # A scratch across the suit that only clips the box's corner: too short inside the box to
    # be told from the photo's own lines, found by its whole length around the box.
    suit = image_prior.damage(photo, noise_sigma=0.05, seed=3)[0]
    corner = np.zeros(photo.shape[:2], np.uint8)
    cv2.line(corner, (x0 + 90, y1 + 60), (x0 - 30, y1 - 60), 1, 3)  # cuts the bottom-left corner
    suit[corner > 0] = 0.95
    clipped = (corner[y0:y1, x0:x1] > 0) & (np.abs(suit - photo).mean(-1)[y0:y1, x0:x1] > 0.1)
    assert 0 < clipped.sum() < 0.3 * drawn.sum()
    assert (restore.find_scratches(suit[y0:y1, x0:x1]) & clipped).sum() < 0.5 * clipped.sum()
    assert (restore.scratch_mask(suit, (x0, y0, x1, y1)) & clipped).sum() >= 0.9 * clipped.sum()


# --------------------------------------------------------------------------------------------
# The face box, the working size, the paste
# --------------------------------------------------------------------------------------------


def test_face_box_and_work_shape():
    photo = small_portrait()
    face = faces.find_faces(photo)[0][0]
    x0, y0, x1, y1 = restore.face_box(photo)
    fx0, fy0, fx1, fy1 = face.box
    assert restore.face_box(photo, face) == (x0, y0, x1, y1)
    assert x0 < fx0 and y0 < fy0 and x1 > fx1 and y1 > fy1  # grown on every side...
    assert 0 <= x0 and 0 <= y0 and x1 <= 256 and y1 <= 256  # ...clipped to the photo
    assert (x1 - x0) == pytest.approx((fx1 - fx0) * (1 + 2 * restore.FACE_MARGIN), abs=3)
    assert restore.work_shape(90, 60) == (90, 60)  # never scaled up
    assert restore.work_shape(1024, 512) == (restore.WORK_MAX_SIDE, restore.WORK_MAX_SIDE // 2)
    assert restore.network_shape(90, 60) == (96, 64)

    with pytest.raises(NoFaceFoundError, match="Face 5 was asked for"):
        restore.face_box(photo, 5)
    with pytest.raises(NoFaceFoundError, match="animate it without restoring"):
        restore.face_box(np.full((64, 64, 3), 0.5, np.float32))


def test_restore_face_changes_the_face_box_only():
    clean = small_portrait()
    damaged, _ = image_prior.damage(clean, noise_sigma=0.1, seed=0)
    landmarks = faces.face_landmarks(damaged)
    x0, y0, x1, y1 = restore.face_box(damaged, landmarks)
    out = restore.restore_face(damaged, "denoise", seed=0, steps=8, progress=False, face=landmarks)
    assert out.shape == damaged.shape and out.dtype == np.float32
    outside = np.ones(damaged.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], damaged[outside])  # bit for bit
    # Feathered: the box's edges inside the photo are the photo's, its middle is the fit's.
    assert y0 > 0 and np.array_equal(out[y0, x0:x1], damaged[y0, x0:x1])
    assert np.array_equal(out[y1 - 1, x0:x1], damaged[y1 - 1, x0:x1]) or y1 == 256
    middle = (slice((y0 + y1) // 2 - 10, (y0 + y1) // 2 + 10), slice(x0 + 20, x1 - 20))
    assert np.abs(out[middle] - damaged[middle]).mean() > 0.02
    assert 0.0 <= out.min() and out.max() <= 1.0

    with pytest.raises(UsageError, match="'denoise'.* or 'scratches'"):
        restore.restore_face(damaged, "sharpen", seed=0)


def test_animator_and_group_animate_the_restored_photo(monkeypatch):
    from didlearn import animate, group

    monkeypatch.setattr(restore, "QUICK_STEPS", 5)  # where the pixels change, not how well
    two = data.sample_group_photo()
    damaged, _ = image_prior.damage(two, noise_sigma=0.05, seed=3)
    crowd = group.GroupAnimator(damaged, method="thin_plate", progress=False, restore="denoise")
    changed = np.abs(crowd.photo - damaged).max(-1) > 0
    for a in crowd.animators:
        x0, y0, x1, y1 = restore.face_box(damaged, a.landmarks)
        assert changed[(y0 + y1) // 2, (x0 + x1) // 2]  # each face was restored
        assert a.photo is crowd.photo  # and each face's Animator works on the restored photo
        changed[y0:y1, x0:x1] = False
    assert not changed.any()  # nothing outside the faces' boxes
    frames = list(crowd.animate_template("nod", duration=0.08, fps=25))
    assert np.array_equal(frames[0], crowd.photo)  # frame 0 is the restored photo

    one = animate.Animator(damaged, method="thin_plate", progress=False, restore="scratches")
    assert one.photo.shape == damaged.shape and not np.array_equal(one.photo, damaged)
    with pytest.raises(UsageError, match="restore 'colourise' is not a restoration"):
        animate.Animator(damaged, method="thin_plate", restore="colourise")


# --------------------------------------------------------------------------------------------
# The command line, as a user runs it
# --------------------------------------------------------------------------------------------


def run(*args) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DIDLEARN_QUICK": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "didlearn", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def save_png(image: np.ndarray, path: Path) -> np.ndarray:
    """Write ``image`` as an 8-bit PNG; returns what a reader gets back (float32 in [0, 1])."""
    pixels = data.to_uint8(image)
    Image.fromarray(pixels).save(path)
    return pixels.astype(np.float32) / 255.0


def test_cli_restore_denoise_raises_the_psnr_of_a_damaged_portrait(tmp_path):
    clean = save_png(small_portrait(), tmp_path / "clean.png")
    damaged = save_png(image_prior.damage(clean, noise_sigma=0.1, seed=0)[0], tmp_path / "old.png")
    out = tmp_path / "out.mp4"
    res = run(
        "animate", tmp_path / "old.png", "--restore", "denoise", "--method", "thin_plate",
        "--template", "nod", "--duration", "0.2", "--fps", "10", "-o", out,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "restore (denoise): the face region" in res.stderr and "at most" in res.stderr
    frame0 = data.read_video(out, max_frames=1).frames[0]
    assert frame0.shape == clean.shape

    # the face (the landmarks' box): the restored frame is closer to the clean portrait
    lm = faces.face_landmarks(clean)
    (x0, y0), (x1, y1) = np.floor(lm.min(0)).astype(int), np.ceil(lm.max(0)).astype(int)
    face = (slice(y0, y1), slice(x0, x1))
    before, after = psnr(damaged[face], clean[face]), psnr(frame0[face], clean[face])
    assert after > before + 2.0, (before, after)

    # a bad value: one line, status 1, nothing written
    res = run("animate", tmp_path / "old.png", "--restore", "sharpen", "--template", "nod",
              "-o", tmp_path / "bad.mp4")  # fmt: skip
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith("error: --restore 'sharpen'") and "denoise" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.png", "old.png", "out.mp4"]
