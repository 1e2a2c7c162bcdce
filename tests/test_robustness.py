"""What a user, or their machine, can do wrong: the command line as a user runs it (subprocesses
of ``python -m didlearn``), with the bad inputs made here (FIFOs, links, pixel bombs, a folder
that takes no files, a full file system, signals). Each case asserts the exit status, the one
line ``error: ...`` (no traceback) and the files left behind.

Most cases are refused before TensorFlow loads and cost a second each. Two cases run the real
renderer (thin-plate, a few frames); the cases that need a render under way but not its
pictures (a file appearing at the output, the demo stopped after its first clip, a full disk)
run the real command line and writers with a stand-in Animator (``STAND_IN``), so they need no
TensorFlow either.
"""

import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import didlearn
from didlearn import data

#: The subprocesses run the package under test, wherever the current folder is.
ROOT = Path(didlearn.__file__).resolve().parents[1]
FAST = ["--method", "thin_plate", "-q"]


def environment(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "DIDLEARN_QUICK": "1", "PYTHONPATH": path, **extra}


def run(*args, cwd=None, env=None, stdin=subprocess.DEVNULL, timeout=180, command=None):
    """``python -m didlearn ARGS`` (or ``command``) as a user runs it."""
    cmd = command or [sys.executable, "-m", "didlearn"]
    return subprocess.run(
        cmd + [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or environment(),
        stdin=stdin,
        timeout=timeout,
    )


def the_error(res: subprocess.CompletedProcess, status: int = 1) -> str:
    """The one line a refused command prints on stderr (checked: only that line, no traceback)."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == status, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, object]:
    """What is in ``folder`` (hidden files included): each entry's type, a regular file's bytes,
    a link's target. FIFOs are never opened."""
    seen: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode):
            seen[str(p.relative_to(folder))] = ("link", os.readlink(p))
        elif stat.S_ISREG(mode):
            seen[str(p.relative_to(folder))] = p.read_bytes()
        else:
            seen[str(p.relative_to(folder))] = stat.S_IFMT(mode)
    return seen


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` x ``height`` pixels: a pixel bomb is refused on its header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Good and bad inputs, made once."""
    d = tmp_path_factory.mktemp("media")
    portrait = data.to_uint8(data.sample_portrait())
    Image.fromarray(portrait).save(d / "portrait.png")
    Image.fromarray(portrait).save(d / "portrait.gif")
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(d / "wall.png")
    (d / "notes.jpg").write_text("these are my notes, not a photo\n")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    shutil.copy(data.sample_driving_video(), d / "clip.mp4")
    png_header(d / "100mp.png", 10_000, 10_000)  # over max_pixels, under Pillow's error limit
    png_header(d / "200mp.png", 20_000, 10_000)  # over twice Pillow's limit: refused at open
    return {p.name: p for p in d.iterdir()}


def in_folder(folder: Path, *names: str, media: dict[str, Path]) -> list[Path]:
    """Copies of some inputs in the user's folder (for cases about outputs next to inputs)."""
    return [Path(shutil.copy(media[n], folder / n)) for n in names]


def unwritable_folder(folder: Path) -> Path:
    """A folder that takes no new files. Root ignores permission bits (chmod would not stop it),
    so as root it is a folder under /proc, where nobody can create a file."""
    if os.geteuid() == 0:
        return Path("/proc/didlearn-test")
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


# Each case: (media, the user's folder) -> (the arguments after `animate`, a part of the error)
CASES = {
    # inputs
    "photo missing": lambda m, d: ([d / "nope.png", "--template", "nod"], "No such file"),
    "photo a dangling link": lambda m, d: (
        [link(d / "gone.png", d / "deleted.png"), "--template", "nod"],
        "No such file",
    ),
    "photo a folder": lambda m, d: ([d, "--template", "nod"], "is a folder, not a regular file"),
    "photo a FIFO": lambda m, d: (
        [fifo(d / "photo.png"), "--template", "nod"],
        "is a named pipe (FIFO), not a regular file",
    ),
    "photo text": lambda m, d: ([m["notes.jpg"], "--template", "nod"], "notes.jpg"),
    "photo 100 MP": lambda m, d: ([m["100mp.png"], "--template", "nod"], "over the limit"),
    "photo 200 MP": lambda m, d: ([m["200mp.png"], "--template", "nod"], "over the limit"),
    "photo without a face": lambda m, d: ([m["wall.png"], "--template", "nod"], "No face"),
    "driving video a FIFO": lambda m, d: (
        [m["portrait.png"], "--driving", fifo(d / "clip.mp4")],
        "is a named pipe (FIFO), not a regular file",
    ),
    "driving video damaged": lambda m, d: (
        [m["portrait.png"], "--driving", m["broken.mp4"]],
        "broken.mp4",
    ),
    "driving video an image": lambda m, d: (
        [m["portrait.png"], "--driving", m["portrait.png"]],
        "is an image: --driving takes a video",
    ),
    "driving video a URL": lambda m, d: (
        [m["portrait.png"], "--driving", "http://example.com/clip.mp4"],
        "No such file",
    ),
    "unknown template": lambda m, d: (
        [m["portrait.png"], "--template", "wave"],
        "unknown template 'wave'",
    ),
    "template too long": lambda m, d: (
        [m["portrait.png"], "--template", "nod", "--duration", "1200", "--fps", "120"],
        "more than 30000 frames",
    ),
}
# Each case: (media, the user's folder) -> (the photo, the arguments after -o, a part of the error)
OUTPUT_CASES = {
    "output exists": lambda m, d: (m["portrait.png"], [write(d / "out.mp4")], "exists already"),
    "output .avi": lambda m, d: (m["portrait.png"], [d / "out.avi"], "'.avi': .mp4 writes"),
    "output .mkv": lambda m, d: (m["portrait.png"], [d / "out.mkv"], "'.mkv': .mp4 writes"),
    "output .webm": lambda m, d: (m["portrait.png"], [d / "out.webm"], "'.webm': .mp4 writes"),
    "output without ending": lambda m, d: (m["portrait.png"], [d / "out"], "has no ending"),
    "output a link to the photo, --overwrite": lambda m, d: (
        photo := in_folder(d, "portrait.png", media=m)[0],
        [link(d / "out.mp4", photo), "--overwrite"],
        "is one of the inputs",
    ),
    "--gif beside it is the photo, --overwrite": lambda m, d: (
        photo := in_folder(d, "portrait.gif", media=m)[0],
        [d / "portrait.mp4", "--gif", "--overwrite"],
        f"'{photo}' is one of the inputs",
    ),
    "output a FIFO, --overwrite": lambda m, d: (
        m["portrait.png"],
        [fifo(d / "out.mp4"), "--overwrite"],
        "is a named pipe (FIFO), not a regular file: it is never replaced",
    ),
    "output a link to a device, --overwrite": lambda m, d: (
        m["portrait.png"],
        [link(d / "out.mp4", Path(os.devnull)), "--overwrite"],
        "is a character device, not a regular file: it is never replaced",
    ),
    "output under a file": lambda m, d: (
        m["portrait.png"],
        [write(d / "afile") / "out.mp4"],
        "is a file, not a folder",
    ),
    "output folder takes no files": lambda m, d: (
        m["portrait.png"],
        [unwritable_folder(d) / "out.mp4"],
        "cannot write in",
    ),
    "output name too long": lambda m, d: (
        m["portrait.png"],
        [d / ("a" * 300 + ".mp4")],
        "File name too long",
    ),
}


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def write(path: Path) -> Path:
    path.write_bytes(b"precious")
    return path


@pytest.mark.parametrize("case", list(CASES) + list(OUTPUT_CASES))
def test_refused_before_any_work_in_one_line(media, tmp_path, case):
    if case in CASES:
        args, expected = CASES[case](media, tmp_path)
        args += ["-o", tmp_path / "out.mp4"]
    else:
        photo, output, expected = OUTPUT_CASES[case](media, tmp_path)
        args = [photo, "--template", "nod", "-o", *output]
    before = snapshot(tmp_path)
    res = run("animate", *args, timeout=60)  # a FIFO read by mistake would hang: time out
    assert expected in the_error(res)
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced, no temporary


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


def test_debug_shows_the_traceback_of_an_os_error(media, tmp_path):
    """An OS error (here a name longer than the file system allows) is one line above; with
    DIDLEARN_DEBUG=1 the traceback comes too, for a bug report."""
    out = tmp_path / ("a" * 300 + ".mp4")
    res = run(
        "animate", media["portrait.png"], "--template", "nod", "-o", out,
        env=environment(DIDLEARN_DEBUG="1"),
    )  # fmt: skip
    assert res.returncode == 1 and "Traceback" in res.stderr and "OSError" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: File name too long")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_is_no_traceback():
    piped = subprocess.run(
        f"'{sys.executable}' -m didlearn templates | head -c0",
        shell=True, capture_output=True, text=True, timeout=60, env=environment(),
    )  # fmt: skip
    assert piped.stderr == ""


# ------------------------------------------------------------------------- the real renderer


def video_parts(folder: Path) -> list[Path]:
    """The temporary video files a render is writing in ``folder``."""
    return [p for p in folder.iterdir() if p.name.endswith(".part.mp4")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_render_leaves_no_output_and_no_temporary_file(media, tmp_path, signum):
    """`kill` (SIGTERM) or a closed terminal (SIGHUP) mid-render: exit 128 + N (143, 129), one
    line, and nothing left in the output folder or in the temp folder (TensorFlow's autograph
    files included: a SIGKILL leaves them)."""
    out_dir, temp_dir = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    temp_dir.mkdir()
    cmd = [sys.executable, "-m", "didlearn", "animate", str(media["portrait.png"]), "--template",
           "idle", "--duration", "120", "-o", str(out_dir / "long.mp4"), *FAST]  # fmt: skip
    env = environment(TMPDIR=str(temp_dir))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Until the video's temporary file exists: the render is under way. The writability
        # probe made before the render (`.didlearn-probe-*`) comes and goes first; it is no sign.
        deadline = time.monotonic() + 150
        while not video_parts(out_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert video_parts(out_dir), f"the render never started: {proc.poll()=}"
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted; nothing was written."
    assert snapshot(out_dir) == {} and snapshot(temp_dir) == {}


def test_names_ffmpeg_reads_as_protocols_are_files_and_the_format_follows_the_name(media, tmp_path):
    """A driving video named ``pipe:0`` (ffmpeg would wait on stdin, which stays open here) and
    an output named ``http:...``: files in the current folder. ``-o NAME.gif`` is a real GIF
    (the preview: half the frames, at most 320 px), and ``--gif`` with it adds nothing."""
    shutil.copy(media["clip.mp4"], tmp_path / "pipe:0")
    read, keep_open = os.pipe()
    try:
        res = run(
            "animate", media["portrait.png"], "--driving", "pipe:0", "--max-frames", "4",
            "-o", "http:clip.gif", "--gif", *FAST, cwd=tmp_path, stdin=read,
        )  # fmt: skip
    finally:
        os.close(read)
        os.close(keep_open)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["http:clip.gif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["http:clip.gif", "pipe:0"]
    with Image.open(tmp_path / "http:clip.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 and gif.size == (320, 320)


# ------------------------------------------------------------------------- a stand-in renderer

#: ``python STAND_IN ARGS``: didlearn's command line, with an Animator whose frames are the photo
#: and no TensorFlow; after frame STAND_IN_AT (counted over the whole run) it does STAND_IN_DO:
#: ``plant PATH`` (another program makes PATH), ``fifo PATH`` (a FIFO there), ``term`` (SIGTERM).
STAND_IN = """
import os, signal, sys
from didlearn import animate, cli

done = 0


def after_a_frame():
    global done
    done += 1
    if done != int(os.environ.get("STAND_IN_AT", "0")):
        return
    action, _, path = os.environ["STAND_IN_DO"].partition(" ")
    if action == "plant":
        with open(path, "wb") as f:
            f.write(b"planted")
    elif action == "fifo":
        os.mkfifo(path)
    elif action == "term":
        os.kill(os.getpid(), signal.SIGTERM)


class StandIn:
    method = "stand-in"

    def __init__(self, photo, **options):
        self.photo, self.timings = photo, {"frames": 0}

    def frames(self, n):
        for _ in range(n):
            yield self.photo
            after_a_frame()

    def animate(self, driving, max_frames=None):
        return self.frames(max_frames or 10)

    def animate_template(self, name, duration, fps):
        return self.frames(round(duration * fps))

    def fps_report(self):
        return {"fps": 1.0}


animate.Animator = StandIn
cli._start_tensorflow = lambda: None
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> list[str]:
    script = tmp_path_factory.mktemp("stand_in") / "stand_in.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script)]


@pytest.mark.parametrize(
    "planted, overwrite, expected",
    [
        ("plant", False, "appeared while it was being written"),
        ("fifo", True, "is a named pipe (FIFO), not a regular file: it is never replaced"),
    ],
)
def test_a_file_that_appears_at_the_output_during_the_render_is_kept(
    media, tmp_path, stand_in, planted, overwrite, expected
):
    out = tmp_path / "out.mp4"
    env = environment(STAND_IN_AT="3", STAND_IN_DO=f"{planted} {out}")
    args = ["animate", media["portrait.png"], "--template", "nod", "--duration", "0.4"]
    args += ["-o", out, "--gif", "-q"] + (["--overwrite"] if overwrite else [])
    message = the_error(run(*args, env=env, command=stand_in))
    assert expected in message and str(out) in message
    kept = snapshot(tmp_path)
    assert list(kept) == ["out.mp4"]  # the GIF beside it is not written either: all or nothing
    assert kept["out.mp4"] == (b"planted" if planted == "plant" else stat.S_IFIFO)


def test_the_demo_stopped_after_its_first_clip_says_what_it_wrote(tmp_path, stand_in):
    folder = tmp_path / "demo"
    env = environment(STAND_IN_AT="13", STAND_IN_DO="term")  # quick mode: 10 frames a clip
    res = run("demo", "-o", folder, "-q", env=env, command=stand_in)
    first = [folder / "portrait_driven.mp4", folder / "portrait_driven.gif"]
    assert the_error(res, 128 + signal.SIGTERM) == (
        f"error: interrupted; {first[0]} and {first[1]} were written, nothing else."
    )
    assert sorted(snapshot(folder)) == sorted(p.name for p in first)
    assert data.video_info(first[0]).n_frames == 10


@pytest.fixture
def tiny_file_system(tmp_path):
    """A 16 kB tmpfs mounted for the test (needs root and CAP_SYS_ADMIN: skipped elsewhere)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_and_leaves_nothing(media, tiny_file_system, stand_in):
    out = tiny_file_system / "out.mp4"
    args = ["animate", media["portrait.png"], "--template", "nod", "--duration", "0.4"]
    res = run(*args, "-o", out, "-q", command=stand_in)
    assert the_error(res).startswith(f"error: No space left on device ('{out}')")
    assert snapshot(tiny_file_system) == {}
