"""The command line, run as a user runs it: subprocesses of `didlearn` and `python -m didlearn`.

Each TensorFlow-using subprocess costs seconds of start-up, so the successful runs are few and
check much. What a user can do wrong (bad files, options, outputs, signals) is in
test_robustness.py.
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
    return {"portrait": portrait, "driving": driving, "dir": d}


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
    with Image.open(out.with_suffix(".gif")) as gif:  # the preview: half the frames, 320 px
        assert (gif.format, gif.n_frames, gif.size, gif.info["duration"]) == (
            "GIF",
            4,
            (320, 320),
            200,
        )
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


def test_usage_errors_exit_2():
    res = run("animate", "photo.jpg", "--template", "nod")  # no -o
    assert res.returncode == 2 and "-o" in res.stderr
