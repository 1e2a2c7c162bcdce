"""What :func:`fit` writes into its log folder besides the checkpoints, and how to read it back.

::

    log_dir/config.json   everything the run was started with (written atomically at each start)
    log_dir/log.csv       one row per step: step, seconds, every loss term, total (appended)
    log_dir/losses.png    the loss curves (written atomically at the end)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..provenance import git_state, package_versions

#: Files of a log folder.
CONFIG_FILE, LOG_FILE, PLOT_FILE = "config.json", "log.csv", "losses.png"


def run_config(models: Any, weights: Any, training: Mapping[str, Any]) -> dict[str, Any]:
    """The whole configuration of a training run, as JSON-ready values.

    Args:
        models: the ``generator.AnimationModels`` trained (their config is recorded).
        weights: the ``LossWeights``.
        training: the training options (steps, batch, lr, seed, clips, ...).
    """
    from .. import generator

    commit, dirty = git_state()
    return {
        "loss_weights": dataclasses.asdict(weights),
        "model_config": dataclasses.asdict(models.config),
        "weight_settings": generator.weight_settings(),
        "training": dict(training),
        "versions": package_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def write_config(log_dir: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Write ``config`` to ``log_dir/config.json`` atomically (replacing an older one)."""
    from ..data import atomic_output

    path = Path(log_dir, CONFIG_FILE)
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=str) + "\n")
    return path


def read_config(log_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a :func:`fit` run."""
    return json.loads(Path(log_dir, CONFIG_FILE).read_text())


class CsvLog:
    """``log.csv`` opened for appending: a header when the file is new, one flushed row a step."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.new = not Path(path).exists()
        self.file: TextIO = open(path, "a", newline="")
        self.writer = csv.writer(self.file)

    def write(self, row: Mapping[str, float]) -> None:
        if self.new:
            self.writer.writerow(list(row))
            self.new = False
        self.writer.writerow([f"{v:.6g}" for v in row.values()])
        self.file.flush()  # a run stopped mid-way keeps its rows

    def close(self) -> None:
        self.file.close()


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``log.csv`` written by :func:`fit`."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_history(history: Sequence[dict[str, float]], smooth: int = 25):
    """Loss curves (one panel per term, raw and moving average); returns the figure."""
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k not in ("step", "seconds")]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    steps = np.array([h["step"] for h in history])
    for ax, key in zip(axes[0], keys, strict=True):
        y = np.array([h[key] for h in history])
        ax.plot(steps, y, color="0.75", lw=0.8)
        k = max(1, min(smooth, len(y) // 4))
        if k > 1:
            ax.plot(steps[k - 1 :], np.convolve(y, np.ones(k) / k, "valid"), color="C0")
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig


def save_loss_plot(log_dir: str | os.PathLike) -> Path:
    """Plot the whole ``log.csv`` of ``log_dir`` into ``losses.png`` (atomically)."""
    import matplotlib.pyplot as plt

    from ..data import atomic_output

    path = Path(log_dir, PLOT_FILE)
    fig = plot_history(read_log(Path(log_dir, LOG_FILE)))
    try:
        with atomic_output(path, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)  # a figure per fit would pile up in a long session
    return path
