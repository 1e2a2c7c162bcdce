"""Every face of a group photo (``--face all``), run as a user runs it: ``python -m didlearn``
on a two-face photo built from the bundled portrait (:func:`didlearn.data.sample_group_photo`).

The outputs are GIF previews: the photo is small enough to keep its size, and the GIF's fixed
palette and dithering keep a pixel that does not move bit for bit the same from frame to frame,
so "the background is still" is an exact check. The seam check runs in-process on the real
faces' motion, composited onto a coordinate image where the output minus the photo IS the
blended motion field.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import didlearn
from didlearn import data, faces
from didlearn.composite import GroupCompositor, NativeCompositor, crop_box

ROOT = Path(didlearn.__file__).resolve().parents[1]
FAST = ["--method", "thin_plate", "-q"]
FRAMES = ["--max-frames", "8"]


def run(*args, timeout=180):
    """``python -m didlearn ARGS`` in quick mode, the package under test first on the path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DIDLEARN_QUICK": "1", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "didlearn", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def the_error(res: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a refused command (exit 1, no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """The two-face photo on disk, its faces (detection order = ``--face`` numbers) with their
    crop boxes, and two drivers: the bundled clip, and a still one (its first frame, held)."""
    d = tmp_path_factory.mktemp("group")
    photo = data.sample_group_photo()
    Image.fromarray(data.to_uint8(photo)).save(d / "two.png")
    photo = data.load_image(d / "two.png")  # what the command line reads
    found = faces.detect_faces(photo)
    boxes = [
        crop_box(faces.crop_face(photo, faces.face_landmarks(photo, f), 64), photo.shape)
        for f in found
    ]
    moving = data.sample_driving_video()
    first = next(data.iter_video(moving))
    still = d / "still.mp4"
    data.write_media([first] * 8, data.video_info(moving).fps, mp4=still)
    return {
        "dir": d,
        "photo": photo,
        "faces": found,
        "boxes": boxes,
        "moving": moving,
        "still": still,
    }


def gif_frames(path: Path) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a GIF."""
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
    return np.stack(out)


def face_change(frames: np.ndarray, face: faces.Face) -> float:
    """Mean absolute change (of 255) over time inside a face's box, against the first frame."""
    x0, y0, x1, y1 = (int(v) for v in face.box)
    patch = frames[:, y0:y1, x0:x1].astype(np.float32)
    return float(np.abs(patch - patch[0]).mean())


def outside_crops(shape, boxes) -> np.ndarray:
    """(H, W) bool: the pixels no face's crop covers."""
    keep = np.ones(shape[:2], bool)
    for y0, y1, x0, x1 in boxes:
        keep[y0:y1, x0:x1] = False
    return keep


def test_two_face_photo_has_two_faces_apart(group):
    # the fixture the other tests rely on: two faces, a strip between them no crop covers
    assert len(group["faces"]) == 2
    (a, b) = sorted(group["boxes"], key=lambda box: box[2])
    assert a[3] < b[2], "the crops of the two faces must not overlap on the default photo"


def test_face_all_moves_both_faces_and_leaves_the_background_still(group):
    out = group["dir"] / "all.gif"
    res = run(
        "animate",
        group["dir"] / "two.png",
        "--face",
        "all",
        "--driving",
        group["moving"],
        *FRAMES,
        *FAST,
        "-o",
        out,
    )
    assert res.returncode == 0, res.stderr
    frames = gif_frames(out)
    assert frames.shape[1:3] == group["photo"].shape[:2] and len(frames) >= 3
    moved = [face_change(frames, f) for f in group["faces"]]
    print("mean change in each face box (of 255):", moved)
    assert min(moved) > 5.0, moved  # both faces move (mean over their boxes)
    still = outside_crops(frames.shape[1:], group["boxes"])
    assert still[:, 150:180].all()  # the strip between the heads is outside both crops
    assert (frames[:, still] == frames[0, still]).all(), "the background moved"


def test_drivers_map_to_faces_in_order(group):
    # face 0 follows the still driver, face 1 the moving one: only face 1 moves
    out = group["dir"] / "order.gif"
    res = run(
        "animate",
        group["dir"] / "two.png",
        "--face",
        "all",
        "--driving",
        group["still"],
        "--driving",
        group["moving"],
        *FRAMES,
        *FAST,
        "-o",
        out,
    )
    assert res.returncode == 0, res.stderr
    frames = gif_frames(out)
    still_face, moving_face = (face_change(frames, f) for f in group["faces"])
    # the still driver is not quite still: its H.264 frames differ a little from the first,
    # and the tracker settles over a few frames (2.6 of 255 against 11.8 when measured)
    assert moving_face > 3 * still_face, (still_face, moving_face)


def test_face_out_of_range_lists_the_faces(group):
    res = run(
        "animate",
        group["dir"] / "two.png",
        "--face",
        "5",
        "--template",
        "nod",
        *FAST,
        "-o",
        group["dir"] / "five.mp4",
    )
    line = the_error(res)
    assert "only 2 face(s)" in line and "between 0 and 1" in line, line
    for i, f in enumerate(group["faces"]):  # index, box and size of each
        x0, y0, x1, y1 = f.box
        assert f"{i}: box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}), {f.size:.0f} px" in line
    assert not (group["dir"] / "five.mp4").exists()


