"""The chapter 4 widget's callbacks, on small untrained models (no browser, no weights)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from didlearn import generator
from didlearn.widgets import generator as wg

S = 64  # a small crop keeps the models fast; any multiple of 32 works


@pytest.fixture(scope="module")
def models():
    return generator.build_models(generator.GeneratorConfig(size=S), seed=0)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    photo = rng.random((S, S, 3)).astype(np.float32)
    ks = rng.uniform(16, 48, (68, 2)).astype(np.float32)
    kps = np.stack([ks, ks + np.float32([3.0, 0.0]), ks + rng.normal(0, 1, ks.shape)])
    return photo, ks, kps.astype(np.float32)


def test_views_are_pictures(models, scene):
    photo, ks, kps = scene
    views = wg.generator_views(models, photo, ks, kps[1])
    assert set(wg.VIEWS) <= set(views)
    for name in wg.VIEWS:
        assert views[name].shape == (S, S, 3), name
        assert views[name].dtype == np.float32, name
        assert 0.0 <= views[name].min() and views[name].max() <= 1.0, name
    stats = views["stats"]
    assert 0.0 <= stats["occlusion"] <= 1.0 and 0.0 <= stats["mask"] <= 1.0
    assert stats["flow_px"] > 1.0  # the keypoints moved 3 px


def test_untrained_views_are_thin_plate_warping(models, scene):
    photo, ks, kps = scene
    views = wg.generator_views(models, photo, ks, kps[0])  # no motion
    assert views["stats"]["residual_px"] == 0.0  # the residual layer starts at zero
    assert views["stats"]["occlusion"] > 0.95 and views["stats"]["mask"] > 0.95  # trust the warp
    assert np.abs(views["warped"] - photo).max() < 1e-3  # zero flow: the photo itself
    assert np.abs(views["frame"] - photo).mean() < 0.01
    np.testing.assert_allclose(views["residual"], 1.0)  # zero residual is white


def test_features_can_be_passed_once(models, scene):
    photo, ks, kps = scene
    feats = models.encoder(photo[None], training=False)
    a = wg.generator_views(models, photo, ks, kps[2], features=feats)
    b = wg.generator_views(models, photo, ks, kps[2])
    np.testing.assert_allclose(a["frame"], b["frame"], atol=1e-5)


def test_render_returns_a_figure_for_every_view(models, scene):
    photo, ks, kps = scene
    truth = np.repeat(photo[None], len(kps), axis=0)
    for view in wg.VIEWS:
        fig = wg.render_generator(models, photo, ks, kps, t=1, view=view, truth=truth)
        assert len(fig.axes) == 4
        plt.close(fig)
    fig = wg.render_generator(models, photo, ks, kps, t=2)  # no truth: keypoints only
    assert "keypoints" in fig.axes[1].get_title()
    plt.close(fig)


def test_render_refuses_bad_arguments(models, scene):
    photo, ks, kps = scene
    with pytest.raises(ValueError, match="unknown view"):
        wg.render_generator(models, photo, ks, kps, view="teeth")
    with pytest.raises(IndexError):
        wg.render_generator(models, photo, ks, kps, t=len(kps))
    with pytest.raises(ValueError, match="64x64"):
        wg.generator_views(models, np.zeros((32, 32, 3), np.float32), ks, kps[0])


def test_widget_wires_slider_and_buttons(models, scene):
    photo, ks, kps = scene
    box = wg.generator_widget(models, photo, ks, kps)
    slider, buttons, guards, _ = box.children
    assert slider.max == len(kps) - 1 and list(buttons.options) == list(wg.VIEWS)
    assert guards.value is False  # the chapter 4 view: the models' own flow
    slider.value = 2  # what the browser does; the callback runs without error
    buttons.value = "mask"
    guards.value = True
    plt.close("all")


def test_folds_view_shows_where_the_warp_folds(models, scene):
    photo, ks, kps = scene
    flat = wg.generator_views(models, photo, ks, kps[1])  # a 3 px shift folds nowhere
    assert flat["stats"]["folded"] == 0.0
    mirrored = ks.copy()
    mirrored[:, 0] = S - 1 - ks[:, 0]  # every keypoint reflected: the spline mirrors the face
    folds = wg.generator_views(models, photo, ks, mirrored)
    assert folds["stats"]["folded"] > 0.1
    assert not np.allclose(folds["folds"], flat["folds"])


def test_guards_reach_the_views(models, scene):
    photo, ks, kps = scene
    raw = wg.generator_views(models, photo, ks, kps[2])
    guarded = wg.generator_views(models, photo, ks, kps[2], guards=True)
    assert np.abs(guarded["frame"] - raw["frame"]).max() > 1e-4
