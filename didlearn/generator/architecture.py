"""The models of chapter 4: their sizes, their layers and the forward pass that runs them.

What the refiner, encoder and decoder are, how they are built (each layer from its own seed)
and how one batch flows through them (:func:`forward`). What inference does on top (the guards)
is :mod:`didlearn.generator.guards`; rendering is :mod:`~didlearn.generator.render`; saving and
loading is :mod:`~didlearn.generator.weights`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ..flow import warp
from ..motion import TPS_SMOOTHING, keypoint_heatmaps, tps_flow

PARTS = ("refiner", "encoder", "decoder")
#: The thin-plate flow is evaluated every 8 pixels and interpolated: the refiner corrects what
#: that loses, and it costs 1 ms per 256x256 frame instead of 4 ms at every 4th pixel.
TPS_STEP = 8

#: ``(flow, coarse_flow, ks, kp) -> flow``: mends the refined flow before anything is warped.
FlowGuard = Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]
#: ``(mask, ks, kp) -> mask``: mends the decoder's fusion mask.
MaskGuard = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the two models (saved next to the weights, so a load rebuilds the same models).

    Attributes:
        size: crop side ``S`` in pixels the models run at (a multiple of 32).
        n_keypoints: keypoints per face (68 for dlib's landmarks).
        refine_factor: the refiner works at ``S / refine_factor`` (4: 64x64 for 256 crops).
        refiner_channels: channels of the refiner's hourglass levels (S/4, S/8, S/16).
        encoder_channels: channels of the feature maps at S/2, S/4, S/8.
        residual_blocks: residual blocks of the decoder at S/8.
        heatmap_sigma: width of the keypoint heatmaps in pixels of the refiner's grid.
    """

    size: int = 256
    n_keypoints: int = 68
    refine_factor: int = 4
    refiner_channels: tuple[int, int, int] = (32, 64, 96)
    encoder_channels: tuple[int, int, int] = (16, 32, 64)
    residual_blocks: int = 2
    heatmap_sigma: float = 1.5

    def __post_init__(self) -> None:
        if self.size % 32:
            raise ValueError(f"size must be a multiple of 32 (e.g. 256), got {self.size}")

    @property
    def refine_size(self) -> int:
        return self.size // self.refine_factor

    @property
    def refiner_inputs(self) -> int:
        """Photo (3) + thin-plate-warped photo (3) + heatmap differences (N) + coarse flow (2)."""
        return 3 + 3 + self.n_keypoints + 2

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GeneratorConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields}
        return cls(**kw)


@dataclass
class AnimationModels:
    """The trained parts and their configuration: ``forward`` runs them on a batch."""

    refiner: keras.Model
    encoder: keras.Model
    decoder: keras.Model
    config: GeneratorConfig
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the traced inference function of :func:`didlearn.generator.render.compiled_renderer`,
    #: built on first use
    renderer: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def trainable_variables(self) -> list[tf.Variable]:
        return [
            *self.refiner.trainable_variables,
            *self.encoder.trainable_variables,
            *self.decoder.trainable_variables,
        ]

    def count_params(self) -> dict[str, int]:
        """Parameters per part, e.g. ``{"refiner": 300_000, ...}``."""
        return {p: int(getattr(self, p).count_params()) for p in PARTS}


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------


