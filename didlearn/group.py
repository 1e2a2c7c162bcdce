"""Every face of a group photo (chapter 6): one :class:`~didlearn.animate.Animator` per face,
their motions blended into one photo.

::

    photo ─► faces.find_faces ─► every face's 68 landmarks                (once)
    each face ─► Animator (its own crop; the models loaded once, shared)  (once)
    driver(s) ─► Animator.driving_targets, per face ─► kp_i,t             (once per face)
    (kp_1,t .. kp_K,t) ─► Animator.motion, per face ─► CropMotion_i       (per batch)
    CropMotion_1..K ─► composite.GroupCompositor ─► whole photo           (per frame)

Each face follows one driver: the same for all, or one per face in the order of
:func:`find_all_faces` (the indices ``--face N`` takes). Where two faces' crops overlap, the
compositor blends their motion fields (not their pictures), so no seam appears.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .animate import Animator, fps_report
from .composite import GroupCompositor
from .errors import NoFaceFoundError, UsageError
from .faces import Face, face_landmarks, find_faces
from .renderers import DEFAULT_METHOD, load_models, renderer_entry
from .restore import check_kind, restore_face


def find_all_faces(photo: np.ndarray) -> tuple[list[Face], list[np.ndarray]]:
    """Every face found in ``photo``, best first (the order of ``faces.find_faces``, the
    indices of ``face=N``), and each face's (68, 2) landmarks.

    Raises:
        NoFaceFoundError: no face at all.
    """
    found, tried = find_faces(photo)
    if not found:
        h, w = photo.shape[:2]
        raise NoFaceFoundError(
            f"No face was found in the {w}x{h} photo (tried {', '.join(tried)}): nothing to "
            "animate. Try a photo where the faces are larger (at least ~80 pixels wide)."
        )
    return found, [face_landmarks(photo, f) for f in found]


class GroupAnimator:
    """Animate every face of a photo at once.

    Args:
        photo: (H, W, 3) float32 RGB in [0, 1] (or uint8).
        landmarks: each face's (68, 2) landmarks in the photo; None = every face found
            (:func:`find_all_faces`).
        method: as for :class:`~didlearn.animate.Animator`; the models it needs are loaded once
            and shared by every face (``fine_tune`` tunes a copy per face).
        batch: frames rendered per call, per face.
        progress: show a tqdm progress bar.
        models: trained models for ``method="model"`` (default: loaded once).
        fine_tune: per-face fine-tuning steps (see ``Animator``).
        restore: ``None``, ``"denoise"`` or ``"scratches"``: every face's region restored
            first (:func:`didlearn.restore.restore_face`, one face box after the other, in the
            faces' order), then the restored photo animated.
        restore_seed: seed of the restorations.
        **options: the other :class:`~didlearn.animate.Animator` arguments (``size``,
            ``relative``, ``intensity``, ...), the same for every face.

    Attributes:
        photo: the photo animated, (H, W, 3) float32 (restored if ``restore`` was asked).
        animators: one :class:`~didlearn.animate.Animator` per face, in order.
        compositor: the :class:`~didlearn.composite.GroupCompositor` of their crops.
        timings: seconds per stage of the last run (``track``, ``render``, ``paste``), ``frames``.

    Raises:
        UsageError: ``paste_back=False`` (a crop shows one face: animate that face alone), or
            an unknown ``restore``.
    """

    def __init__(
        self,
        photo: np.ndarray,
        landmarks: Sequence[np.ndarray] | None = None,
        method: str = "auto",
        batch: int = 8,
        progress: bool = True,
        models: Any = None,
        fine_tune: int = 0,
        restore: str | None = None,
        restore_seed: int = 0,
        **options: Any,
    ) -> None:
        if not options.get("paste_back", True):
            raise UsageError(
                "a face crop shows one face: to animate every face, keep the whole photo "
                "(paste_back=True), or animate one face with an Animator."
            )
        if restore is not None:
            check_kind(restore)  # before any work
        photo = np.asarray(photo)
        if photo.dtype == np.uint8:
            photo = photo / np.float32(255.0)
        self.photo = np.asarray(photo, np.float32)
        lms = find_all_faces(self.photo)[1] if landmarks is None else list(landmarks)
        if not lms:
            raise UsageError("GroupAnimator needs the landmarks of at least one face.")
        if restore is not None:  # one face box after the other, found on the photo as given
            for lm in lms:
                self.photo = restore_face(
                    self.photo, restore, seed=restore_seed, progress=progress, face=lm
                )
        if models is None:
            # load once for every face; fine-tuning asks for the model (as in the Animator)
            wanted = "model" if fine_tune > 0 and method == "auto" else method
            if renderer_entry(DEFAULT_METHOD if wanted == "auto" else wanted).needs_models:
                method, models = load_models(wanted)
        self.animators = [
            Animator(
                self.photo,
                landmarks=lm,
                method=method,
                models=models,
                fine_tune=fine_tune,
                batch=batch,
                progress=progress and fine_tune > 0,  # the fine-tuning's own bar, per face
                **options,
            )
            for lm in lms
        ]
        self.method = self.animators[0].method
        self.batch, self.progress = int(batch), progress
        self.compositor = GroupCompositor(self.photo, [a.crop for a in self.animators])
        self.timings: dict[str, float] = defaultdict(float)

    def __len__(self) -> int:
        return len(self.animators)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the output frames: the photo's."""
        return self.photo.shape[1], self.photo.shape[0]

    # -- targets ---------------------------------------------------------------------------
    def drivers_for_faces(self, drivers: Sequence[Any]) -> list[Any]:
        """One driver per face: a single driver for every face, or one per face in order.

        Raises:
            UsageError: neither one driver nor one per face.
        """
        drivers = list(drivers)
        if len(drivers) == 1:
            return drivers * len(self)
        if len(drivers) != len(self):
            raise UsageError(
                f"{len(drivers)} drivers for {len(self)} faces: give one driver for every face "
                "(in the order of the faces), or one for all."
            )
        return drivers

    def driving_targets(
        self, drivers: Sequence[Any], max_frames: int | None = None
    ) -> list[np.ndarray]:
        """Each face's target keypoints (T_i, 68, 2) in its crop's pixels, from its driver
        (:meth:`drivers_for_faces`): tracked once per face."""
        t0 = time.perf_counter()
        per_face = self.drivers_for_faces(drivers)
        targets = [
            a.driving_targets(d, max_frames) for a, d in zip(self.animators, per_face, strict=True)
        ]
        self.timings["track"] += time.perf_counter() - t0
        return targets

    def template_targets(
        self, name: str, duration: float = 4.0, fps: float = 25.0, seed: int = 0
    ) -> list[np.ndarray]:
        """Each face's target keypoints (T, 68, 2) for a motion template (its own head moved)."""
        return [a.template_keypoints(name, duration, fps, seed) for a in self.animators]

    # -- frames ----------------------------------------------------------------------------
    def animate_targets(self, targets: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        """Frames (H, W, 3) float32 of the whole photo, streamed, for each face's target
        keypoints (T_i, 68, 2) in crop pixels.

        The video is as long as the first face's targets (the audio comes from its driver): a
        shorter driver holds its last pose, a longer one is cut.
        """
        if len(targets) != len(self):
            raise ValueError(f"{len(targets)} target sequences for {len(self)} faces")
        length = len(targets[0])
        kps = [_fit_length(np.asarray(t, np.float32), length) for t in targets]
        return self._frames(kps, length)

    def animate(
        self, drivers: Sequence[Any], max_frames: int | None = None
    ) -> Iterator[np.ndarray]:
        """Frames of the photo, every face driven by its video (see :meth:`drivers_for_faces`).

        The drivers are tracked before the first frame is yielded.
        """
        self.timings = defaultdict(float)
        targets = self.driving_targets(drivers, max_frames)
        return self.animate_targets(targets)

    def animate_template(
        self, name: str, duration: float = 4.0, fps: float = 25.0, seed: int = 0
    ) -> Iterator[np.ndarray]:
        """Frames of the photo, every face moved by the same motion template."""
        self.timings = defaultdict(float)
        return self.animate_targets(self.template_targets(name, duration, fps, seed))

    def _frames(self, kps: list[np.ndarray], length: int) -> Iterator[np.ndarray]:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=length,
            desc=f"animate {len(self)} faces ({self.method})",
            unit="frame",
            disable=not self.progress,
            file=sys.stderr,
        )
        try:
            for start in range(0, length, self.batch):
                t0 = time.perf_counter()
                motions = [
                    a.motion(k[start : start + self.batch])
                    for a, k in zip(self.animators, kps, strict=True)
                ]
                self.timings["render"] += time.perf_counter() - t0
                for i in range(len(motions[0])):
                    t0 = time.perf_counter()
                    frame = self.compositor([m.at(i) for m in motions])
                    self.timings["paste"] += time.perf_counter() - t0
                    self.timings["frames"] += 1
                    bar.update(1)
                    yield frame
        finally:
            bar.close()

    def fps_report(self) -> dict[str, float]:
        """Frames per second of the last run, overall and per stage (ms per frame)."""
        return fps_report(self.timings)


def _fit_length(kps: np.ndarray, length: int) -> np.ndarray:
    """``kps`` (T, 68, 2) cut to ``length`` frames, or padded by repeating its last frame."""
    if len(kps) >= length:
        return kps[:length]
    return np.concatenate([kps, np.repeat(kps[-1:], length - len(kps), axis=0)])
