"""The chapter 5 widget's callbacks on tiny models (64x64 crops), without a browser."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from didlearn import generator, optimize
from didlearn.optimize import LossTerm, LossWeights
from didlearn.widgets.optimize import TrainRun, draw_runs, run_label, run_steps, train_widget

SIZE = 64


@pytest.fixture(scope="module")
def tiny():
    """Small untrained models and one batch of two smooth frames with 68 scattered landmarks."""
    config = generator.GeneratorConfig(
        size=SIZE, refiner_channels=(8, 8, 8), encoder_channels=(4, 4, 8), residual_blocks=1
    )
    models = generator.build_models(config, seed=0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy)], -1)
    source = np.stack([base, base[:, ::-1]]).astype(np.float32)
    driving = np.roll(source, 2, axis=2)
    ks = rng.uniform(12, SIZE - 12, (2, 68, 2)).astype(np.float32)
    kd = (ks + rng.normal(0, 1.5, ks.shape)).astype(np.float32)
    return models, (source, driving, ks, kd)


@pytest.fixture(scope="module")
def run(tiny):
    """One short run (the only training in this file: eager steps are slow on a busy CPU)."""
    models, batch = tiny
    before = [w.copy() for w in models.refiner.get_weights()]
    result = run_steps(models, batch, steps=3, lr=3e-3, perceptual=0.0, keypoint=10.0)
    return result, before


def test_run_steps_records_every_step_and_lowers_the_loss(run):
    result, _ = run
    assert [h["step"] for h in result.history] == [1, 2, 3]
    # perceptual weight 0: no perceptual term
    assert set(result.history[0]) == {"step", "l1", "keypoint", "colour", "paint", "mouth", "total"}
    assert set(result.final) == {"l1", "keypoint", "colour", "paint", "mouth", "total"}
    assert all(np.isfinite(h["total"]) for h in result.history)
    assert result.final["total"] < result.history[0]["total"]
    assert result.frame.shape == (SIZE, SIZE, 3)
    assert 0 <= result.frame.min() <= result.frame.max() <= 1
    assert "lr 3e-03" in run_label(result) and "kp 10" in run_label(result)
    # weights not given are training's defaults
    assert result.weights == LossWeights(perceptual=0.0, keypoint=10.0)


def test_the_models_given_are_left_unchanged(tiny, run):
    models, _ = tiny
    _, before = run
    for a, b in zip(before, models.refiner.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_settings_are_refused_before_any_work(tiny):
    models, batch = tiny
    with pytest.raises(ValueError, match="positive"):
        run_steps(models, batch, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="at least 1"):
        run_steps(models, batch, steps=0)
    with pytest.raises(ValueError, match=">= 0"):
        run_steps(models, batch, steps=1, keypoint=-1.0)


def test_draw_runs(tiny, run):
    _, batch = tiny
    fig = draw_runs([], batch[1][0])  # no run yet: a message, and the target
    assert len(fig.axes) == 4
    plt.close(fig)
    no_kp = TrainRun(
        lr=1e-2,
        weights=LossWeights(keypoint=0.0),
        history=[{"step": 1, "l1": 0.2, "total": 0.2}],
        frame=np.zeros((SIZE, SIZE, 3), np.float32),
        final={"l1": 0.1, "total": 0.1},
    )
    fig = draw_runs([run[0], no_kp])
    assert len(fig.axes) == 3
    l1_lines, kp_lines = fig.axes[0].get_lines(), fig.axes[1].get_lines()
    assert [len(line.get_xdata()) for line in l1_lines] == [4, 2]  # steps + the final point
    assert len(kp_lines) == 1  # the run without keypoint loss has no keypoint curve
    plt.close(fig)


def test_widget_builds(tiny):
    models, batch = tiny
    box = train_widget(models, batch)
    assert len(box.children) == 4
    plt.close("all")


def _slider_terms(box) -> list[str]:
    return [s.description.removeprefix("w ") for s in box.children[1].children]


def test_the_sliders_are_the_loss_registry(tiny, monkeypatch):
    models, batch = tiny
    box = train_widget(models, batch)
    assert _slider_terms(box) == list(optimize.LOSS_TERMS)
    assert [s.value for s in box.children[1].children] == [
        t.default for t in optimize.LOSS_TERMS.values()
    ]
    # a term registered later gets its slider, with its own default and range
    dummy = LossTerm("dummy", lambda *a: 0.0, 0.25, "a test term", "dm", top=3.0, step=0.5)
    monkeypatch.setitem(optimize.LOSS_TERMS, "dummy", dummy)
    box = train_widget(models, batch)
    assert _slider_terms(box)[-1] == "dummy"
    slider = box.children[1].children[-1]
    assert (slider.value, slider.max, slider.step) == (0.25, 3.0, 0.5)
    plt.close("all")


def test_unknown_terms_are_refused(tiny):
    models, batch = tiny
    with pytest.raises(ValueError, match="unknown loss term.*l1"):
        run_steps(models, batch, steps=1, folds=1.0)
