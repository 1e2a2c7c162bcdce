"""The command line, run as a user runs it: subprocesses of `didlearn` and `python -m didlearn`.

Each TensorFlow-using subprocess costs seconds of start-up, so the successful runs are few and
check much; the error cases fail before TensorFlow is imported and are cheap.
"""

import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from didlearn import data

SCRIPT = Path(sys.executable).with_name("didlearn")


def run(*args, cwd=None, script=False):
    cmd = [str(SCRIPT)] if script and SCRIPT.exists() else [sys.executable, "-m", "didlearn"]
    env = {**os.environ, "DIDLEARN_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    portrait = d / "portrait.png"
    Image.fromarray((data.sample_portrait() * 255).round().astype(np.uint8)).save(portrait)
    driving = d / "talking.mp4"  # the bundled clip (silent) with a sine tone as its audio track
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
            "-i", str(data.sample_driving_video()),
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
            "-frames:v", "12", "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(driving),
        ],
        check=True,
    )  # fmt: skip
    noface = d / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(noface)
    notimage = d / "notes.jpg"
    notimage.write_text("these are my notes, not a photo\n")
    badvideo = d / "broken.mp4"
    badvideo.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return {"portrait": portrait, "driving": driving, "noface": noface, "notimage": notimage,
            "badvideo": badvideo, "dir": d}  # fmt: skip


def test_templates_and_help_need_no_tensorflow():
    res = run("templates", script=True)
    assert res.returncode == 0
    names = [line.split()[0] for line in res.stdout.splitlines()]
    assert {"nod", "turn", "tilt", "blink", "smile", "idle"} <= set(names)
    res = run("animate", "--help")
    assert res.returncode == 0 and "--template" in res.stdout and "--no-paste-back" in res.stdout


def test_demo_writes_playable_videos(tmp_path):
    res = run("demo", "-o", tmp_path / "demo", "-q", script=True)
    assert res.returncode == 0, res.stderr
    listed = [Path(p) for p in res.stdout.splitlines() if p.endswith((".mp4", ".gif"))]
    assert {p.name for p in listed} == {
        "portrait_driven.mp4", "portrait_driven.gif", "portrait_idle.mp4", "portrait_idle.gif"
    }  # fmt: skip
    for p in listed:
        assert p.is_file() and p.stat().st_size > 1000
    info = data.video_info(tmp_path / "demo" / "portrait_driven.mp4")
    assert (info.n_frames, info.width, info.height) == (10, 512, 512)
    assert "Traceback" not in res.stderr and "cuda" not in res.stderr.lower()


