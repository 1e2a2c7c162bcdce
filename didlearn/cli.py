"""The ``didlearn`` command line: animate a photo, run the demo, list the motion templates.

::

    didlearn animate PHOTO (--driving VIDEO [--driving VIDEO ...] | --template NAME
                            | --motion FILE.npz)
                     -o OUT.mp4|OUT.gif [--gif] [--size 256] [--reference auto|first|N]
                     [--absolute] [--no-paste-back] [--face N|all] [--fine-tune STEPS]
                     [--overwrite] [--eyes X] [--mouth X] [--yaw DEG] [--pitch DEG] [--roll DEG]
                     [--region all|pose|expression|eyes|lips] [--restore denoise|scratches]
    didlearn motion VIDEO -o FILE.npz [--max-frames N] [--overwrite]
    didlearn demo [-o DIR]
    didlearn templates

User errors (a missing or unreadable file, no face, an existing output, an output that is
neither ``.mp4`` nor ``.gif`` or is one of the inputs) and the operating system's refusals
(``OSError``: permissions, a name too long, a full disk) print one line ``error: <what was wrong
and what to do>`` on stderr and exit with status 1; a malformed command line, numeric options out
of :data:`OPTION_RANGES` included, exits with 2, as argparse does (the retargeting values,
checked by :func:`didlearn.retarget.check_values`, and ``--restore`` are user errors: one line,
status 1). No
traceback (``DIDLEARN_DEBUG=1`` adds it), and no output file is left behind. Ctrl-C, SIGTERM and
SIGHUP exit with 128 + the signal's number and say which files, if any, were complete before.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DidlearnError, UsageError

EXIT_USER_ERROR = 1
EXIT_USAGE = 2
#: photos are scaled down to this longest side: the face crop is 256 px anyway, and a 12 MP
#: whole-photo video would be slow to encode and to play
MAX_PHOTO_SIDE = 2048
#: The ranges of the numeric options, checked before any work (inclusive; None = no bound).
#: The crop size bounds memory (a 2048 px thin-plate crop took 5.8 GB); a template's frames are
#: at most MAX_TEMPLATE_FRAMES (20 minutes at 25 fps).
OPTION_RANGES: dict[str, tuple[type, float, float | None]] = {
    "--size": (int, 64, 1024),
    "--face": (int, 0, None),
    "--fine-tune": (int, 0, 5000),
    "--intensity": (float, 0.0, 4.0),
    "--duration": (float, 0.04, 1200.0),
    "--fps": (float, 1.0, 120.0),
    "--max-frames": (int, 1, None),
}
MAX_TEMPLATE_FRAMES = 30_000
#: Set to show the traceback of an error (for bug reports).
DEBUG_VARIABLE = "DIDLEARN_DEBUG"


def _in_range(option: str):
    """argparse ``type=`` for ``option``: a finite number within :data:`OPTION_RANGES`."""
    kind, low, high = OPTION_RANGES[option]
    span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        top = float("inf") if high is None else high
        if value is None or value != value or not low <= value <= top:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"must be a {kind.__name__} {span}, got '{text}'")
        return value

    return parse


def _face_choice(text: str) -> int | str:
    """argparse ``type=`` for ``--face``: ``all`` (every face) or an index (``_in_range``)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return _in_range("--face")(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err} or 'all'") from None


def _reference(text: str) -> str | int:
    """argparse ``type=`` for ``--reference``: auto, first or a frame number >= 0."""
    from .driving import REFERENCES

    if text in REFERENCES:
        return text
    if text.isdigit():  # digits only: no sign, no spaces
        return int(text)
    raise argparse.ArgumentTypeError(
        f"must be {', '.join(REFERENCES)} or a frame number (0 or more), got '{text}'"
    )


