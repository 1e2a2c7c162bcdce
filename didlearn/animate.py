"""Animate a photo end to end (chapter 6): photo + driving video (or template) -> video.

The pipeline of the course, one frame batch at a time so a video of any length streams through
in constant memory::

    photo ─► faces.face_landmarks ─► faces.crop_face ─► crop, ks          (once)
    driving frame ─► driving.iter_tracked ─► kd_t                         (per frame)
    (or a whole driver: driving.track_driving / load_motion ─► DrivingMotion, and kd_0 its
     reference frame, driving.best_reference for reference="auto")
    (ks, kd_t, kd_0) ─► motion.transfer_relative ─► kp_t (crop pixels)    (per frame)
    (ks, kp_t) ─► retarget.Retarget.apply ─► kp_t (targets, pose/expression) (per frame)
    (crop, ks, kp_1..B) ─► renderer ─► B animated crops                   (per batch of B)
    crop_t ─► faces.paste_back ─► whole photo                             (per frame)
    frames ─► data.write_video (+ the driving video's audio)              (streamed)

The *renderer* is the only step that changes between methods: ``model`` is the trained
generator of chapter 4 (``generator.animate_crop``, with the inference guards of
``generator.guard_flow``: no folds beside the face, landmarks landed), ``thin_plate`` warps the
crop along the thin-plate-spline flow of chapter 3, and ``still``, ``similarity`` and
``piecewise_affine`` are the classical baselines of the benchmark. All renderers take and return
crop pixels: ``(crop (S, S, 3), ks (68, 2), kps (B, 68, 2)) -> (B, S, S, 3)`` float32 in [0, 1].
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .composite import CropMotion, NativeCompositor, compose_crop
from .driving import (  # noqa: F401  (DRIVING_MAX_SIDE, open_driving: re-exported as before)
    DRIVING_MAX_SIDE,
    DrivingMotion,
    check_reference,
    open_driving,
    resolve_reference,
    track_driving,
)
from .errors import UsageError
from .renderers import (  # noqa: F401  (the renderer API, re-exported where users animate)
    DEFAULT_METHOD,
    Renderer,
    load_models,
    make_renderer,
    renderer_entry,
    renderer_names,
)
from .retarget import Retarget

# --------------------------------------------------------------------------------------------
# The Animator
# --------------------------------------------------------------------------------------------


class Animator:
    """Animate one photo with driving videos or motion templates.

    Args:
        photo: (H, W, 3) float32 RGB in [0, 1], or uint8 (divided by 255); use
            ``data.load_image`` for files.
        method: a registered renderer (:func:`didlearn.renderers.renderer_names`) or
            ``"auto"`` (:data:`DEFAULT_METHOD`).
        face: which face of the photo (index into ``faces.detect_faces``, 0 = best).
        size: crop (model) resolution in pixels.
        relative: relative motion transfer (the photo keeps its face shape); False = absolute.
        intensity: motion scale (1 = the driver's motion, 0 = still, 2 = exaggerated).
        paste_back: put the animated crop back into the whole photo; False = output the crop.
        batch: frames rendered per call (bounds memory and sets the TF batch).
        models: trained models for ``method="model"`` (default: ``generator.load_pretrained``).
        fine_tune: per-photo fine-tuning steps of the model (``optimize.fine_tune``), 0 = none;
            with ``method="auto"`` it selects the model (other methods have nothing to tune).
        tps_step: thin-plate flow evaluated every ``tps_step`` pixels then interpolated.
        progress: show a tqdm progress bar.
        landmarks: the face's (68, 2) landmarks in the photo if already found (skips detection).
        reference: the driving frame relative motion is taken against: ``"first"`` (the first
            with a face; a video streams through, tracked as it is rendered), ``"auto"`` (the
            one whose pose and expression are closest to the photo's,
            :func:`didlearn.driving.best_reference`) or a frame number; the last two track the
            whole driver first.
        retarget: eye/mouth openness targets, head-pose offsets and the part of the motion to
            keep (:class:`didlearn.retarget.Retarget`), applied to every frame's target
            keypoints whatever the source (video, template, :meth:`animate_targets`).
        restore: ``None``, or restore the face region of the photo first
            (:func:`didlearn.restore.restore_face`: ``"denoise"`` or ``"scratches"``, Deep Image
            Prior, minutes on a CPU) and animate the restored photo; the face's landmarks are
            those found on (or given for) the photo as it came.
        restore_seed: seed of the restoration.

    Attributes:
        photo: the photo animated, (H, W, 3) float32 (restored if ``restore`` was asked).
        crop: the :class:`didlearn.faces.FaceCrop` of the face; ``source_kp`` its (68, 2)
            landmarks in crop pixels; ``method``: the resolved method.
        timings: seconds spent per stage in the last run (``track``, ``transfer``, ``render``,
            ``paste``), and ``frames`` rendered.
        bridged: driving frames whose face was not found (landmarks held from the last one).
        retarget: the :class:`~didlearn.retarget.Retarget` applied to every frame's targets
            (a neutral one, which changes nothing, by default).

    Raises:
        NoFaceFoundError: no face (or not face number ``face``) in the photo.
        UsageError: an unknown ``restore`` (or options that do not go together).
    """

    def __init__(
        self,
        photo: np.ndarray,
        method: str = "auto",
        face: int = 0,
        size: int = 256,
        relative: bool = True,
        intensity: float = 1.0,
        paste_back: bool = True,
        batch: int = 8,
        models: Any = None,
        fine_tune: int = 0,
        tps_step: int = 2,
        progress: bool = True,
        landmarks: np.ndarray | None = None,
        reference: str | int = "first",
        retarget: Retarget | None = None,
        restore: str | None = None,
        restore_seed: int = 0,
    ) -> None:
        from . import faces

        if restore is not None:
            from .restore import check_kind

            check_kind(restore)  # before any work
        photo = np.asarray(photo)
        if photo.dtype == np.uint8:  # as OpenCV or PIL give it: the course's floats in [0, 1]
            photo = photo / np.float32(255.0)
        self.photo = np.asarray(photo, dtype=np.float32)
        if landmarks is None:
            landmarks = faces.face_landmarks(self.photo, face)
        self.landmarks = np.asarray(landmarks, np.float32)  # (68, 2) full-photo pixels
        if restore is not None:
            from .restore import restore_face

            self.photo = restore_face(
                self.photo, restore, seed=restore_seed, progress=progress, face=self.landmarks
            )
        self.crop = faces.crop_face(self.photo, self.landmarks, size)
        self.source_kp = self.crop.to_crop(self.landmarks)
        if fine_tune > 0 and method == "auto":
            method = "model"  # fine-tuning is the model's: asking for it asks for the model
        elif fine_tune > 0 and method != "model":
            raise UsageError(
                f"fine-tuning applies to the trained model only, not to method '{method}': "
                "drop --fine-tune, or use --method model."
            )
        if method == "auto":
            method = DEFAULT_METHOD
        if models is None or not renderer_entry(method).needs_models:
            method, models = load_models(method)
        self.method, self.models = method, models
        if renderer_entry(method).needs_models and models.config.size != size:
            raise UsageError(
                f"the trained model renders {models.config.size}-pixel face crops, not {size}: "
                f"use size {models.config.size} (the default), or a warp such as thin_plate."
            )
        if fine_tune > 0 and method == "model":
            from . import optimize

            tuned = optimize.fine_tune(self.models, self.crop.image, self.source_kp, fine_tune)
            self.models = tuned if tuned is not None else self.models
        self.renderer = make_renderer(method, self.models, tps_step)
        self._compositor: NativeCompositor | None = None
        self.relative, self.intensity = bool(relative), float(intensity)
        self.paste_back, self.batch, self.progress = bool(paste_back), int(batch), progress
        self.timings: dict[str, float] = defaultdict(float)
        self.bridged = 0
        self.reference = check_reference(reference)
        self.reference_frame: int | None = None  # the driving frame the last run used
        self.retarget = retarget if retarget is not None else Retarget()

    # -- motion ---------------------------------------------------------------------------
    def transfer(self, driving_kp: np.ndarray, driving_kp0: np.ndarray) -> np.ndarray:
        """Driving landmarks (any coordinates) -> target keypoints in crop pixels.

        ``kp = ks + intensity * (transfer(ks, kd, kd0) - ks)`` with the relative or absolute
        transfer of chapter 3.
        """
        from .motion import transfer_absolute, transfer_relative

        ks = self.source_kp
        if self.relative:
            kp = transfer_relative(ks, driving_kp, driving_kp0)
        else:
            kp = transfer_absolute(ks, driving_kp, driving_kp0)
        return (ks + self.intensity * (kp - ks)).astype(np.float32)

    def motion(self, kps: np.ndarray) -> CropMotion:
        """The renderer's crop motion (flow, mask, colour) for target keypoints (B, 68, 2),
        retargeted first (:attr:`retarget`): every path to a frame comes through here, the
        group photo's faces included."""
        retargeted = np.stack(
            [self.retarget.apply(self.source_kp, kp) for kp in np.asarray(kps, np.float32)]
        )
        return self.renderer(self.crop.image, self.source_kp, retargeted.astype(np.float32))

    def render(self, kps: np.ndarray) -> np.ndarray:
        """Animated crops (B, S, S, 3) for target keypoints (B, 68, 2) in crop pixels."""
        return compose_crop(self.crop.image, self.motion(kps))

    def finish(
        self, flow: np.ndarray, mask: np.ndarray | None = None, colour: np.ndarray | None = None
    ) -> np.ndarray:
        """One frame's crop motion -> output frame: the whole photo at its own resolution
        (:class:`~didlearn.composite.NativeCompositor`), or the crop if ``paste_back`` is off."""
        if not self.paste_back:
            one = CropMotion(
                flow[None],
                None if mask is None else mask[None],
                None if colour is None else colour[None],
            )
            return compose_crop(self.crop.image, one)[0]
        if self._compositor is None:
            self._compositor = NativeCompositor(self.photo, self.crop)
        return self._compositor(flow, mask, colour)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the output frames."""
        if self.paste_back:
            return self.photo.shape[1], self.photo.shape[0]
        return self.crop.size, self.crop.size

    # -- streaming ----------------------------------------------------------------------------
    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.timings[stage] += time.perf_counter() - t0

    def _frames_from_keypoints(self, kps: Iterable[np.ndarray], total: int | None):
        """Render target keypoints in batches; yield finished frames one by one."""
        from tqdm.auto import tqdm

        bar = tqdm(
            total=total,
            desc=f"animate ({self.method})",
            unit="frame",
            disable=not self.progress,
            file=sys.stderr,
        )
        pending: list[np.ndarray] = []
        try:
            for kp in kps:
                pending.append(kp)
                if len(pending) == self.batch:
                    yield from self._flush(pending, bar)
                    pending = []
            if pending:
                yield from self._flush(pending, bar)
        finally:
            bar.close()

    def _flush(self, pending: list[np.ndarray], bar) -> Iterator[np.ndarray]:
        with self._timed("render"):
            motion = self.motion(np.stack(pending))
            crops = None if self.paste_back else compose_crop(self.crop.image, motion)
        for i in range(len(motion)):
            with self._timed("paste"):
                frame = self.finish(*motion.at(i)) if crops is None else crops[i]
            self.timings["frames"] += 1
            bar.update(1)
            yield frame

    def _track(self, frames: Iterator[np.ndarray], fps: float | None) -> Iterator[np.ndarray]:
        """Target keypoints per driving frame, streamed, against the first frame with a face
        (``reference="first"``); leading frames without a face stay neutral."""
        from .driving import iter_tracked

        stream = iter_tracked(frames, fps)
        kd0, waiting, bridged = None, 0, 0
        while True:
            with self._timed("track"):
                item = next(stream, None)  # iter_tracked raises NoFaceFoundError at its end
            if item is None:
                break
            kd, found = item
            bridged += not found
            if kd is None:
                waiting += 1
                continue
            if kd0 is None:
                kd0 = kd
                self.reference_frame = waiting
                for _ in range(waiting):  # keep the frame count (and the sync with the audio)
                    yield self.source_kp.copy()
            with self._timed("transfer"):
                kp = self.transfer(kd, kd0)
            yield kp
        self.bridged = bridged

    def track(self, driving: Any, max_frames: int | None = None) -> DrivingMotion:
        """The whole driver tracked (a :class:`~didlearn.driving.DrivingMotion` is returned
        as is, cut to ``max_frames``), with a progress bar if ``progress``."""
        if isinstance(driving, DrivingMotion):
            return driving.head(max_frames)
        with self._timed("track"):
            return track_driving(driving, max_frames, progress=self.progress)

    def motion_targets(self, motion: DrivingMotion) -> np.ndarray:
        """Target keypoints (T, 68, 2) in crop pixels for a tracked driver, relative to the
        frame :attr:`reference` names (``reference_frame`` says which); frames before the first
        face stay neutral.

        Raises:
            UsageError: a reference frame number out of range or without a face.
        """
        ref = resolve_reference(self.reference, motion, self.source_kp)
        self.reference_frame, self.bridged = ref, motion.bridged
        kd0, first = motion.landmarks[ref], motion.first_found
        with self._timed("transfer"):
            # frame by frame, exactly as the streamed path computes it
            kps = [
                self.source_kp.copy() if t < first else self.transfer(kd, kd0)
                for t, kd in enumerate(motion.landmarks)
            ]
        return np.stack(kps).astype(np.float32)

    def _streams(self, driving: Any) -> bool:
        return self.reference == "first" and not isinstance(driving, DrivingMotion)

    def driving_targets(self, driving: Any, max_frames: int | None = None) -> np.ndarray:
        """Target keypoints (T, 68, 2) in crop pixels, one per driving frame (tracked, smoothed,
        transferred): what :meth:`animate` renders, for :meth:`animate_targets`.

        Args:
            driving: a video path, a (T, H, W, 3) array, frames, or a ``DrivingMotion``.

        Raises:
            UnreadableMediaError: unreadable video; NoFaceFoundError: no face in any frame;
            UsageError: a reference frame out of range.
        """
        if self._streams(driving):
            frames, fps, _ = open_driving(driving, max_frames)
            return np.stack(list(self._track(frames, fps)))
        return self.motion_targets(self.track(driving, max_frames))

    def animate_targets(self, kps: np.ndarray) -> Iterator[np.ndarray]:
        """Frames of the photo for given target keypoints (T, 68, 2) in crop pixels, streamed."""
        kps = np.asarray(kps, np.float32)
        self.timings = defaultdict(float)
        return self._frames_from_keypoints(iter(kps), len(kps))

    def animate(self, driving: Any, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """Frames of the photo driven by a video or a tracked driver, streamed.

        With ``reference="first"`` a video streams through (tracked as it is rendered); with
        ``"auto"`` or a frame number it is tracked whole first, here, with its own progress bar.

        Args:
            driving: a video path, a (T, H, W, 3) array, an iterable of frames, or a
                :class:`~didlearn.driving.DrivingMotion` (e.g. from ``driving.load_motion``).
            max_frames: use at most this many driving frames.

        Yields:
            (H, W, 3) float32 frames (the whole photo, or the crop if ``paste_back`` is False).

        Raises:
            UnreadableMediaError: unreadable video (at the call); NoFaceFoundError: no face in
            any driving frame (at the end of the iteration when streamed, else at the call);
            UsageError: a reference frame out of range (at the call).
        """
        self.timings = defaultdict(float)
        if self._streams(driving):
            frames, fps, count = open_driving(driving, max_frames)
            return self._frames_from_keypoints(self._track(frames, fps), count)
        kps = self.motion_targets(self.track(driving, max_frames))
        return self._frames_from_keypoints(iter(kps), len(kps))

    def template_keypoints(
        self, name: str, duration: float = 4.0, fps: float = 25.0, seed: int = 0
    ) -> np.ndarray:
        """Target keypoints (T, 68, 2) in crop pixels of a motion template for this photo.

        Relative mode moves the photo's own landmarks (a 3-D rotation of *its* head); absolute
        mode puts the canonical face's landmarks, similarity-aligned, on the photo.
        """
        from .motion import transfer_absolute
        from .templates import make_template

        if self.relative:
            return make_template(name, duration, fps, self.intensity, self.source_kp, seed)
        traj = make_template(name, duration, fps, self.intensity, seed=seed)
        return transfer_absolute(self.source_kp, traj, traj[0])

    def animate_template(
        self, name: str, duration: float = 4.0, fps: float = 25.0, seed: int = 0
    ) -> Iterator[np.ndarray]:
        """Frames of the photo driven by a motion template (see :mod:`didlearn.templates`)."""
        kps = self.template_keypoints(name, duration, fps, seed)
        self.timings = defaultdict(float)
        return self._frames_from_keypoints(iter(kps), len(kps))

    def fps_report(self) -> dict[str, float]:
        """Frames per second of the last run, overall and per stage (ms per frame)."""
        return fps_report(self.timings)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


#: The GIF of an animation (``-o OUT.gif``, or ``--gif`` beside an MP4) is a small preview:
#: GIF keeps 256 colours a frame and compresses far less than H.264, so it gets at most
#: GIF_MAX_SIDE pixels on its longest side and the video's frame rate divided by GIF_RATE_DIVISOR.
GIF_MAX_SIDE = 320
GIF_RATE_DIVISOR = 2


def fps_report(timings: dict[str, float]) -> dict[str, float]:
    """``{stage}_ms`` (ms per frame) and ``fps`` of a run from its ``timings``: seconds per
    stage, and the frame count under ``"frames"``."""
    n = max(timings.get("frames", 0), 1)
    stages = {k: v for k, v in timings.items() if k != "frames"}
    total = sum(stages.values())
    report = {f"{k}_ms": 1000 * v / n for k, v in stages.items()}
    report["fps"] = n / total if total > 0 else float("inf")
    return report


def output_paths(
    path: str | os.PathLike, gif: str | os.PathLike | None = None
) -> tuple[Path | None, Path | None]:
    """Which files :func:`save` writes for ``path`` (and ``gif``): ``(mp4 or None, gif or None)``.

    The format follows the name: ``.mp4`` is an H.264 MP4, ``.gif`` the GIF preview (a ``gif``
    that names the same file adds nothing).

    Raises:
        UsageError: ``path`` ends in anything else, or ``gif`` does not end in ``.gif``.
    """
    from .data import MEDIA_OUTPUTS

    out = Path(path)
    kinds = "; ".join(f"{ending} writes {what}" for ending, what in MEDIA_OUTPUTS.items())
    if out.suffix.lower() not in MEDIA_OUTPUTS:
        other = f"'{out.suffix}'" if out.suffix else "no ending"
        example = out.suffix.lower() if out.suffix else ".mkv"
        raise UsageError(
            f"'{out}' has {other}: {kinds}. For another format, convert the MP4 afterwards "
            f"(e.g. `ffmpeg -i out.mp4 out{example}`)."
        )
    if gif is not None and Path(gif).suffix.lower() != ".gif":
        raise UsageError(f"the GIF '{gif}' must end in .gif.")
    if out.suffix.lower() == ".gif":
        if gif is not None and Path(gif).resolve() != out.resolve():
            raise UsageError(f"'{out}' is a GIF already: leave out the second GIF ('{gif}').")
        return None, out
    return out, None if gif is None else Path(gif)


def check_outputs(paths: Iterable[str | os.PathLike], overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` before any work if an output exists (and no overwrite)."""
    from .data import check_output

    for p in paths:
        check_output(p, overwrite)


def save(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    audio_from: str | os.PathLike | None = None,
    gif: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Stream frames to ``path``, an H.264 MP4 (with ``audio_from``'s audio) or a GIF preview
    as its ending says (:func:`output_paths`), and optionally to a GIF preview ``gif`` too.

    The GIF preview has at most :data:`GIF_MAX_SIDE` pixels and 1/:data:`GIF_RATE_DIVISOR` of
    the frame rate. Both outputs are written in one pass, in constant memory, to temporary files
    checked first and renamed when both are complete: nothing is half-written.

    Returns:
        The written paths (MP4 first).
    """
    from . import data

    mp4, preview = output_paths(path, gif)
    return data.write_media(
        frames,
        fps,
        mp4=mp4,
        gif=preview,
        audio_from=audio_from,
        overwrite=overwrite,
        gif_fps=fps / GIF_RATE_DIVISOR,
        gif_max_side=GIF_MAX_SIDE,
    )