@pytest.mark.parametrize(
    "face, count, says",
    [("all", 3, "3 driving videos for the 2 faces found"), ("0", 2, "--driving was given 2")],
)
def test_wrong_number_of_drivers_is_one_line(group, face, count, says):
    out = group["dir"] / f"wrong{count}.mp4"
    drivers = [a for _ in range(count) for a in ("--driving", group["moving"])]
    res = run("animate", group["dir"] / "two.png", "--face", face, *drivers, *FAST, "-o", out)
    assert says in the_error(res)
    assert not out.exists()


def test_face_option_is_a_number_or_all(group):
    res = run(
        "animate",
        group["dir"] / "two.png",
        "--face",
        "every",
        "--template",
        "nod",
        "-o",
        group["dir"] / "x.mp4",
    )
    assert res.returncode == 2 and "or 'all'" in res.stderr, res.stderr


def tilted(ks: np.ndarray, degrees=(0.0, 4.0, 8.0, 12.0)) -> np.ndarray:
    """(T, 68, 2) the landmarks ``ks`` rolled about their centre and raised (head tilts; crop
    pixels), without the templates (and TensorFlow)."""
    centre = ks.mean(axis=0)
    out = []
    for a in np.radians(degrees):
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out.append((ks - centre) @ rot.T + centre - [0.0, 40 * a])
    return np.stack(out).astype(np.float32)


def test_no_seam_where_crops_overlap():
    """Two faces close together: their crops overlap. On a coordinate image (x / W, y / H) the
    output minus the photo is the motion field itself, so a seam is a jump across a crop's edge.
    The blended field has none (no step at the edges larger than the field's steps elsewhere);
    pasting one face's frame over the other's has one (the check can fail)."""
    from didlearn.group import GroupAnimator

    photo = data.sample_group_photo(gap=0, head_width=150)
    animator = GroupAnimator(photo, method="thin_plate", progress=False)
    crops = [a.crop for a in animator.animators]
    h, w = photo.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = np.stack([xs / w, ys / h, np.zeros_like(xs)], axis=-1)
    blend = GroupCompositor(coords, crops)
    left, right = sorted(range(2), key=lambda i: blend.boxes[i][2])
    bl, br = blend.boxes[left], blend.boxes[right]
    assert br[2] < bl[3], "the faces' crops should overlap"
    rows = slice(max(bl[0], br[0]), min(bl[1], br[1]))
    edges = [br[2] - 1, bl[3] - 1]  # steps between columns x and x + 1 across the crop edges
    natives = [NativeCompositor(coords, c) for c in crops]
    motions = [a.motion(tilted(a.source_kp)) for a in animator.animators]

    def steps(out: np.ndarray) -> np.ndarray:
        motion = (out - coords)[..., :2] * [w, h]  # photo pixels
        return np.abs(np.diff(motion, axis=1)).max(axis=-1)[rows]  # (rows, W - 1)

    seams, cuts, smooth = [], [], []
    for t in range(len(motions[0])):
        each = [m.at(t) for m in motions]
        s = steps(blend(each))
        seams.append(s[:, edges].max())
        smooth.append(np.delete(s, edges, axis=1).max())
        pasted = natives[left](*each[left])
        y0, y1, x0, x1 = br
        pasted[y0:y1, x0:x1] = natives[right](*each[right])[y0:y1, x0:x1]
        cuts.append(steps(pasted)[:, edges].max())
    assert max(smooth) > 0.1  # the faces move (photo pixels per pixel)
    assert all(a <= b for a, b in zip(seams, smooth, strict=True)), (seams, smooth)
    assert max(cuts) > 3 * max(smooth), (cuts, smooth)  # the paste's seam: the check can fail


def test_one_crop_blends_as_the_native_compositor():
    photo = data.sample_portrait()
    crop = faces.crop_face(photo, faces.face_landmarks(photo), 96)
    v, u = np.mgrid[0:96, 0:96] / 95.0
    flow = np.stack([3 * np.sin(3 * u + v), 2 * np.cos(2 * v)], axis=-1).astype(np.float32)
    mask = (0.5 + 0.5 * u[..., None]).astype(np.float32)
    colour = np.full((96, 96, 3), 0.3, np.float32)
    for motion in [(flow, None, None), (flow, mask, colour)]:
        one = NativeCompositor(photo, crop)(*motion)
        np.testing.assert_allclose(GroupCompositor(photo, [crop])([motion]), one, atol=1e-6)


def test_the_models_are_loaded_once_and_shared(monkeypatch):
    """``method="model"`` on a two-face photo: one load, the same models in every face's
    Animator (stand-ins for the weights and the compiled renderer: nothing is rendered)."""
    from types import SimpleNamespace

    from didlearn import animate, group

    loads, given = [], []
    weights = SimpleNamespace(config=SimpleNamespace(size=256))

    def load(method):
        loads.append(method)
        return "model", weights

    def refuse(method):
        raise AssertionError("an Animator loaded the weights itself")

    monkeypatch.setattr(group, "load_models", load)
    monkeypatch.setattr(animate, "load_models", refuse)
    monkeypatch.setattr(animate, "make_renderer", lambda m, models, step: given.append(models))
    crowd = group.GroupAnimator(data.sample_group_photo(), method="model", progress=False)
    assert loads == ["model"] and len(crowd) == 2
    assert len(given) == 2 and all(m is weights for m in given)
    assert all(a.models is weights for a in crowd.animators)