def _parser() -> argparse.ArgumentParser:
    from . import __version__, renderers, restore
    from .animate import GIF_MAX_SIDE

    parser = argparse.ArgumentParser(
        prog="didlearn",
        description="Bring a portrait to life with the motion of a driving video or a template.",
    )
    parser.add_argument("--version", action="version", version=f"didlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    anim = sub.add_parser(
        "animate",
        help="animate a photo with a driving video or a motion template",
        description="Animate the face of PHOTO and write an H.264 MP4 (with the driving "
        f"video's audio), or for OUT.gif a GIF preview (at most {GIF_MAX_SIDE} px, half the "
        "frame rate, no sound).",
    )
    anim.add_argument("photo", metavar="PHOTO", help="portrait (JPEG, PNG, WebP, ...)")
    source = anim.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--driving",
        metavar="VIDEO",
        action="append",
        help="driving video of a talking face; with --face all, once for every face (in the "
        "order of their numbers) or once for all",
    )
    source.add_argument(
        "--template", metavar="NAME", help="motion template (see `didlearn templates`)"
    )
    source.add_argument(
        "--motion",
        metavar="FILE.npz",
        help="a driver's motion saved by `didlearn motion` (its sound: see --audio)",
    )
    anim.add_argument(
        "-o",
        "--output",
        metavar="OUT.mp4|OUT.gif",
        required=True,
        help="output: .mp4 (H.264, with sound) or .gif (the preview)",
    )
    anim.add_argument(
        "--gif",
        action="store_true",
        help=f"also write OUT.gif, a preview (at most {GIF_MAX_SIDE} px, half the frame rate)",
    )
    anim.add_argument(
        "--size", type=_in_range("--size"), default=256, help="face crop resolution (default 256)"
    )
    anim.add_argument(
        "--absolute", action="store_true", help="absolute motion transfer (default: relative)"
    )
    anim.add_argument(
        "--no-paste-back",
        dest="paste_back",
        action="store_false",
        help="output the animated face crop instead of the whole photo",
    )
    anim.add_argument(
        "--face",
        type=_face_choice,
        default=0,
        metavar="N|all",
        help="face number (0 = best; a number beyond the faces found lists them), or all: "
        "every face of a group photo, each in its own crop",
    )
    anim.add_argument(
        "--fine-tune",
        type=_in_range("--fine-tune"),
        default=0,
        metavar="STEPS",
        help="fine-tune the model on the photo for STEPS steps first (slower, better identity)",
    )
    anim.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    anim.add_argument(
        "--intensity",
        type=_in_range("--intensity"),
        default=1.0,
        help="motion scale (default 1; 0 = still, 4 at most)",
    )
    anim.add_argument(
        "--method",
        default="auto",
        choices=("auto", *renderers.renderer_names()),
        help="renderer (default auto: the one measured best on other people's photos, "
        f"{renderers.DEFAULT_METHOD} today; see the model card): "
        + "; ".join(f"{e.name}: {e.summary}" for e in renderers.RENDERERS.values()),
    )
    anim.add_argument(
        "--duration",
        type=_in_range("--duration"),
        default=4.0,
        help="template length in seconds (default 4)",
    )
    anim.add_argument(
        "--fps", type=_in_range("--fps"), default=25.0, help="template frame rate (default 25)"
    )
    anim.add_argument(
        "--max-frames",
        type=_in_range("--max-frames"),
        default=None,
        help="use at most N driving frames",
    )
    anim.add_argument(
        "--reference",
        type=_reference,
        default=None,
        metavar="auto|first|N",
        help="the driving frame motion is taken against (default auto: the one whose pose and "
        "expression are closest to the photo's; first: the first with a face; N: frame N)",
    )
    anim.add_argument(
        "--audio",
        metavar="FILE",
        help="with --motion: the sound of the output (default: the motion file's video if it "
        "is still where it was, else none)",
    )
    anim.add_argument(
        "--restore",
        metavar="|".join(restore.KINDS),
        default=None,
        help="restore the face region of an old photo first, then animate it (Deep Image Prior: "
        "minutes on a CPU; the time is estimated up front): "
        + "; ".join(f"{k}: {restore.MEANINGS[k]}" for k in restore.KINDS),
    )
    anim.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_retarget_options(anim)

    mot = sub.add_parser(
        "motion",
        help="save a driving video's tracked motion to a file, for `animate --motion`",
        description="Track the face of VIDEO and save its smoothed landmarks (with the frame "
        "rate, which frames had a face and the video's name, for its sound) to FILE.npz: "
        "`didlearn animate PHOTO --motion FILE.npz` then animates exactly as from the video, "
        "without tracking it again and without the video's pictures.",
    )
    mot.add_argument("video", metavar="VIDEO", help="driving video of a talking face")
    mot.add_argument("-o", "--output", metavar="FILE.npz", required=True, help="motion file")
    mot.add_argument(
        "--max-frames",
        type=_in_range("--max-frames"),
        default=None,
        help="track at most N frames",
    )
    mot.add_argument("--overwrite", action="store_true", help="replace an existing file")
    mot.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser(
        "demo",
        help="animate the bundled portrait with the bundled clip and a template",
        description="Animate the bundled portrait with the bundled driving clip and with the "
        "'idle' template; files in DIR are replaced.",
    )
    demo.add_argument("-o", "--output", metavar="DIR", default="didlearn-demo")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sub.add_parser("templates", help="list the motion templates")
    return parser


