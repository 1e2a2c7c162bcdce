"""Saving and loading the models: the weights, with the settings they were trained and tuned with.

A saved model is ``<name>.json`` (the config, the :func:`weight_settings`, the package versions,
the git commit, and training ``info``) plus ``<name>_<part>.weights.h5`` for each part. The
weights depend on code settings that are not weights (the thin-plate flow the refiner learned to
correct, the guards' constants chosen for them): :func:`load_models` refuses weights saved with
other settings than the code's, rather than running a different model without a word.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..data import atomic_outputs
from ..errors import MissingResourceError, UsageError
from ..motion import TPS_SMOOTHING
from ..provenance import git_state, package_versions
from .architecture import PARTS, TPS_STEP, AnimationModels, GeneratorConfig, build_models
from .guards import (
    FOLD_GUARD_BLUR,
    FOLD_GUARD_FACTOR,
    FOLD_GUARD_GROW,
    FOLD_GUARD_PASSES,
    MOTION_FADE_PX,
    MOUTH_PAINT_GAIN,
)

#: Folder of the shipped weights inside the installed package (``didlearn/weights/``: package
#: data of ``didlearn`` itself, so one level above this subpackage).
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: Stem of the shipped weight files: ``animation.json`` + ``animation_<part>.weights.h5``.
WEIGHTS_NAME = "animation"


def weight_settings() -> dict[str, float | int]:
    """The code settings the weights were trained and tuned with (saved next to them).

    The refiner learned to correct the thin-plate flow of ``TPS_STEP`` and ``TPS_SMOOTHING``; the
    inference guards' constants were chosen for these weights. A change to any of them is a
    change of the model, so they are written with the weights and checked when they are read.
    """
    return {
        "tps_step": TPS_STEP,
        "tps_smoothing": TPS_SMOOTHING,
        "fold_guard_grow": FOLD_GUARD_GROW,
        "fold_guard_blur": FOLD_GUARD_BLUR,
        "fold_guard_passes": FOLD_GUARD_PASSES,
        "fold_guard_factor": FOLD_GUARD_FACTOR,
        "motion_fade_px": MOTION_FADE_PX,
        "mouth_paint_gain": MOUTH_PAINT_GAIN,
    }


def weight_files(folder: str | os.PathLike, name: str = WEIGHTS_NAME) -> dict[str, Path]:
    """The files of a saved model: ``{"config": .json, "refiner": .weights.h5, ...}``."""
    folder = Path(folder)
    files = {"config": folder / f"{name}.json"}
    files.update({p: folder / f"{name}_{p}.weights.h5" for p in PARTS})
    return files


def save_models(
    models: AnimationModels,
    folder: str | os.PathLike,
    name: str = WEIGHTS_NAME,
    info: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the JSON (config, :func:`weight_settings`, :func:`package_versions`,
    the git commit, ``info``) and the weights of the three parts, as one set: every file
    is written under a temporary name and renamed only when all of them are complete, so a
    failure leaves none behind (``data.atomic_outputs``).

    Returns:
        the written files (see :func:`weight_files`).

    Raises:
        OutputExistsError: one of the files exists and ``overwrite`` is False (nothing written).
    """
    files = weight_files(folder, name)
    meta = {
        "config": models.config.to_json(),
        "settings": weight_settings(),
        "versions": package_versions(),
        "git_commit": git_state()[0],
        "info": info or {},
    }
    with atomic_outputs(files.values(), overwrite) as temps:
        staged = dict(zip(files, temps, strict=True))
        staged["config"].write_text(json.dumps(meta, indent=2) + "\n")
        for p in PARTS:  # the temporary names end in .weights.h5, as Keras requires
            getattr(models, p).save_weights(str(staged[p]))
    return files


def verify_settings(saved: dict[str, Any] | None, source: str | os.PathLike) -> None:
    """Refuse weights saved with other :func:`weight_settings` than the code's.

    Args:
        saved: the ``settings`` block of a saved model's JSON; None for weights saved before
            settings were recorded (the code's constants are taken as theirs, without a warning).
        source: the JSON file, named in the message.

    Raises:
        UsageError: a setting differs (the message says which, and what to do).
    """
    if saved is None:
        return
    code = weight_settings()
    differ = [
        f"{key} saved {saved.get(key, 'nothing')}, code {code.get(key, 'nothing')}"
        for key in sorted(set(saved) | set(code))
        if key not in saved or key not in code or saved[key] != code[key]
    ]
    if differ:
        raise UsageError(
            f"{source} was saved with other settings than this code's ({'; '.join(differ)}): "
            "these weights would run as a different model. Use the didlearn version they were "
            "saved with (its git commit is in the file), set the constants back (listed by "
            "didlearn.generator.weight_settings()), or load them with check_settings=False to "
            "train them on for the new settings and save them again."
        )


def load_models(
    folder: str | os.PathLike, name: str = WEIGHTS_NAME, check_settings: bool = True
) -> AnimationModels:
    """Rebuild the models from a :func:`save_models` folder and load their weights.

    Args:
        check_settings: refuse weights saved with other :func:`weight_settings` than the
            code's (False: load them anyway, e.g. to fine-tune them for the new settings).

    Raises:
        MissingResourceError: a file is missing (the message lists which).
        UsageError: the saved settings differ from the code's (see :func:`verify_settings`).
    """
    files = weight_files(folder, name)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise MissingResourceError(
            f"model files not found: {', '.join(missing)}. Train with `python -m "
            "didlearn.optimize` or reinstall didlearn (pip install -e .) to get the shipped ones."
        )
    meta = json.loads(files["config"].read_text())
    if check_settings:
        verify_settings(meta.get("settings"), files["config"])
    models = build_models(GeneratorConfig.from_json(meta["config"]))
    for p in PARTS:
        getattr(models, p).load_weights(str(files[p]))
    models.info.update(meta.get("info", {}))
    return models


def load_pretrained() -> AnimationModels:
    """The weights shipped inside the package (``didlearn/weights/``), loaded offline."""
    return load_models(WEIGHTS_DIR, WEIGHTS_NAME)
