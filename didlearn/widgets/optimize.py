"""Chapter 5 widget: train on one fixed batch with your own learning rate and loss weights.

Every run starts from the same models (a copy is trained, the originals never change), takes
``steps`` Adam steps on the same fixed batch and records the loss terms at every step. Runs pile
up on one plot, so the curves of different learning rates or weights can be compared: too small
a rate barely moves, a good one goes down steadily, too large a rate jumps around or climbs.

The steps are the package's own train step (``optimize.make_train_step``) run eagerly (no
``tf.function``): no tracing wait before the first step, which is what matters for a handful of
steps; ``optimize.fit`` compiles the same step for long runs. The loss-weight sliders are the
terms of the loss registry (``optimize.LOSS_TERMS``): a new term gets its slider by itself.

The callbacks are plain functions, tested without a browser: :func:`run_steps` trains and
returns a :class:`TrainRun`, :func:`draw_runs` draws the curves and the last output, and
:func:`train_widget` only wires them to ipywidgets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TrainRun", "draw_runs", "run_label", "run_steps", "train_widget"]


@dataclass
class TrainRun:
    """One widget run.

    Attributes:
        lr: Adam learning rate.
        weights: the ``LossWeights`` used.
        history: one dict per step: the loss terms (``l1``, ``total``, and every other term of
            ``optimize.LOSS_TERMS`` whose weight is not 0) at the weights *before* that step's
            update, as ``optimize.fit`` records them.
        frame: ``(S, S, 3)`` the output for the batch's first pair after the last step.
        final: the loss terms after the last step (one more forward pass).
        seconds: wall time of the run.
    """

    lr: float
    weights: Any
    history: list[dict[str, float]] = field(default_factory=list)
    frame: np.ndarray | None = None
    final: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def run_label(run: TrainRun) -> str:
    """A short legend entry, e.g. ``lr 2e-04 | l1 1, perc 0.1, kp 10, ...`` (every loss term)."""
    from ..optimize import LOSS_TERMS

    terms = ", ".join(f"{t.short} {getattr(run.weights, t.name):g}" for t in LOSS_TERMS.values())
    return f"lr {run.lr:.0e} | {terms}"


def run_steps(
    models, batch: Sequence, steps: int = 10, lr: float = 2e-4, **weights: float | None
) -> TrainRun:
    """Train a copy of ``models`` for ``steps`` Adam steps on one fixed batch.

    Args:
        models: ``generator.AnimationModels`` to start from (left unchanged).
        batch: ``(source, driving, ks, kd)``: ``(B, S, S, 3)`` frames, ``(B, N, 2)`` landmarks.
        steps: number of updates (at least 1).
        lr: Adam learning rate (> 0).
        weights: loss weights by term name (``l1=``, ``perceptual=``, ``keypoint=``, ...: the
            terms of ``optimize.LOSS_TERMS``; >= 0, 0 leaves a term out; None or not given:
            ``optimize.LossWeights``' default, the one training uses).

    Returns:
        A :class:`TrainRun`.

    Raises:
        ValueError: ``steps < 1``, ``lr <= 0``, a negative weight or an unknown term.
    """
    import tensorflow as tf

    from .. import generator, optimize

    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")
    given = {k: v for k, v in weights.items() if v is not None}
    unknown = sorted(set(given) - set(optimize.LOSS_TERMS))
    if unknown:
        known = ", ".join(optimize.LOSS_TERMS)
        raise ValueError(f"unknown loss term(s) {', '.join(unknown)}: use one of {known}")
    if given and min(given.values()) < 0:
        listed = ", ".join(f"{k}={v}" for k, v in given.items())
        raise ValueError(f"loss weights must be >= 0, got {listed}")
    loss_weights = optimize.LossWeights(**{k: float(v) for k, v in given.items()})
    source, driving, ks, kd = (tf.convert_to_tensor(x, tf.float32) for x in batch)
    twin = optimize.copy_models(models)
    optimizer = optimize.make_optimizer(float(lr))
    step = optimize.make_train_step(twin, optimizer, loss_weights, compiled=False)
    run = TrainRun(lr=float(lr), weights=loss_weights)
    t0 = time.perf_counter()
    for i in range(int(steps)):
        losses = step((source, driving, ks, kd))
        run.history.append({"step": i + 1, **{k: float(v) for k, v in losses.items()}})
    out = generator.forward(twin, source, ks, kd)
    final = optimize.compute_losses(out, driving, ks, kd, loss_weights)
    run.final = {k: float(v) for k, v in final.items()}
    run.frame = np.clip(out["frame"][0].numpy(), 0.0, 1.0)
    run.seconds = time.perf_counter() - t0
    return run


def draw_runs(runs: Sequence[TrainRun], target: np.ndarray | None = None) -> Any:
    """Pixel L1 and keypoint loss per step for every run, and the last run's output frame.

    The unweighted terms are plotted (not the weighted total), so runs with different weights
    share one axis. ``target``: the true frame of the batch's first pair, shown next to it.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = 3 if target is None else 4
    fig, axes = plt.subplots(1, panels, figsize=(3.4 * panels, 3.1))
    for key, ax in zip(("l1", "keypoint"), axes[:2], strict=True):
        for i, run in enumerate(runs):
            if key not in run.history[0]:
                continue
            x = [h["step"] for h in run.history] + [len(run.history) + 1]
            y = [h[key] for h in run.history] + [run.final[key]]
            ax.plot(x, y, "o-", ms=3, color=f"C{i % 10}", label=run_label(run))
        ax.set_title({"l1": "pixel L1", "keypoint": "keypoint loss"}[key])
        ax.set_xlabel("step (the last point: after the last update)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if runs:
        axes[0].legend(fontsize=7)
        last = runs[-1]
        axes[2].imshow(last.frame)
        axes[2].set_title(f"last run: output (L1 {last.final['l1']:.4f})", fontsize=9)
    else:
        axes[2].text(0.5, 0.5, "no run yet: press 'train'", ha="center", va="center")
    axes[2].set_axis_off()
    if target is not None:
        axes[3].imshow(np.clip(target, 0, 1))
        axes[3].set_title("target (true driving frame)", fontsize=9)
        axes[3].set_axis_off()
    fig.tight_layout()
    return fig


def train_widget(models, batch: Sequence) -> Any:
    """Sliders (learning rate, steps, loss weights), 'train' and 'clear' buttons, the plot."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .. import optimize

    lr = widgets.FloatLogSlider(value=2e-4, base=10, min=-6, max=-1, step=0.25, description="lr")
    steps = widgets.IntSlider(value=8, min=1, max=40, description="steps")
    sliders = {  # one per registered loss term, starting at the weight training uses
        t.name: widgets.FloatSlider(
            value=t.default, min=0, max=t.top, step=t.step, description=f"w {t.name}"
        )
        for t in optimize.LOSS_TERMS.values()
    }
    train = widgets.Button(description="train", button_style="primary")
    clear = widgets.Button(description="clear")
    out = widgets.Output()
    runs: list[TrainRun] = []
    target = np.asarray(batch[1][0])

    def redraw(message: str = "") -> None:
        out.clear_output(wait=True)
        with out:
            if message:
                print(message)
            display(draw_runs(runs, target))
            plt.close("all")

    def on_train(_) -> None:
        with out:
            print(f"training {steps.value} steps ...")
        weights = {term: slider.value for term, slider in sliders.items()}
        run = run_steps(models, batch, steps.value, lr.value, **weights)
        runs.append(run)
        redraw(
            f"{run_label(run)}: {run.seconds:.1f} s, L1 {run.history[0]['l1']:.4f} -> "
            f"{run.final['l1']:.4f}"
        )

    def on_clear(_) -> None:
        runs.clear()
        redraw()

    train.on_click(on_train)
    clear.on_click(on_clear)
    redraw()
    rows = [
        widgets.HBox([lr, steps]),
        widgets.HBox(list(sliders.values())),
        widgets.HBox([train, clear]),
    ]
    return widgets.VBox([*rows, out])