def _add_retarget_options(anim: argparse.ArgumentParser) -> None:
    """The retargeting options (:mod:`didlearn.retarget`), in their own group of the help."""
    from .retarget import MEANINGS, RANGES, REGIONS

    group = anim.add_argument_group(
        "retargeting",
        "set the eyes' and mouth's openness and turn the head, whatever the driver does; keep "
        "only part of the motion",
    )
    for name, (low, high) in RANGES.items():
        group.add_argument(
            f"--{name}",
            type=float,
            default=None,
            metavar="X" if name in ("eyes", "mouth") else "DEG",
            help=f"{MEANINGS[name]}; from {low:g} to {high:g}",
        )
    group.add_argument(
        "--region",
        default="all",
        choices=tuple(REGIONS),
        help="the part of the motion to transfer (default all): "
        + "; ".join(f"{k}: {v}" for k, v in REGIONS.items()),
    )


def _retarget_from_args(args: argparse.Namespace):
    """The :class:`~didlearn.retarget.Retarget` of the options; a value out of range is a
    one-line :class:`UsageError` naming the option, before any work."""
    from .retarget import RANGES, Retarget, check_values

    values = {name: getattr(args, name) for name in RANGES} | {"region": args.region}
    check_values(values, prefix="--")
    offsets = {k: v if v is not None else 0.0 for k, v in values.items() if k in RANGES}
    return Retarget(**(values | {k: offsets[k] for k in ("yaw", "pitch", "roll")}))


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def _start_tensorflow() -> None:
    """Import TensorFlow now, before the progress bar (its start-up logs held back by
    :mod:`didlearn.quiet`, which ``import didlearn`` installed)."""
    import tensorflow  # noqa: F401


def _load_photo(path: str):
    import cv2

    from .data import load_image

    photo = load_image(path)
    h, w = photo.shape[:2]
    if max(h, w) > MAX_PHOTO_SIDE:
        s = MAX_PHOTO_SIDE / max(h, w)
        photo = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return photo


def _check_not_an_input(outputs: list[Path], inputs: list[str | None]) -> None:
    """No output is one of the inputs (``--overwrite`` would destroy it), links followed: the
    GIF beside the MP4 included (``-o photo.mp4 --gif`` for a photo.gif)."""
    given = {Path(p).expanduser().resolve() for p in inputs if p is not None}
    for out in outputs:
        if out.expanduser().resolve() in given:
            raise UsageError(f"the output '{out}' is one of the inputs: choose another name.")


def _check_template(name: str) -> None:
    from .templates import list_templates

    if name not in list_templates():
        raise DidlearnError(
            f"unknown template '{name}': choose one of {', '.join(list_templates())} "
            "(`didlearn templates` describes them)."
        )


def _report(animator, paths: list[Path], seconds: float, quiet: bool) -> None:
    rep = animator.fps_report()
    for p in paths:
        print(p)
    if not quiet:
        stages = ", ".join(f"{k[:-3]} {v:.1f}" for k, v in rep.items() if k.endswith("_ms"))
        print(
            f"{int(animator.timings.get('frames', 0))} frames with '{animator.method}' in "
            f"{seconds:.1f} s; {rep['fps']:.1f} frames/s animating (ms per frame: {stages})",
            file=sys.stderr,
        )


