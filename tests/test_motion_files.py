"""Motion files and the best reference frame (issue 20), as a user runs them: ``didlearn motion``
then ``didlearn animate --motion`` (subprocesses), checked against the run from the video itself
pixel for pixel; damaged and foreign files refused with one line; ``--reference auto`` on a
constructed driver whose only neutral frame is not the first.

The successful renders are three short thin-plate runs (a few frames each); every refusal
happens before TensorFlow loads.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

import didlearn
from didlearn import animate, cli, data, driving, faces
from didlearn.errors import InvalidMotionFileError, UsageError

ROOT = Path(didlearn.__file__).resolve().parents[1]
FAST = ["--method", "thin_plate", "-q"]
FRAMES = 5  # rendered per run: enough to see motion, few enough to stay quick


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m didlearn ARGS`` as a user runs it."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DIDLEARN_QUICK": "1", "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "didlearn", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def the_error(res: subprocess.CompletedProcess) -> str:
    """The one line a refused command prints (exit 1, no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The portrait as a PNG, and the bundled clip's first half-second with a 440 Hz tone (the
    bundled clip has no sound, and the motion file's sound is under test)."""
    where = tmp_path_factory.mktemp("motionfile")
    Image.fromarray(data.to_uint8(data.sample_portrait())).save(where / "photo.png")
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(data.sample_driving_video())]
        + ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-t", "0.5"]
        + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(where / "talk.mp4")],
        check=True,
    )
    return where