class _Seeds:
    """Seeded initializers for one model, a new seed per layer, drawn from a local generator.

    Keras initializers given an integer seed are stateless (the same seed gives the same
    values), so every layer needs its own; drawing them from ``np.random.default_rng(seed)``
    leaves the global NumPy, Python and TensorFlow generators untouched.
    """

    def __init__(self, seed: int | list[int]) -> None:
        self._rng = np.random.default_rng(seed)

    def _next(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def glorot(self) -> keras.initializers.Initializer:
        """Keras' default kernel initializer (Glorot uniform), seeded."""
        return keras.initializers.GlorotUniform(seed=self._next())

    def normal(self, stddev: float) -> keras.initializers.Initializer:
        return keras.initializers.RandomNormal(stddev=stddev, seed=self._next())


def _conv(x, channels: int, seeds: _Seeds, stride: int = 1, act: bool = True, name=None):
    x = keras.layers.Conv2D(
        channels, 3, strides=stride, padding="same", kernel_initializer=seeds.glorot(), name=name
    )(x)
    return keras.layers.LeakyReLU(0.2)(x) if act else x


def _residual_block(x, channels: int, seeds: _Seeds, name: str):
    """``x + conv(relu(conv(x)))``: the decoder refines features without losing them."""
    y = _conv(x, channels, seeds, name=f"{name}_a")
    y = _conv(y, channels, seeds, act=False, name=f"{name}_b")
    return keras.layers.LeakyReLU(0.2)(keras.layers.Add()([x, y]))


def _up(x):
    return keras.layers.UpSampling2D(2, interpolation="bilinear")(x)


def build_refiner(config: GeneratorConfig, seed: int = 0) -> keras.Model:
    """MotionRefiner: ``(B, S/4, S/4, 6 + N + 2)`` -> flow residual ``(.., 2)``, occlusion logit.

    A three-level hourglass (U-Net) at S/4, S/8, S/16. The residual is in pixels of the full
    crop; its last convolution starts at zero so that an untrained refiner keeps the thin-plate
    flow. The occlusion logit starts at +4 (sigmoid 0.98: "trust the warp everywhere").
    ``seed`` fixes the initial weights (no global random state is used or changed).
    """
    seeds = _Seeds(seed)
    c1, c2, c3 = config.refiner_channels
    r = config.refine_size
    inp = keras.Input((r, r, config.refiner_inputs), name="refiner_input")
    e1 = _conv(_conv(inp, c1, seeds), c1, seeds)
    e2 = _conv(_conv(e1, c2, seeds, stride=2), c2, seeds)
    e3 = _conv(_conv(e2, c3, seeds, stride=2), c3, seeds)
    d2 = _conv(keras.layers.Concatenate()([_up(e3), e2]), c2, seeds)
    d1 = _conv(keras.layers.Concatenate()([_up(d2), e1]), c1, seeds)
    residual = keras.layers.Conv2D(
        2, 3, padding="same", kernel_initializer="zeros", name="flow_residual"
    )(d1)
    occlusion = keras.layers.Conv2D(
        1,
        3,
        padding="same",
        kernel_initializer=seeds.normal(1e-3),
        bias_initializer=keras.initializers.Constant(4.0),
        name="occlusion_logit",
    )(d1)
    return keras.Model(inp, [residual, occlusion], name="motion_refiner")


def build_encoder(config: GeneratorConfig, seed: int = 0) -> keras.Model:
    """Encoder: photo ``(B, S, S, 3)`` -> features at S/2, S/4, S/8 (``encoder_channels``);
    ``seed`` fixes the initial weights."""
    seeds = _Seeds(seed)
    c1, c2, c3 = config.encoder_channels
    s = config.size
    inp = keras.Input((s, s, 3), name="photo")
    f1 = _conv(_conv(inp, c1, seeds, stride=2), c1, seeds)
    f2 = _conv(_conv(f1, c2, seeds, stride=2), c2, seeds)
    f3 = _conv(_conv(f2, c3, seeds, stride=2), c3, seeds)
    return keras.Model(inp, [f1, f2, f3], name="encoder")


def build_decoder(config: GeneratorConfig, seed: int = 0) -> keras.Model:
    """Decoder: warped, occlusion-masked features -> colour and fusion mask at S/2.

    Inputs ``[(B,S/2,S/2,c1), (B,S/4,S/4,c2), (B,S/8,S/8,c3)]``; outputs ``(B, S/2, S/2, 4)``:
    the colour logits (3) and the fusion-mask logit (1, starts at +4). Both are smooth, so they
    are predicted at half resolution and upsampled: full-resolution convolutions would cost more
    than the rest of the network on a CPU, and the sharp detail comes from the warped photo.
    ``seed`` fixes the initial weights.
    """
    seeds = _Seeds(seed)
    c1, c2, c3 = config.encoder_channels
    s = config.size
    w1 = keras.Input((s // 2, s // 2, c1), name="warped_f1")
    w2 = keras.Input((s // 4, s // 4, c2), name="warped_f2")
    w3 = keras.Input((s // 8, s // 8, c3), name="warped_f3")
    x = w3
    for i in range(config.residual_blocks):
        x = _residual_block(x, c3, seeds, name=f"res{i}")
    x = _conv(keras.layers.Concatenate()([_up(x), w2]), c2, seeds)
    x = _residual_block(x, c2, seeds, name="res_s4")
    x = _conv(keras.layers.Concatenate()([_up(x), w1]), c1, seeds)
    out = keras.layers.Conv2D(
        4,
        3,
        padding="same",
        kernel_initializer=seeds.normal(1e-3),
        bias_initializer=keras.initializers.Constant([0.0, 0.0, 0.0, 4.0]),
        name="colour_and_fusion_logits",
    )(x)
    return keras.Model([w1, w2, w3], out, name="decoder")


def build_models(config: GeneratorConfig | None = None, seed: int = 0) -> AnimationModels:
    """Fresh (untrained) refiner, encoder and decoder.

    ``seed`` fixes their initial weights (each part, and each layer in it, gets its own seed
    derived from it); the global NumPy, Python and TensorFlow random states are left alone.
    """
    config = config or GeneratorConfig()
    part_seeds = np.random.SeedSequence(seed).generate_state(len(PARTS))
    refiner, encoder, decoder = (int(s) for s in part_seeds)
    return AnimationModels(
        build_refiner(config, refiner),
        build_encoder(config, encoder),
        build_decoder(config, decoder),
        config,
    )


# --------------------------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------------------------


def _pool(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Box-downscale ``(B, H, W, C)`` by an integer factor."""
    return x if factor == 1 else tf.nn.avg_pool2d(x, factor, factor, "VALID")


def to_grid(points: tf.Tensor, factor: int) -> tf.Tensor:
    """Pixel coordinates ``(..., 2)`` -> coordinates on a grid ``factor`` times coarser (pixel
    centres kept: pixel ``(0, 0)``'s centre stays the coarse pixel ``(0, 0)``'s)."""
    return (points + 0.5) / factor - 0.5


@tf.function(jit_compile=True, reduce_retracing=True)
def _warp(x: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """``flow.warp`` compiled with XLA: it fuses the gather and the bilinear weights (2x faster
    on a CPU than op by op, e.g. 3 ms instead of 6 ms for a 256x256 photo)."""
    return warp(x, flow)


@tf.function(jit_compile=True, reduce_retracing=True)
def _refiner_input(photo, coarse_flow, ks, kp, config):
    return refiner_input(photo, coarse_flow, ks, kp, config)


def refiner_input(
    photo: tf.Tensor, coarse_flow: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor, config: GeneratorConfig
) -> tf.Tensor:
    """The refiner's input ``(B, S/4, S/4, 6 + N + 2)``.

    Channels: the photo, the photo warped by the thin-plate flow, the keypoint heatmaps of the
    target minus those of the photo (where each landmark goes and comes from) and the coarse
    flow in units of the crop size. All at ``S / refine_factor``.
    """
    f, r = config.refine_factor, config.refine_size
    small_photo = _pool(photo, f)
    small_flow = _pool(coarse_flow, f) / f
    warped = warp(small_photo, small_flow)
    sigma = config.heatmap_sigma
    heat = keypoint_heatmaps(to_grid(kp, f), r, r, sigma) - keypoint_heatmaps(
        to_grid(ks, f), r, r, sigma
    )
    return tf.concat([small_photo, warped, heat, small_flow * (f / config.size)], axis=-1)


def forward(
    models: AnimationModels,
    photo: tf.Tensor,
    ks: tf.Tensor,
    kp: tf.Tensor,
    training: bool = False,
    features: list[tf.Tensor] | None = None,
    coarse_flow: tf.Tensor | None = None,
    flow_guard: FlowGuard | None = None,
    mask_guard: MaskGuard | None = None,
) -> dict[str, tf.Tensor]:
    """Animate a batch: photos + keypoints -> frames, with every intermediate for inspection.

    The models' own pass; :func:`didlearn.generator.forward` (``guards=True``) is this with the
    inference guards of :mod:`didlearn.generator.guards` as ``flow_guard`` and ``mask_guard``.

    Args:
        models: the three parts.
        photo: ``(B, S, S, 3)`` photos (or ``(1, S, S, 3)`` broadcast to the keypoints' batch).
        ks: ``(B, N, 2)`` photo keypoints; kp: ``(B, N, 2)`` target keypoints (crop pixels).
        training: Keras training flag.
        features: the encoder's output for ``photo`` if already computed (one photo, many
            frames: ``render_motion`` encodes once).
        coarse_flow: the thin-plate flow if already computed (default: ``tps_flow(ks, kp)``).
        flow_guard: applied to the refined flow before anything is warped with it.
        mask_guard: applied to the decoder's fusion mask (the decoder's own is then also
            returned, as ``decoder_mask``).

    Returns:
        dict of ``frame (B,S,S,3)``, ``flow`` (refined, pixels), ``coarse_flow``, ``occlusion``
        ``(B,S/4,S/4,1)`` in [0, 1], ``mask`` (fusion, ``(B,S,S,1)``), ``colour`` (decoder
        painting) and ``warped`` (photo warped by the refined flow).
    """
    cfg = models.config
    s = cfg.size
    ks = tf.convert_to_tensor(ks, tf.float32)
    kp = tf.convert_to_tensor(kp, tf.float32)
    b = tf.shape(kp)[0]
    photo = tf.convert_to_tensor(photo, tf.float32)
    photo = tf.broadcast_to(photo, tf.stack([b, s, s, 3]))
    ks = tf.broadcast_to(ks, tf.shape(kp))
    if coarse_flow is None:
        # the thin_plate renderer's λ: the untrained model is exactly that baseline
        coarse_flow = tps_flow(ks, kp, s, s, step=TPS_STEP, regularization=TPS_SMOOTHING)
    coarse_flow = tf.stop_gradient(coarse_flow)
    residual, occ_logit = models.refiner(
        _refiner_input(photo, coarse_flow, ks, kp, cfg), training=training
    )
    residual, occ_logit = tf.cast(residual, tf.float32), tf.cast(occ_logit, tf.float32)
    flow = coarse_flow + tf.image.resize(residual, (s, s), method="bilinear")
    if flow_guard is not None:
        flow = flow_guard(flow, coarse_flow, ks, kp)
    occlusion = tf.sigmoid(occ_logit)
    if features is None:
        features = models.encoder(photo, training=training)
    features = [tf.cast(feat, tf.float32) for feat in features]
    warped_features = []
    for k, feat in enumerate(features, start=1):
        scale = 2**k  # features at S/2, S/4, S/8
        occ = tf.image.resize(occlusion, (s // scale, s // scale), method="bilinear")
        feat = tf.broadcast_to(feat, tf.concat([[b], tf.shape(feat)[1:]], 0))
        warped_features.append(_warp(feat, _pool(flow, scale) / scale) * occ)
    logits = tf.cast(models.decoder(warped_features, training=training), tf.float32)
    logits = tf.image.resize(logits, (s, s))
    colour, decoder_mask = tf.sigmoid(logits[..., :3]), tf.sigmoid(logits[..., 3:])
    mask = decoder_mask if mask_guard is None else mask_guard(decoder_mask, ks, kp)
    warped = _warp(photo, flow)
    frame = mask * warped + (1.0 - mask) * colour
    out = {
        "frame": frame,
        "flow": flow,
        "coarse_flow": coarse_flow,
        "occlusion": occlusion,
        "mask": mask,
        "colour": colour,
        "warped": warped,
    }
    if mask_guard is not None:
        out["decoder_mask"] = decoder_mask  # what the decoder proposed, before the guard
    return out