def animate_command(args: argparse.Namespace) -> int:
    """``didlearn animate``: every input is checked before the long work starts."""
    from . import animate, data, faces, restore

    drivers: list[str] = args.driving or []
    _check_driver_count(drivers, args.face)
    out = Path(args.output)
    gif = out.with_suffix(".gif") if args.gif else None  # -o OUT.gif --gif: the one GIF
    outputs = [p for p in animate.output_paths(out, gif) if p is not None]
    _check_not_an_input(outputs, [args.photo, *drivers, args.motion, args.audio])
    animate.check_outputs(outputs, args.overwrite)
    reference = _check_reference_options(args)
    if args.restore is not None:
        restore.check_kind(args.restore, prefix="--")  # before any work
    motion = _load_motion(args) if args.motion is not None else None
    retarget = _retarget_from_args(args)
    if args.template is not None:
        _check_template(args.template)
        if args.duration * args.fps > MAX_TEMPLATE_FRAMES:
            raise UsageError(
                f"--duration {args.duration:g} at --fps {args.fps:g} makes more than "
                f"{MAX_TEMPLATE_FRAMES} frames: shorten it or lower the frame rate."
            )
    photo = _load_photo(args.photo)
    fps = args.fps
    for video in drivers:
        if Path(video).suffix.lower() in data.IMAGE_SUFFIXES:
            raise UsageError(
                f"'{video}' is an image: --driving takes a video of a face (for motion "
                "without a video, use --template)."
            )
        info = data.video_info(video)  # unreadable video: fails here, before any work
        _check_reference_frame(reference, min(info.n_frames, args.max_frames or info.n_frames))
    if drivers:
        fps = data.video_info(drivers[0]).fps  # the first driver's rate (and sound)
    audio = drivers[0] if drivers else None
    if motion is not None:
        fps, audio = motion.fps or args.fps, _motion_audio(args, motion)
    sources = drivers or ([motion] if motion is not None else [])
    if args.face == "all":
        return _animate_group(args, photo, sources, reference, retarget, fps, audio, out, gif)
    landmarks = faces.face_landmarks(photo, args.face)  # no face: fails before TensorFlow loads
    _start_tensorflow()
    t0 = time.perf_counter()
    animator = animate.Animator(
        photo,
        landmarks=landmarks,
        face=args.face,
        paste_back=args.paste_back,
        **_animation_options(args, reference, retarget),
    )
    if sources:
        frames = animator.animate(sources[0], max_frames=args.max_frames)
    else:
        frames = animator.animate_template(args.template, args.duration, args.fps)
    paths = animate.save(frames, out, fps, audio_from=audio, gif=gif, overwrite=args.overwrite)
    _report(animator, paths, time.perf_counter() - t0, args.quiet)
    if not args.quiet and sources:
        print(
            f"motion relative to driving frame {animator.reference_frame} "
            f"(--reference {reference})",
            file=sys.stderr,
        )
    return 0


def _animation_options(
    args: argparse.Namespace, reference: str | int | None, retarget
) -> dict[str, Any]:
    """The keyword arguments ``Animator`` and ``GroupAnimator`` both take from the command line."""
    return {
        "method": args.method,
        "size": args.size,
        "relative": not args.absolute,
        "intensity": args.intensity,
        "fine_tune": args.fine_tune,
        "progress": not args.quiet,
        "reference": reference,
        "retarget": retarget,
        "restore": args.restore,
    }


def _check_driver_count(drivers: list[str], face: int | str) -> None:
    """Several ``--driving`` videos go with ``--face all`` (one per face, checked once the faces
    are found); one face takes one driver."""
    if len(drivers) > 1 and face != "all":
        raise UsageError(
            f"--driving was given {len(drivers)} times: one face takes one driving video "
            "(several, one per face, go with --face all)."
        )


