"""Tests of didlearn.flow: warp, visualisation, .flo files, metrics, estimators, bad input."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from didlearn import flow as fl
from didlearn import flow_estimators as fe
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
    ref = cv2.remap(
        img,
        gx + flow[..., 0],
        gy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=border,
        borderValue=0,
    )
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
        num = (
            float(tf.reduce_sum(fl.warp(img, plus) ** 2))
            - float(tf.reduce_sum(fl.warp(img, minus) ** 2))
        ) / (2 * eps)
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


# ---------------------------------------------------------------------------- colour coding


def test_color_wheel_has_55_middlebury_colours_and_directions():
    assert fl.COLOR_WHEEL.shape == (55, 3)
    np.testing.assert_allclose(fl.COLOR_WHEEL[0], [1, 0, 0])  # red starts the wheel
    np.testing.assert_allclose(fl.COLOR_WHEEL[15], [1, 1, 0])  # RY=15 colours later: yellow
    np.testing.assert_allclose(fl.COLOR_WHEEL[21], [0, 1, 0])  # YG=6 later: green
    np.testing.assert_allclose(fl.COLOR_WHEEL[25], [0, 1, 1])  # GC=4 later: cyan
    np.testing.assert_allclose(fl.COLOR_WHEEL[36], [0, 0, 1])  # CB=11 later: blue
    np.testing.assert_allclose(fl.COLOR_WHEEL[49], [1, 0, 1])  # BM=13 later: magenta
    flow = np.zeros((1, 3, 2), np.float32)
    flow[0, 1] = (2.0, 0.0)  # rightwards, full length
    flow[0, 2] = (1.0, 0.0)  # rightwards, half length
    col = fl.flow_to_color(flow)
    np.testing.assert_allclose(col[0, 0], [1, 1, 1])  # no motion is white
    np.testing.assert_allclose(col[0, 1], [1, 0, 0], atol=1e-6)  # rightwards is red
    np.testing.assert_allclose(col[0, 2], [1, 0.5, 0.5], atol=1e-6)  # half saturated
    wheel = fl.color_wheel(21)
    assert wheel.shape == (21, 21, 3) and wheel.dtype == np.float32
    np.testing.assert_allclose(wheel[10, 10], [1, 1, 1])
    np.testing.assert_allclose(wheel[10, 20], [1, 0, 0], atol=1e-6)


def test_unknown_ground_truth_is_black_and_ignored_by_metrics():
    gt = np.ones((4, 5, 2), np.float32)
    gt[0, 0] = 1e10
    assert np.all(fl.flow_to_color(gt)[0, 0] == 0)
    est = np.ones((4, 5, 2), np.float32)
    assert fl.endpoint_error(est, gt) == 0.0
    assert fl.angular_error(est, gt) == pytest.approx(0.0, abs=1e-3)


def test_plots_and_warped_grid():
    import matplotlib.pyplot as plt

    _, _, gt = fl.synthetic_pair("affine", size=(48, 64))
    fig, axes = plt.subplots(1, 2)
    fl.plot_flow(axes[0], gt, title="flow")
    q = fl.plot_quiver(axes[1], gt, step=8, image=np.zeros((48, 64, 3)))
    assert q.N == 6 * 8
    plt.close(fig)
    grid = fl.warped_grid(np.zeros((48, 64, 2), np.float32), step=8)
    np.testing.assert_array_equal(grid, fl.grid_image(48, 64, step=8))
    shifted = fl.warped_grid(np.full((48, 64, 2), 2.0, np.float32), step=8)
    np.testing.assert_array_equal(shifted[:-2, :-2], grid[2:, 2:])


# ---------------------------------------------------------------------------- metrics


def test_endpoint_and_angular_error_values():
    gt = np.zeros((2, 2, 2), np.float32)
    est = np.zeros((2, 2, 2), np.float32)
    est[..., 0], est[..., 1] = 3.0, 4.0
    assert fl.endpoint_error(est, gt) == pytest.approx(5.0)
    est = np.zeros((2, 2, 2), np.float32)
    est[..., 0] = 1.0  # (1, 0, 1) vs (0, 0, 1): 45 degrees
    assert fl.angular_error(est, gt) == pytest.approx(45.0, abs=1e-4)
    with pytest.raises(InvalidFlowError, match="same size"):
        fl.endpoint_error(est, np.zeros((3, 2, 2)))


# ---------------------------------------------------------------------------- .flo files


def test_flo_round_trip(tmp_path):
    flow = np.random.default_rng(4).normal(size=(7, 9, 2)).astype(np.float32)
    flow[0, 0] = 1e10  # Middlebury's unknown marker survives the round trip
    path = fl.write_flo(tmp_path / "a.flo", flow)
    assert path.stat().st_size == 12 + 7 * 9 * 8
    back = fl.read_flo(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, flow)
    from didlearn.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        fl.write_flo(path, flow)
    fl.write_flo(path, flow * 2, overwrite=True)
    np.testing.assert_array_equal(fl.read_flo(path), flow * 2)
    assert [p.name for p in tmp_path.iterdir()] == ["a.flo"]  # no temporary file left


def test_corrupt_flo_files(tmp_path):
    good = fl.write_flo(tmp_path / "good.flo", np.zeros((3, 4, 2), np.float32))
    data = good.read_bytes()
    cases = {
        "short.flo": data[:8],
        "magic.flo": b"XXXX" + data[4:],
        "truncated.flo": data[:-4],
        "oversized.flo": data + b"\0" * 8,
        "size.flo": data[:4] + np.array([-3, 4], "<i4").tobytes() + data[12:],
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(InvalidFlowError):
            fl.read_flo(tmp_path / name)
    from didlearn.errors import UnreadableMediaError

    with pytest.raises(UnreadableMediaError):
        fl.read_flo(tmp_path / "missing.flo")
    with pytest.raises(InvalidFlowError, match="NaN"):
        fl.write_flo(tmp_path / "nan.flo", np.full((2, 2, 2), np.nan, np.float32))


# ---------------------------------------------------------------------------- synthetic pairs


@pytest.mark.parametrize("kind", fl.SYNTHETIC_KINDS)
def test_synthetic_pairs_have_exact_ground_truth(kind):
    i1, i2, gt = fl.synthetic_pair(kind, size=(48, 64), seed=3)
    assert i1.shape == i2.shape == (48, 64, 3) and gt.shape == (48, 64, 2)
    assert 0.5 < np.abs(gt).max() < 6
    np.testing.assert_allclose(fl.warp_numpy(i2, gt), i1, atol=1e-6)
    assert np.abs(i1 - i2).mean() > 0.01  # the motion is visible
    again = fl.synthetic_pair(kind, size=(48, 64), seed=3)
    np.testing.assert_array_equal(again[2], gt)


def test_thin_plate_flow_interpolates_its_control_points():
    pts = np.array([[10.0, 12.0], [40.0, 30.0], [25.0, 5.0], [5.0, 35.0]])
    disp = np.array([[1.0, -2.0], [0.5, 0.5], [-1.0, 0.0], [0.0, 2.0]])
    flow = fl.thin_plate_flow(pts, disp, (40, 50))
    for (x, y), d in zip(pts.astype(int), disp, strict=True):
        np.testing.assert_allclose(flow[y, x], d, atol=1e-6)


def test_the_spline_is_one_for_numpy_and_tensorflow():
    from didlearn import spline

    rng = np.random.default_rng(4)
    pts = rng.uniform(5, 45, (12, 2))
    disp = rng.uniform(-3, 3, (12, 2))
    exact = fl.thin_plate_flow(pts, disp, (40, 50))
    assert exact.shape == (40, 50, 2) and exact.dtype == np.float32
    np.testing.assert_array_equal(spline.thin_plate_spline_numpy(pts, disp, (40, 50)), exact)
    # the float32 TensorFlow spline (the one chapter 3 differentiates) agrees with it
    tf_field = spline.thin_plate_spline(pts, pts + disp, 40, 50)
    assert tf_field.shape == (1, 40, 50, 2) and tf_field.dtype == tf.float32
    np.testing.assert_allclose(tf_field[0].numpy(), exact, atol=1e-3)
    coarse = spline.thin_plate_spline_numpy(pts, disp, (40, 50), step=4)
    assert np.abs(coarse - exact).mean() < 0.05
    smooth = spline.thin_plate_spline_numpy(pts, disp, (40, 50), regularization=1e-2)
    assert 0.01 < np.abs(smooth - exact).max() < 3


# ---------------------------------------------------------------------------- estimators


def test_opencv_estimators_follow_the_backward_convention():
    i1, i2, gt = fl.synthetic_pair("affine", size=(64, 80), seed=1)
    for est in (fe.dis_flow, fe.farneback_flow):
        flow = est(i1, i2)
        assert flow.shape == (64, 80, 2) and flow.dtype == np.float32
        assert fl.endpoint_error(flow, gt) < 0.5 < fl.endpoint_error(-flow, gt)
    if not fe.has_tvl1():
        with pytest.raises(RuntimeError, match="contrib"):
            fe.tvl1_flow(i1, i2)


def test_variational_estimator_reaches_small_epe_on_a_synthetic_pair():
    i1, i2, gt = fl.synthetic_pair("smooth", size=(64, 80), seed=5)
    flow, losses = fe.estimate_flow_variational(i1, i2, return_loss=True)
    assert flow.shape == (64, 80, 2) and flow.dtype == np.float32
    assert fl.endpoint_error(np.zeros_like(gt), gt) > 1.0
    assert fl.endpoint_error(flow, gt) < 0.15
    assert losses.ndim == 1 and losses[-1] < losses[0]
    # the edge-aware options (edge-weighted smoothness, weighted median) also converge
    other = fe.estimate_flow_variational(i1, i2, edge_weight=3.0, weighted_median=0.05)
    assert fl.endpoint_error(other, gt) < 0.15


def test_estimators_reject_bad_images():
    a = _image(20, 30)
    for est in (fe.dis_flow, fe.farneback_flow, fe.estimate_flow_variational):
        with pytest.raises(InvalidFlowError, match="differ in size"):
            est(a, _image(20, 31))
        with pytest.raises(InvalidFlowError, match="H, W"):
            est(_image(20, 30, c=4), _image(20, 30, c=4))
        bad = a.copy()
        bad[0, 0, 0] = np.nan
        with pytest.raises(InvalidFlowError, match="NaN"):
            est(bad, a)


# ---------------------------------------------------------------------------- flow composer widget


def test_compose_flow_sliders():
    from didlearn.widgets import flow as wf

    np.testing.assert_array_equal(wf.compose_flow(20, 30), np.zeros((20, 30, 2), np.float32))
    shift = wf.compose_flow(20, 30, tx=5, ty=-2)  # the picture moves right 5 and up 2
    np.testing.assert_allclose(shift[..., 0], -5)
    np.testing.assert_allclose(shift[..., 1], 2)
    img = _image(20, 30)
    moved = fl.warp_numpy(img, shift)
    np.testing.assert_allclose(moved[:-2, 5:], img[2:, :-5], atol=1e-6)
    # a quarter turn counter-clockwise: the pixel above the centre shows what was on its right
    turn = wf.compose_flow(21, 21, rotation=90)
    np.testing.assert_allclose(turn[10, 10], [0, 0], atol=1e-5)
    np.testing.assert_allclose(turn[5, 10], [5, 5], atol=1e-5)  # reads (15, 10) from (10, 5)
    zoom = wf.compose_flow(21, 21, zoom=2)  # enlarged: (14, 10) reads (12, 10)
    np.testing.assert_allclose(zoom[10, 14], [-2, 0], atol=1e-5)
    swirl = wf.compose_flow(21, 21, swirl=30)

    def turned(x):  # angle (degrees) between the pixel (x, 10) and where it reads, about the centre
        px, py = x - 10 + swirl[10, x, 0], swirl[10, x, 1]
        return np.degrees(np.arctan2(py, px))

    assert abs(turned(12)) > abs(turned(20)) > 1  # the twist fades outwards


def test_compose_flow_thin_plate_drag():
    from didlearn.widgets import flow as wf

    flow = wf.compose_flow(41, 61, handle_x=0.5, handle_y=0.5, drag_x=6, drag_y=-4)
    np.testing.assert_allclose(flow[16, 36], [-6, 4], atol=1e-4)  # at handle + drag: reads back
    for y, x in [(0, 0), (0, 60), (40, 0), (40, 60), (0, 30), (20, 0)]:
        np.testing.assert_allclose(flow[y, x], [0, 0], atol=1e-4)  # the border stays put
    with pytest.raises(ValueError, match="unknown slider"):
        wf.compose_flow(10, 10, twist=3)
    with pytest.raises(ValueError, match="zoom"):
        wf.compose_flow(10, 10, zoom=0)


def test_render_flow_callback_and_widget():
    import ipywidgets
    import matplotlib.pyplot as plt

    from didlearn.widgets import flow as wf

    img = _image(48, 64)
    flow = wf.compose_flow(48, 64, tx=3, rotation=10)
    fig = wf.render_flow(img, flow, step=8)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) >= 3
    warped_panel = fig.axes[2].get_images()[0].get_array()
    np.testing.assert_allclose(warped_panel, np.clip(fl.warp_numpy(img, flow), 0, 1), atol=1e-6)
    plt.close(fig)
    box = wf.flow_composer_widget(img, step=8)
    assert isinstance(box, ipywidgets.VBox)
    plt.close("all")


def test_forward_warp_leaves_holes_backward_does_not():
    from didlearn.widgets import flow as wf

    img = _image(40, 40)
    zoom_in = wf.compose_flow(40, 40, zoom=1.5)  # backward flow of a 1.5x enlargement
    # the forward flow of the same motion: pixel p goes to c + 1.5 (p - c)
    y, x = np.mgrid[0:40, 0:40].astype(np.float32)
    fwd = np.stack([0.5 * (x - 19.5), 0.5 * (y - 19.5)], axis=-1)
    splat, holes = fl.forward_warp(img, fwd)
    assert holes[5:-5, 5:-5].mean() > 0.2 and np.all(splat[holes] == 0)
    back = fl.warp_numpy(img, zoom_in)
    assert np.all(back.max(axis=-1) > 0)  # every pixel gets a value
    with pytest.raises(InvalidFlowError):
        fl.forward_warp(img, fwd[:30])


def test_weighted_median_is_a_median_that_keeps_image_edges():
    rng = np.random.default_rng(6)
    flow = rng.normal(size=(30, 40, 2)).astype(np.float32)
    gray = rng.random((30, 40)).astype(np.float32)
    # equal weights (huge sigma): the plain median
    plain = fe._weighted_median(flow, gray, 5, 1e6)
    np.testing.assert_allclose(plain[2:-2, 2:-2], fe._median(flow, 5)[2:-2, 2:-2], atol=5e-3)
    # a thin flow stripe that lies on an image stripe survives; the plain median erases it
    step = np.zeros((30, 40, 2), np.float32)
    step[:, 19:21, 0] = 3.0
    edges = np.zeros((30, 40), np.float32)
    edges[:, 19:21] = 1.0
    np.testing.assert_allclose(fe._weighted_median(step, edges, 5, 0.1), step, atol=1e-2)
    assert np.all(fe._median(step, 5)[:, 19:21, 0] == 0)


# ---------------------------------------------------------------------------- sampling at points


def test_sample_points_is_bilinear_and_clamps_or_zeroes_outside():
    ramp = np.stack(np.meshgrid(np.arange(8.0), np.arange(6.0)), -1).astype(np.float32)
    pts = np.array([[[2.25, 3.5], [0.0, 0.0], [6.9, 4.1]]], np.float32)
    got = fl.sample_points(tf.constant(ramp[None]), tf.constant(pts)).numpy()
    np.testing.assert_allclose(got, pts, atol=1e-5)
    outside = tf.constant([[[-3.0, 2.0], [7.5, 9.0]]])
    border = fl.sample_points(tf.constant(ramp[None]), outside).numpy()
    np.testing.assert_allclose(border, [[[0.0, 2.0], [7.0, 5.0]]], atol=1e-5)
    zeros = fl.sample_points(tf.constant(ramp[None]), outside, padding="zeros").numpy()
    np.testing.assert_allclose(zeros, 0.0, atol=1e-6)


def test_sample_points_on_the_shifted_grid_is_warp():
    rng = np.random.default_rng(0)
    img = rng.random((2, 12, 10, 3)).astype(np.float32)
    flow = rng.normal(0, 3, (2, 12, 10, 2)).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(12.0)), -1).astype(np.float32)
    for padding in fl.PADDINGS:
        at_points = fl.sample_points(tf.constant(img), grid[None] + flow, padding).numpy()
        np.testing.assert_allclose(at_points, fl.warp(img, flow, padding).numpy(), atol=1e-5)
