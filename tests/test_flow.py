"""Tests of didlearn.flow: warp, visualisation, .flo files, metrics, estimators, bad input."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from didlearn import flow as fl
from didlearn.errors import InvalidFlowError


def _image(h=40, w=50, c=3, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


def _grid(h, w):
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return gx, gy


# ---------------------------------------------------------------------------- warp


def test_zero_flow_is_identity_for_both_paddings():
    img = _image()
    for padding in ("border", "zeros"):
        out = fl.warp(img, np.zeros((40, 50, 2), np.float32), padding=padding).numpy()
        np.testing.assert_array_equal(out, img)


def test_integer_shift_is_exact():
    img = _image(c=5)
    flow = np.zeros((1, 40, 50, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0  # out[y, x] = src[y - 2, x + 3]
    out = fl.warp(img[None], flow).numpy()[0]
    np.testing.assert_array_equal(out[2:, :-3], img[:-2, 3:])
    # border padding replicates the last column / first row
    np.testing.assert_array_equal(out[2:, -3:], np.repeat(img[:-2, -1:], 3, axis=1))
    zeros = fl.warp(img[None], flow, padding="zeros").numpy()[0]
    np.testing.assert_array_equal(zeros[2:, :-3], img[:-2, 3:])
    assert np.all(zeros[:2] == 0) and np.all(zeros[:, -3:] == 0)


@pytest.mark.parametrize(
    "padding,border", [("border", cv2.BORDER_REPLICATE), ("zeros", cv2.BORDER_CONSTANT)]
)
def test_agrees_with_cv2_remap(padding, border):
    rng = np.random.default_rng(1)
    img = _image(seed=2)
    # Sub-pixel steps of 1/32: OpenCV may interpolate with 5-bit fixed-point weights.
    flow = np.round(rng.uniform(-4, 4, (40, 50, 2)) * 32).astype(np.float32) / 32
    gx, gy = _grid(40, 50)
    ref = cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=border, borderValue=0)
    out = fl.warp(img, flow, padding=padding).numpy()
    assert out.shape == img.shape
    assert np.abs(out - ref)[5:-5, 5:-5].max() < 1e-4


def test_warp_in_tf_function_batched_and_broadcast_flow():
    img = np.stack([_image(seed=s) for s in range(3)])
    flow = np.full((1, 40, 50, 2), 1.0, np.float32)
    fn = tf.function(lambda a, f: fl.warp(a, f))
    out = fn(tf.constant(img), tf.constant(flow)).numpy()
    np.testing.assert_array_equal(out[:, :-1, :-1], img[:, 1:, 1:])


def test_gradients_wrt_image_and_flow():
    img = tf.constant(_image(8, 9, 2)[None])
    flow = tf.constant(np.random.default_rng(3).uniform(-1.5, 1.5, (1, 8, 9, 2)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([img, flow])
        loss = tf.reduce_sum(fl.warp(img, flow) ** 2)
    g_img, g_flow = tape.gradient(loss, img), tape.gradient(loss, flow)
    assert g_img is not None and g_flow is not None
    assert float(tf.reduce_sum(tf.abs(g_flow))) > 0
    # finite differences on a few flow entries (the loss is smooth away from integer positions)
    eps = 1e-3
    base = flow.numpy()
    for idx in [(0, 3, 4, 0), (0, 5, 2, 1), (0, 1, 6, 0)]:
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        num = (float(tf.reduce_sum(fl.warp(img, plus) ** 2))
               - float(tf.reduce_sum(fl.warp(img, minus) ** 2))) / (2 * eps)
        assert abs(num - float(g_flow[idx])) < 2e-2 * max(1.0, abs(num))
    # the gradient wrt the image of a sum of outputs counts how often each pixel is read
    with tf.GradientTape() as tape:
        tape.watch(img)
        total = tf.reduce_sum(fl.warp(img, tf.zeros_like(flow)))
    np.testing.assert_allclose(tape.gradient(total, img).numpy(), 1.0)


def test_warp_bad_inputs():
    img = _image()
    with pytest.raises(InvalidFlowError, match="same size"):
        fl.warp(img, np.zeros((30, 50, 2), np.float32))
    with pytest.raises(InvalidFlowError, match="dx, dy"):
        fl.warp(img, np.zeros((40, 50, 3), np.float32))
    bad = np.zeros((40, 50, 2), np.float32)
    bad[3, 4, 1] = np.nan
    with pytest.raises(InvalidFlowError, match="NaN"):
        fl.warp(img, bad)
    bad[3, 4, 1] = np.inf
    with pytest.raises(InvalidFlowError, match="NaN"):
        fl.warp(img, bad)
    with pytest.raises(InvalidFlowError, match="batch"):
        fl.warp(np.stack([img] * 3), np.zeros((2, 40, 50, 2), np.float32))
    with pytest.raises(ValueError, match="padding"):
        fl.warp(img, np.zeros((40, 50, 2), np.float32), padding="mirror")