@pytest.fixture(scope="module")
def motion_file(folder) -> Path:
    res = run("motion", "talk.mp4", "-o", "talk.npz", "-q", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "talk.npz"
    return folder / "talk.npz"


# --------------------------------------------------------------------------------------------
# Motion files
# --------------------------------------------------------------------------------------------


def test_a_motion_file_reproduces_the_video_run_frame_for_frame(folder, motion_file):
    motion = driving.load_motion(motion_file)
    info = data.video_info(folder / "talk.mp4")
    assert len(motion) == info.n_frames and motion.found.all() and motion.fps == info.fps
    assert motion.frame_size == (info.width, info.height)
    assert Path(motion.source) == (folder / "talk.mp4").resolve()
    common = ["photo.png", "--max-frames", FRAMES, *FAST]
    by_video = run("animate", *common, "--driving", "talk.mp4", "-o", "video.mp4", cwd=folder)
    by_file = run("animate", *common, "--motion", "talk.npz", "-o", "file.mp4", cwd=folder)
    assert by_video.returncode == 0 and by_file.returncode == 0, by_video.stderr + by_file.stderr
    a, b = data.read_video(folder / "video.mp4"), data.read_video(folder / "file.mp4")
    assert len(a.frames) == len(b.frames) == FRAMES and a.fps == b.fps == info.fps
    assert np.array_equal(a.frames, b.frames)  # the same pixels, decoded
    assert max(np.abs(f - a.frames[0]).max() for f in a.frames[1:]) > 0.05  # and they move
    # the motion file's video is still there: its sound is the output's, as with --driving
    assert a.has_audio and b.has_audio


def test_audio_comes_from_audio_then_the_files_video_then_nothing(folder, motion_file):
    motion = driving.load_motion(motion_file)
    args = argparse.Namespace(audio="tone.m4a")
    assert cli._motion_audio(args, motion) == "tone.m4a"
    args.audio = None
    assert cli._motion_audio(args, motion) == motion.source
    no_source = driving.DrivingMotion(motion.landmarks, motion.found, 25.0, (8, 8), "")
    assert cli._motion_audio(args, no_source) is None
    res = run(
        "animate",
        "photo.png",
        "--driving",
        "talk.mp4",
        "--audio",
        "talk.mp4",
        "-o",
        "x.mp4",
        cwd=folder,
    )
    assert "--audio goes with --motion" in the_error(res)


def _bad_files(folder: Path, good: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    (folder / "text.npz").write_text("landmarks, probably\n")
    (folder / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    flipped = bytearray(raw)
    flipped[len(raw) // 3 : len(raw) // 3 + 4] = b"\xff\x00\xff\x00"
    (folder / "corrupt.npz").write_bytes(bytes(flipped))
    np.savez(folder / "foreign.npz", weights=np.zeros(3))
    np.save(folder / "single.npy", np.zeros((3, 68, 2)))
    (folder / "single.npz").write_bytes((folder / "single.npy").read_bytes())
    fields = dict(np.load(good))
    np.savez(folder / "future.npz", **{**fields, "version": np.array(2)})
    np.savez(folder / "shape.npz", **{**fields, "landmarks": np.zeros((4, 5, 2), np.float32)})
    np.savez(folder / "pickled.npz", **{**fields, "source": np.array([{"a": 1}], object)})
    names = ("text", "truncated", "corrupt", "foreign", "single", "future", "shape", "pickled")
    return {name: folder / f"{name}.npz" for name in names}


def test_damaged_foreign_or_newer_motion_files_get_one_line(folder, motion_file):
    bad = _bad_files(folder, motion_file)
    for name, path in bad.items():
        with pytest.raises(InvalidMotionFileError) as err:
            driving.load_motion(path)
        assert str(path) in str(err.value), name
        assert ("version 2" in str(err.value)) == (name == "future"), name
    for name in ("text", "truncated", "foreign", "future"):  # through the CLI: before the work
        res = run(
            "animate", "photo.png", "--motion", bad[name].name, "-o", f"{name}.mp4", cwd=folder
        )
        assert bad[name].name in the_error(res)
        assert not (folder / f"{name}.mp4").exists()
    assert "No such file" in the_error(
        run("animate", "photo.png", "--motion", "nope.npz", "-o", "n.mp4", cwd=folder)
    )


def test_motion_command_checks_its_output_first(folder, motion_file):
    before = motion_file.read_bytes()
    assert "exists already" in the_error(run("motion", "talk.mp4", "-o", "talk.npz", cwd=folder))
    assert ".npz" in the_error(run("motion", "talk.mp4", "-o", "talk.json", cwd=folder))
    assert "is an image" in the_error(run("motion", "photo.png", "-o", "p.npz", cwd=folder))
    assert motion_file.read_bytes() == before and not (folder / "p.npz").exists()
    with pytest.raises(UsageError, match=r"\.npz"):
        driving.save_motion(driving.load_motion(motion_file), folder / "m.npy")
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # nothing half-written


def test_a_motion_file_round_trips_and_cuts_like_max_frames(tmp_path):
    clip = data.read_video(data.sample_driving_video(), max_frames=6).frames
    blank = np.full((2, *clip.shape[1:]), 0.5, np.float32)
    motion = driving.track_driving(np.concatenate([blank, clip]))  # two leading faceless frames
    assert motion.fps is None and motion.bridged >= 2 and motion.first_found == 2
    back = driving.load_motion(driving.save_motion(motion, tmp_path / "m.npz"))
    assert np.array_equal(back.landmarks, motion.landmarks) and back.fps is None
    assert np.array_equal(back.found, motion.found) and back.frame_size == (176, 144)
    # the tracker only looks back: the first 5 frames of the whole track are tracking 5 frames
    seven = driving.track_driving(np.concatenate([blank, clip])[:5])
    assert np.array_equal(motion.head(5).landmarks, seven.landmarks)
    # streamed (reference "first"), or from the file: the same target keypoints
    anim = animate.Animator(data.sample_portrait(), method="still", progress=False)
    streamed = anim.driving_targets(np.concatenate([blank, clip]))
    assert np.array_equal(anim.driving_targets(back), streamed)
    assert anim.bridged == motion.bridged and anim.reference_frame == 2
    np.testing.assert_array_equal(streamed[:2], np.stack([anim.source_kp] * 2))


# --------------------------------------------------------------------------------------------
# The best reference frame
# --------------------------------------------------------------------------------------------


def open_mouth(ks: np.ndarray, amount: float) -> np.ndarray:
    """The landmarks (68, 2) with the jaw and lower lip lowered by ``amount`` face heights."""
    out = np.array(ks, np.float64)
    height = np.ptp(ks[:, 1])
    lower = [*range(5, 12), *range(55, 60), *range(65, 68)]
    out[lower, 1] += amount * height
    return out


def constructed_driver(
    ks: np.ndarray, neutral: int, frames: int = 8, source: str = ""
) -> driving.DrivingMotion:
    """A driver whose every frame has an open mouth but frame ``neutral`` (the photo's own
    expression), each frame shifted, scaled and rolled differently (which the choice must not
    see), in a 176 x 144 frame."""
    rng = np.random.default_rng(0)
    centre = ks.mean(axis=0)
    marks = []
    for t in range(frames):
        face = open_mouth(ks, 0 if t == neutral else 0.05 + 0.02 * (t % 3))
        angle, scale = np.radians(rng.uniform(-15, 15)), rng.uniform(0.3, 0.5)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        marks.append(scale * (face - centre) @ rot.T + [88, 72] + rng.uniform(-5, 5, 2))
    found = np.ones(frames, bool)
    return driving.DrivingMotion(np.float32(marks), found, 25.0, (176, 144), source)


def test_best_reference_picks_the_frame_closest_to_the_photo():
    ks = faces.face_landmarks(data.sample_portrait())
    for neutral in (0, 3, 7):
        motion = constructed_driver(ks, neutral)
        assert driving.best_reference(motion, ks) == neutral
        assert driving.resolve_reference("first", motion, ks) == 0
    # a frame without a face is never chosen, nor accepted as a number
    motion = constructed_driver(ks, 3)
    motion.found[3] = False
    assert driving.best_reference(motion, ks) != 3
    with pytest.raises(UsageError, match="no face"):
        driving.resolve_reference(3, motion, ks)
    with pytest.raises(UsageError, match="out of range"):
        driving.resolve_reference(8, motion, ks)
    for wrong in ("best", -1, 2.0, True):
        with pytest.raises(UsageError, match="reference must be"):
            driving.check_reference(wrong)


def test_against_the_first_frame_the_neutral_frame_moves():
    anim = animate.Animator(data.sample_portrait(), method="still", progress=False)
    motion = constructed_driver(anim.source_kp, neutral=3)
    moved = {}
    for ref in ("first", "auto"):
        anim.reference = ref
        kps = anim.motion_targets(motion)
        moved[ref] = np.abs(kps - anim.source_kp).max(axis=(1, 2))  # (T,) pixels
    assert moved["first"][0] < 1e-3 and moved["first"][3] > 5  # the photo's mouth closes past shut
    assert moved["auto"][3] < 1e-3 and moved["auto"][0] > 5 and anim.reference_frame == 3


def test_reference_auto_through_the_cli_keeps_the_neutral_frame_still(folder):
    """Also: the motion file's video is gone, so the output is silent, and a note says so."""
    photo = data.load_image(folder / "photo.png")
    ks = faces.face_landmarks(photo)
    built = constructed_driver(ks, neutral=3, source=str(folder / "gone.mp4"))
    driving.save_motion(built, folder / "built.npz")
    res = run("animate", "photo.png", "--motion", "built.npz", "-o", "auto.mp4", *FAST, cwd=folder)
    assert res.returncode == 0, res.stderr
    video = data.read_video(folder / "auto.mp4")
    change = np.abs(video.frames - photo[None]).mean(axis=(1, 2, 3))  # (T,) change from photo
    # auto (the default): frame 3 is the photo (no motion relative to it), frame 0 moves
    assert (
        len(change) == 8 and int(np.argmin(change)) == 3 and change[0] > 2 * change[3]
    )  # H.264 noise: ~0.01
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "gone.mp4" in notes[0] and "--audio" in notes[0]
    assert not video.has_audio
    res = run(
        "animate", "photo.png", "--motion", "built.npz", "--reference", 8, "-o", "x.mp4", cwd=folder
    )
    assert "out of range" in the_error(res) and "8 frames" in the_error(res)
    res = run(
        "animate",
        "photo.png",
        "--driving",
        "talk.mp4",
        "--reference",
        400,
        "-o",
        "x.mp4",
        cwd=folder,
    )
    assert "out of range" in the_error(res)
    res = run(
        "animate", "photo.png", "--template", "nod", "--reference", 1, "-o", "x.mp4", cwd=folder
    )
    assert "--template" in the_error(res)
    res = run(
        "animate",
        "photo.png",
        "--motion",
        "built.npz",
        "--reference",
        "best",
        "-o",
        "x.mp4",
        cwd=folder,
    )
    assert res.returncode == 2 and "--reference" in res.stderr