def _animate_group(
    args: argparse.Namespace,
    photo,
    sources: list,
    reference: str | int | None,
    retarget,
    fps: float,
    audio: str | None,
    out: Path,
    gif: Path | None,
) -> int:
    """``didlearn animate --face all``: every face, each with its own crop and driver."""
    from . import animate, group
    from .faces import describe_faces

    if not args.paste_back:
        raise UsageError(
            "--no-paste-back shows one face's crop: choose the face with --face N, or keep the "
            "whole photo for --face all."
        )
    found, lms = group.find_all_faces(photo)  # no face: fails before TensorFlow loads
    if not args.quiet:  # which face is which number: the order of the --driving videos
        print(f"{len(found)} face(s): {describe_faces(found)}", file=sys.stderr)
    if sources and len(sources) not in (1, len(lms)):
        raise UsageError(
            f"{len(sources)} driving videos for the {len(lms)} faces found: give --driving once "
            "for every face (in the order of their numbers) or once for all."
        )
    _start_tensorflow()
    t0 = time.perf_counter()
    animator = group.GroupAnimator(
        photo, landmarks=lms, **_animation_options(args, reference, retarget)
    )
    if sources:
        frames = animator.animate(sources, max_frames=args.max_frames)
    else:
        frames = animator.animate_template(args.template, args.duration, args.fps)
    paths = animate.save(frames, out, fps, audio_from=audio, gif=gif, overwrite=args.overwrite)
    _report(animator, paths, time.perf_counter() - t0, args.quiet)
    return 0


#: ``--reference`` when not given (chosen by measuring a driver that starts with an open mouth:
#: against its first frame the photo's lips crossed in 103 of 120 frames, against "auto" in
#: none; on the bundled clip both give none; see tests/test_motion_files.py and notebook 06).
DEFAULT_REFERENCE = "auto"


def _check_reference_options(args: argparse.Namespace) -> str | int:
    """The reference frame option, checked against the motion source: --reference and
    --audio say nothing about a template, --audio nothing about a video (it has its own)."""
    if args.template is not None and args.reference is not None:
        raise UsageError("--reference applies to --driving and --motion, not to --template.")
    if args.audio is not None and args.motion is None:
        raise UsageError(
            "--audio goes with --motion (a --driving video gives its own sound, a template none)."
        )
    if args.audio is not None and not Path(args.audio).expanduser().is_file():
        raise UsageError(f"--audio '{args.audio}' is not a file: check the path.")
    return DEFAULT_REFERENCE if args.reference is None else args.reference


def _check_reference_frame(reference: str | int, frames: int) -> None:
    """A frame number for --reference must be one of the driver's frames (checked up front;
    the library checks again once the driver is tracked)."""
    if isinstance(reference, int) and reference >= frames:
        raise UsageError(
            f"--reference {reference} is out of range: the driver has {frames} frames "
            f"(0 to {frames - 1}; --max-frames counts)."
        )


def _load_motion(args: argparse.Namespace):
    """The --motion file, cut to --max-frames, its reference frame checked."""
    from .driving import load_motion, resolve_reference

    motion = load_motion(args.motion).head(args.max_frames)
    reference = DEFAULT_REFERENCE if args.reference is None else args.reference
    if isinstance(reference, int):
        _check_reference_frame(reference, len(motion))
        # a frame without a face is refused too (a frame number needs no photo: any ks will do)
        resolve_reference(reference, motion, motion.landmarks[0])
    return motion


def _motion_audio(args: argparse.Namespace, motion) -> str | None:
    """The sound of an animation from a motion file: --audio, else the video the file was made
    from if it is still there, else none (said on stderr)."""
    if args.audio is not None:
        return args.audio
    if motion.source and Path(motion.source).is_file():
        return motion.source
    if motion.source:
        print(
            f"note: the motion file's video '{motion.source}' is not there any more: the "
            "output has no sound (give --audio FILE for some).",
            file=sys.stderr,
        )
    return None