def test_template_and_driving_video_runs(files, tmp_path):
    out = tmp_path / "nod.mp4"
    res = run(
        "animate", files["portrait"], "--template", "nod", "--duration", "0.8", "--fps", "10",
        "-o", out, "--gif", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = data.video_info(out)
    assert (info.n_frames, info.width, info.height, info.has_audio) == (8, 512, 512, False)
    assert info.fps == pytest.approx(10)
    assert out.with_suffix(".gif").stat().st_size > 1000
    frames = data.read_video(out).frames
    # two nods in 8 frames: frames 0, 2, 4, 6 sit at the sine's zeros, frame 3 near its peak
    assert np.abs(frames[3] - frames[0]).max() > 0.1  # the head moved

    out = tmp_path / "driven.mp4"
    res = run(
        "animate", files["portrait"], "--driving", files["driving"], "-o", out,
        "--no-paste-back", script=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = data.video_info(out)
    assert (info.n_frames, info.width, info.height) == (12, 256, 256)
    assert info.has_audio  # the driving video's sound is carried over
    assert info.fps == pytest.approx(data.video_info(files["driving"]).fps, rel=1e-3)
    assert "frames/s" in res.stderr  # the speed report


@pytest.mark.parametrize(
    "case, expected",
    [
        ("notimage", "notes.jpg"),
        ("noface", "No face"),
        ("badvideo", "broken.mp4"),
        ("exists", "exists already"),
        ("template", "unknown template 'wave'"),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(files, tmp_path, case, expected):
    out = tmp_path / "out.mp4"
    photo, source = files["portrait"], ["--template", "nod"]
    if case in ("notimage", "noface"):
        photo = files[case]
    elif case == "badvideo":
        source = ["--driving", files["badvideo"]]
    elif case == "exists":
        out.write_bytes(b"precious")
    elif case == "template":
        source = ["--template", "wave"]
    res = run("animate", photo, *source, "-o", out, "--gif")
    assert res.returncode not in (0, None)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert expected in lines[0]
    assert "Traceback" not in res.stderr
    if case == "exists":
        assert out.read_bytes() == b"precious" and sorted(tmp_path.iterdir()) == [out]
    else:
        assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_2():
    res = run("animate", "photo.jpg", "--template", "nod")  # no -o
    assert res.returncode == 2 and "-o" in res.stderr


@pytest.mark.parametrize(
    "option, value",
    [
        ("--intensity", "nan"),
        ("--intensity", "inf"),
        ("--intensity", "1e9"),
        ("--duration", "inf"),
        ("--duration", "1e6"),
        ("--fps", "0"),
        ("--fps", "1e6"),
        ("--max-frames", "0"),
        ("--size", "4096"),
        ("--face", "-1"),
    ],
)
def test_numeric_options_are_checked_up_front_with_their_range(option, value, tmp_path):
    res = run("animate", "photo.jpg", "--template", "nod", "-o", tmp_path / "o.mp4", option, value)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    message = res.stderr.strip().splitlines()[-1]
    assert option in message and f"got '{value}'" in message and " from " in message + " from "
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "case, expected",
    [
        ("gif_name", "name it with .mp4"),
        ("output_is_input", "is one of the inputs"),
        ("under_a_file", "is a file, not a folder"),
        ("too_many_frames", "more than 30000 frames"),
    ],
)
def test_outputs_are_checked_before_any_work(files, tmp_path, case, expected):
    photo = tmp_path / "portrait.png"
    photo.write_bytes(files["portrait"].read_bytes())
    out, extra = tmp_path / "out.mp4", []
    if case == "gif_name":
        out = tmp_path / "out.gif"
    elif case == "output_is_input":
        out, extra = photo, ["--overwrite"]
    elif case == "under_a_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "out.mp4"
    elif case == "too_many_frames":
        extra = ["--duration", "1200", "--fps", "120"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    res = run("animate", photo, "--template", "nod", "-o", out, *extra)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and expected in lines[0], res.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing touched


def test_an_os_error_is_one_line_and_debug_shows_the_traceback(files, tmp_path):
    """The machine saying no (here: a file name longer than the file system allows) is one
    line, before any work; DIDLEARN_DEBUG=1 adds the traceback for a bug report."""
    out = tmp_path / ("a" * 300 + ".mp4")
    args = ["animate", str(files["portrait"]), "--template", "nod", "-o", str(out)]
    res = run(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith("error: File name too long") and "disk has room" in lines[0]
    debug = subprocess.run(
        [sys.executable, "-m", "didlearn", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DIDLEARN_DEBUG": "1", "DIDLEARN_QUICK": "1"},
        timeout=300,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "OSError" in debug.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_cleans_up_like_ctrl_c(files, tmp_path):
    """`kill` (SIGTERM) mid-render: exit 143, one line, no partial output in the output folder
    and no TensorFlow autograph files left in the temp folder."""
    import signal
    import time

    out_dir, temp_dir = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    temp_dir.mkdir()
    env = {**os.environ, "DIDLEARN_QUICK": "1", "TMPDIR": str(temp_dir)}
    cmd = [sys.executable, "-m", "didlearn", "animate", str(files["portrait"]), "--template",
           "idle", "--duration", "120", "-o", str(out_dir / "long.mp4"), "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(out_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the video's temporary file exists: the render is under way
    assert list(out_dir.iterdir()), "the render never started"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted; nothing was written."
    assert list(out_dir.iterdir()) == []
    assert not [p.name for p in temp_dir.rglob("*autograph*")]


def test_an_image_is_not_a_driving_video_and_a_closed_pipe_is_no_traceback(files, tmp_path):
    res = run(
        "animate", files["portrait"], "--driving", files["portrait"], "-o", tmp_path / "o.mp4"
    )
    assert res.returncode == 1 and "is an image: --driving takes a video" in res.stderr
    piped = subprocess.run(
        f"'{sys.executable}' -m didlearn templates | head -c0",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in piped.stderr and piped.stderr == ""