def motion_command(args: argparse.Namespace) -> int:
    """``didlearn motion``: track a driving video, save its motion (checked before the work)."""
    from . import data
    from .driving import save_motion, track_driving

    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise UsageError(f"the motion file '{out}' must end in .npz (e.g. -o motion.npz).")
    _check_not_an_input([out], [args.video])
    data.check_output(out, args.overwrite)
    if Path(args.video).suffix.lower() in data.IMAGE_SUFFIXES:
        raise UsageError(f"'{args.video}' is an image: `didlearn motion` takes a video of a face.")
    data.video_info(args.video)  # unreadable video: fails here, before any work
    t0 = time.perf_counter()
    motion = track_driving(args.video, args.max_frames, progress=not args.quiet)
    print(save_motion(motion, out, overwrite=args.overwrite))
    if not args.quiet:
        print(
            f"{len(motion)} frames tracked in {time.perf_counter() - t0:.1f} s "
            f"({motion.bridged} without a face found)",
            file=sys.stderr,
        )
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """``didlearn demo``: the bundled portrait, driven by the bundled clip and by 'idle'."""
    from . import animate, data
    from .config import pick

    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        from .errors import OutputExistsError

        raise OutputExistsError(f"'{folder}' is a file: give a folder name with -o DIR.")
    folder.mkdir(parents=True, exist_ok=True)
    driving = data.sample_driving_video()
    _start_tensorflow()
    t0 = time.perf_counter()
    animator = animate.Animator(data.sample_portrait(), progress=not args.quiet)
    runs = [
        ("driven", animator.animate(driving, max_frames=pick(None, 10)), driving, None),
        ("idle", animator.animate_template("idle", pick(4.0, 0.4), 25.0), None, 25.0),
    ]
    written: list[Path] = []
    try:
        for name, frames, audio, fps in runs:
            rate = fps or data.video_info(driving).fps
            written += animate.save(
                frames,
                folder / f"portrait_{name}.mp4",
                rate,
                audio_from=audio,
                gif=folder / f"portrait_{name}.gif",
                overwrite=True,
            )
    except KeyboardInterrupt as stop:  # the clips done so far are complete: say so
        raise Stopped(getattr(stop, "signal", signal.SIGINT), written) from None
    print(f"demo ({animator.method}) written in {time.perf_counter() - t0:.1f} s:")
    for p in written:
        print(p)
    return 0


def templates_command(args: argparse.Namespace) -> int:
    """``didlearn templates``: names and descriptions."""
    from .templates import list_templates

    for name, desc in list_templates().items():
        print(f"{name:8s} {desc}")
    return 0


COMMANDS = {
    "animate": animate_command,
    "demo": demo_command,
    "templates": templates_command,
    "motion": motion_command,
}


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``kill``, a closed terminal), handled as Ctrl-C: the atomic writers
    remove their temporary files and TensorFlow's exit handlers run. ``written``: the files a
    command had completed before it was stopped."""

    def __init__(self, signum: int, written: list[Path] | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signum
        self.written = written or []


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Stopped` for the duration (main thread only)."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]  # no SIGHUP on Windows
    if threading.current_thread() is not threading.main_thread():
        names = []  # only the main thread may set handlers
    previous = {n: signal.signal(getattr(signal, n), stop) for n in names}
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)


def _fail(err: BaseException, message: str) -> int:
    """Print ``error: message`` as one line (the traceback too with ``DIDLEARN_DEBUG=1``)."""
    if os.environ.get(DEBUG_VARIABLE):
        import traceback

        traceback.print_exception(err)
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 = success)."""
    args = _parser().parse_args(argv)  # usage errors: argparse prints them, exits with 2
    try:
        with _stop_on_signals():
            return COMMANDS[args.command](args)
    except DidlearnError as err:
        # the library names its argument; a command-line user has the option instead
        return _fail(err, str(err).replace("pass overwrite=True", "pass --overwrite"))
    except BrokenPipeError:  # `didlearn templates | head -n1`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USER_ERROR
    except OSError as err:  # the machine said no: permissions, a full disk, a name too long
        where = f" ('{err.filename}')" if err.filename else ""
        return _fail(
            err,
            f"{err.strerror or err}{where}: check that the path exists and can be read (inputs) "
            "or written (outputs), and that the disk has room.",
        )
    except KeyboardInterrupt as err:
        done = " and ".join(map(str, getattr(err, "written", [])))
        what = f"{done} were written, nothing else" if done else "nothing was written"
        print(f"error: interrupted; {what}.", file=sys.stderr)
        return 128 + getattr(err, "signal", signal.SIGINT)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
