"""Generator fusion (chapter 4): refine the thin-plate motion, warp features, paint what is hidden.

Warping the photo along the thin-plate flow of chapter 3 moves what the photo shows; it cannot
open a mouth or show a cheek the photo never showed, and the spline bends the background with the
face. Two small Keras models fix that, in the spirit of FOMM (Siarohin et al., 2019)::

    (ks, kp) ─► motion.tps_flow ─► coarse flow F (B, S, S, 2)                      chapter 3
    [photo, photo∘F, heatmaps(kp) − heatmaps(ks), F] at S/4 ─► MotionRefiner
        ─► flow residual ΔF and occlusion O (B, S/4, S/4, 1), O = 1: "the warp is right here"
    photo ─► encoder ─► features at S/2, S/4, S/8 (once per photo)
    features ─► flow.warp(·, F + ΔF) · O ─► decoder (residual blocks, upsampling)
        ─► colour C and fusion mask M (B, S, S, ·)
    frame = M · warp(photo, F + ΔF) + (1 − M) · C

The last line is the *fusion*: where the warp is trustworthy the frame keeps the photo's own
pixels (sharp, identity preserved); where it is not (occluded, newly visible, teeth) the decoder
paints from the warped features around. The last layers of both models start at zero (flow
residual) or strongly "trust the warp" (occlusion and mask near 1), so an untrained model
reproduces thin-plate warping exactly and training only learns corrections: this is what makes
training on a laptop CPU converge in minutes instead of days.

Shapes: photos ``(B, S, S, 3)`` float32 in [0, 1] with ``S`` a multiple of 32 (256 for the
shipped weights); keypoints ``(B, 68, 2)`` (x, y) pixels of the crop; flows backward, in pixels.
The models are fully convolutional and sized so that refiner + generator render 256x256 frames
at video rate on a 2-core CPU (``benchmarks/reenact_benchmark.py`` measures it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .errors import MissingResourceError, OutputExistsError
from .motion import TPS_SMOOTHING, polygon_area

#: Folder of the shipped weights inside the installed package.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Stem of the shipped weight files: ``animation.json`` + ``animation_<part>.weights.h5``.
WEIGHTS_NAME = "animation"
PARTS = ("refiner", "encoder", "decoder")
#: The thin-plate flow is evaluated every 8 pixels and interpolated: the refiner corrects what
#: that loses, and it costs 1 ms per 256x256 frame instead of 4 ms at every 4th pixel.
TPS_STEP = 8
#: Inference guards (:func:`guard_flow`): a fold beside the face falls back to the thin-plate
#: flow within this many pixels of it, blended over this many more (16 and 32 px scored the same
#: AKD on the benchmark; the smaller reach gives back less of what the refiner learned).
FOLD_GUARD_GROW = 16
FOLD_GUARD_BLUR = 8
#: ... repeated this many times: taking the thin-plate flow over a fold can expose the next one
#: further out, where the refined flow still reaches back across the head (3 passes leave 0.1 %
#: of the bundled clip's worst frame folded beside the face, one pass 4 %).
FOLD_GUARD_PASSES = 3
#: ... on a grid this many times coarser than the crop (the refiner's residual is that smooth;
#: the face outline test alone costs 7 ms a 256x256 frame at full resolution, the whole guard
#: 3 ms on this grid).
FOLD_GUARD_FACTOR = 4
#: :func:`fade_with_motion`: the refiner's correction is all there from this much keypoint motion
#: (crop pixels) on, and none of it at none.
MOTION_FADE_PX = 1.0
#: :func:`paint_only_opening_mouth`: the painting is all there once the inner-lip area has grown
#: by this much (in squared inter-ocular distances; a closed mouth is ~0, a wide-open one ~0.3).
MOUTH_PAINT_GAIN = 0.05
#: :func:`animate_crop` renders a multiple of this many frames (a short batch is padded, then
#: cut), so its compiled graph is traced once, not once per batch size.
RENDER_BATCH = 8


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
    #: the traced inference function of :func:`animate_crop`, built on first use
    _renderer: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

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


def _conv(x, channels: int, stride: int = 1, act: bool = True, name: str | None = None):
    x = keras.layers.Conv2D(channels, 3, strides=stride, padding="same", name=name)(x)
    return keras.layers.LeakyReLU(0.2)(x) if act else x


def _residual_block(x, channels: int, name: str):
    """``x + conv(relu(conv(x)))``: the decoder refines features without losing them."""
    y = _conv(x, channels, name=f"{name}_a")
    y = _conv(y, channels, act=False, name=f"{name}_b")
    return keras.layers.LeakyReLU(0.2)(keras.layers.Add()([x, y]))


def _up(x):
    return keras.layers.UpSampling2D(2, interpolation="bilinear")(x)


def build_refiner(config: GeneratorConfig) -> keras.Model:
    """MotionRefiner: ``(B, S/4, S/4, 6 + N + 2)`` -> flow residual ``(.., 2)``, occlusion logit.

    A three-level hourglass (U-Net) at S/4, S/8, S/16. The residual is in pixels of the full
    crop; its last convolution starts at zero so that an untrained refiner keeps the thin-plate
    flow. The occlusion logit starts at +4 (sigmoid 0.98: "trust the warp everywhere").
    """
    c1, c2, c3 = config.refiner_channels
    r = config.refine_size
    inp = keras.Input((r, r, config.refiner_inputs), name="refiner_input")
    e1 = _conv(_conv(inp, c1), c1)
    e2 = _conv(_conv(e1, c2, stride=2), c2)
    e3 = _conv(_conv(e2, c3, stride=2), c3)
    d2 = _conv(keras.layers.Concatenate()([_up(e3), e2]), c2)
    d1 = _conv(keras.layers.Concatenate()([_up(d2), e1]), c1)
    residual = keras.layers.Conv2D(
        2, 3, padding="same", kernel_initializer="zeros", name="flow_residual"
    )(d1)
    occlusion = keras.layers.Conv2D(
        1,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
        bias_initializer=keras.initializers.Constant(4.0),
        name="occlusion_logit",
    )(d1)
    return keras.Model(inp, [residual, occlusion], name="motion_refiner")


def build_encoder(config: GeneratorConfig) -> keras.Model:
    """Encoder: photo ``(B, S, S, 3)`` -> features at S/2, S/4, S/8 (``encoder_channels``)."""
    c1, c2, c3 = config.encoder_channels
    s = config.size
    inp = keras.Input((s, s, 3), name="photo")
    f1 = _conv(_conv(inp, c1, stride=2), c1)
    f2 = _conv(_conv(f1, c2, stride=2), c2)
    f3 = _conv(_conv(f2, c3, stride=2), c3)
    return keras.Model(inp, [f1, f2, f3], name="encoder")


def build_decoder(config: GeneratorConfig) -> keras.Model:
    """Decoder: warped, occlusion-masked features -> colour and fusion mask at S/2.

    Inputs ``[(B,S/2,S/2,c1), (B,S/4,S/4,c2), (B,S/8,S/8,c3)]``; outputs ``(B, S/2, S/2, 4)``:
    the colour logits (3) and the fusion-mask logit (1, starts at +4). Both are smooth, so they
    are predicted at half resolution and upsampled: full-resolution convolutions would cost more
    than the rest of the network on a CPU, and the sharp detail comes from the warped photo.
    """
    c1, c2, c3 = config.encoder_channels
    s = config.size
    w1 = keras.Input((s // 2, s // 2, c1), name="warped_f1")
    w2 = keras.Input((s // 4, s // 4, c2), name="warped_f2")
    w3 = keras.Input((s // 8, s // 8, c3), name="warped_f3")
    x = w3
    for i in range(config.residual_blocks):
        x = _residual_block(x, c3, name=f"res{i}")
    x = _conv(keras.layers.Concatenate()([_up(x), w2]), c2)
    x = _residual_block(x, c2, name="res_s4")
    x = _conv(keras.layers.Concatenate()([_up(x), w1]), c1)
    out = keras.layers.Conv2D(
        4,
        3,
        padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
        bias_initializer=keras.initializers.Constant([0.0, 0.0, 0.0, 4.0]),
        name="colour_and_fusion_logits",
    )(x)
    return keras.Model([w1, w2, w3], out, name="decoder")


def build_models(config: GeneratorConfig | None = None, seed: int = 0) -> AnimationModels:
    """Fresh (untrained) refiner, encoder and decoder; ``seed`` fixes their initial weights."""
    config = config or GeneratorConfig()
    keras.utils.set_random_seed(seed)
    return AnimationModels(
        build_refiner(config), build_encoder(config), build_decoder(config), config
    )


# --------------------------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------------------------


def _pool(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Box-downscale ``(B, H, W, C)`` by an integer factor."""
    return x if factor == 1 else tf.nn.avg_pool2d(x, factor, factor, "VALID")


def _to_grid(points: tf.Tensor, factor: int) -> tf.Tensor:
    """Pixel coordinates -> coordinates on a grid ``factor`` times coarser (pixel centres)."""
    return (points + 0.5) / factor - 0.5


@tf.function(jit_compile=True, reduce_retracing=True)
def _warp(x: tf.Tensor, flow: tf.Tensor) -> tf.Tensor:
    """``flow.warp`` compiled with XLA: it fuses the gather and the bilinear weights (2x faster
    on a CPU than op by op, e.g. 3 ms instead of 6 ms for a 256x256 photo)."""
    from .flow import warp

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
    from .flow import warp
    from .motion import keypoint_heatmaps

    f, r = config.refine_factor, config.refine_size
    small_photo = _pool(photo, f)
    small_flow = _pool(coarse_flow, f) / f
    warped = warp(small_photo, small_flow)
    sigma = config.heatmap_sigma
    heat = keypoint_heatmaps(_to_grid(kp, f), r, r, sigma) - keypoint_heatmaps(
        _to_grid(ks, f), r, r, sigma
    )
    return tf.concat([small_photo, warped, heat, small_flow * (f / config.size)], axis=-1)


def _box_pool(x: tf.Tensor, radius: int, reduce: str) -> tf.Tensor:
    """Max or mean of ``(B, H, W, 1)`` over ``(2r+1)²`` windows, as two 1-D passes (a 33x33
    window done in one pass costs 16x the comparisons)."""
    pool = tf.nn.max_pool2d if reduce == "max" else tf.nn.avg_pool2d
    k = 2 * radius + 1
    return pool(pool(x, [1, k], 1, "SAME"), [k, 1], 1, "SAME")


def unfold_beside_face(
    flow: tf.Tensor,
    coarse_flow: tf.Tensor,
    kp: tf.Tensor,
    grow: int = FOLD_GUARD_GROW,
    blur: int = FOLD_GUARD_BLUR,
) -> tf.Tensor:
    """Fall back to the thin-plate flow where the refined warp folds beside the face.

    The refiner learned to fetch background for what a turning head uncovers; on big head rolls
    it overshoots, the backward warp folds over itself (``det(I + ∇F) < 0``) and a mirrored ghost
    of the cheek appears beside the head. Outside the face outline (:func:`motion.outside_face`)
    each folded pixel and its ``grow``-pixel neighbourhood take ``coarse_flow`` instead, blended
    in over a ``2·blur + 1`` box, :data:`FOLD_GUARD_PASSES` times (on a coarser grid, so
    ``grow`` and ``blur`` are rounded to multiples of :data:`FOLD_GUARD_FACTOR`). Inside the
    outline folds stay: there they stand in for an occlusion the warp cannot express (lips
    closing over the teeth), and the landmarks need them.

    Args:
        flow, coarse_flow: ``(B, S, S, 2)`` backward flows in pixels (refined, thin-plate).
        kp: ``(B, N, 2)`` target keypoints (crop pixels).

    Returns:
        ``(B, S, S, 2)`` flow, equal to ``flow`` wherever no fold is near.
    """
    from .motion import area_ratio_tensor, outside_face

    f = FOLD_GUARD_FACTOR
    s = flow.shape[1]
    beside = outside_face(_to_grid(kp, f), s // f, s // f, margin=1)
    for _ in range(FOLD_GUARD_PASSES):
        folded = tf.cast(area_ratio_tensor(flow) < 0.0, tf.float32)[..., None]
        folded = tf.nn.max_pool2d(folded, f, f, "VALID")  # any fold in each f x f block
        weight = _box_pool(_box_pool(folded * beside, grow // f, "max"), blur // f, "mean")
        weight = tf.image.resize(weight, (s, s), method="bilinear")
        flow = weight * coarse_flow + (1.0 - weight) * flow
    return flow


def keypoint_leftover(flow: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor) -> tf.Tensor:
    """``(B, N, 2)`` pixels ``ks - (kp + F(kp))``: how far from its photo twin each target
    keypoint reads the photo through the backward flow ``F`` (0 where a flow lands it).

    Args:
        flow: ``(B, S, S, 2)`` backward flow in pixels; ks, kp: ``(B, N, 2)`` photo and target
            keypoints (crop pixels).
    """
    from .flow import sample_points

    return ks - kp - sample_points(flow, kp)


def snap_to_keypoints(
    flow: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor, step: int = TPS_STEP
) -> tf.Tensor:
    """Correct a backward flow so that it carries each target keypoint onto the photo's.

    Target keypoint ``kp_i`` reads the photo at ``kp_i + F(kp_i)``; the refiner's keypoint loss
    keeps the leftover ``r_i = ks_i - kp_i - F(kp_i)`` (:func:`keypoint_leftover`) small, not zero
    (about a pixel on the jaw). A thin-plate spline through ``(kp_i, r_i)``, with the border held
    still, spreads the leftovers over the frame and is added. Piecewise-affine warping lands every
    landmark exactly; the snap takes the smooth part of the leftovers (on the bundled clip's frame
    85 their mean falls from 1.32 to 0.69 px) and, with the coarse flow's smoothing
    ``motion.TPS_SMOOTHING``, leaves the part that looks like dlib's jitter of about a pixel: an
    exact spline follows the jitter, and scored a worse AKD.

    Args:
        flow: ``(B, S, S, 2)`` backward flow in pixels.
        ks, kp: ``(B, N, 2)`` photo and target keypoints (crop pixels).
        step: evaluate the correction every ``step`` pixels (see ``motion.tps_flow``; the
            correction is smooth, so the coarse flow's step serves).

    Returns:
        ``(B, S, S, 2)`` corrected flow.
    """
    from .motion import tps_flow

    leftover = keypoint_leftover(flow, ks, kp)
    h, w = flow.shape[1], flow.shape[2]
    correction = tps_flow(kp + leftover, kp, h, w, step=step, regularization=TPS_SMOOTHING)
    return flow + correction


def _smoothstep(x: tf.Tensor) -> tf.Tensor:
    """0 below 0, 1 above 1, ``3x² - 2x³`` between: a ramp with no kink at either end."""
    t = tf.clip_by_value(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def fade_with_motion(
    flow: tf.Tensor, coarse_flow: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor
) -> tf.Tensor:
    """The refined flow's correction, faded out as the motion goes to 0.

    The refiner only ever saw pairs with motion; asked for none (frame 0 of a relative run:
    ``kp = ks``) it still moves the photo by a residual of 0.19 px on average, 1.1 px at most,
    and frame 0 is no longer the photo (40 dB in the crop). The residual is weighted by a
    smoothstep of the largest keypoint displacement over :data:`MOTION_FADE_PX`: no motion,
    no correction; from a pixel of motion on, all of it.

    Args:
        flow, coarse_flow: ``(B, S, S, 2)`` refined and thin-plate flows (pixels).
        ks, kp: ``(B, N, 2)`` photo and target keypoints (crop pixels).
    """
    motion = tf.reduce_max(tf.norm(kp - ks, axis=-1), axis=-1)  # (B,)
    weight = _smoothstep(motion / MOTION_FADE_PX)[:, None, None, None]
    return coarse_flow + weight * (flow - coarse_flow)


def mouth_opening(kp: tf.Tensor) -> tf.Tensor:
    """``(B,)`` area inside the inner lips over the squared inter-ocular distance (unitless)."""
    from .faces import INNER_LIPS, LEFT_EYE, RIGHT_EYE

    kp = tf.convert_to_tensor(kp, tf.float32)
    eyes = tf.reduce_mean(kp[:, RIGHT_EYE], axis=1) - tf.reduce_mean(kp[:, LEFT_EYE], axis=1)
    return polygon_area(kp[:, INNER_LIPS]) / tf.reduce_sum(eyes * eyes, axis=-1)


def paint_only_opening_mouth(mask: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor) -> tf.Tensor:
    """Fusion mask that lets the painting show only inside a mouth opening wider than the photo's.

    The decoder's painting is a blur of the warped features: where the shipped mask opens on
    cheeks, forehead, hair and background of big head rolls it shows as flat grey blotches
    (notebook 06), while the warp there is right. The one place of the face a warp of the photo
    cannot be right is a mouth that opens wider than the photo's (it has no teeth or dark
    inside to show): there, and only by how much wider (a smoothstep of the opening gained,
    over :data:`MOUTH_PAINT_GAIN`), the decoder's mask is kept; everywhere else it is 1.

    Args:
        mask: ``(B, S, S, 1)`` the decoder's fusion mask (1 = warp).
        ks, kp: ``(B, N, 2)`` photo and target keypoints (crop pixels).
    """
    from .faces import INNER_LIPS
    from .motion import inside_polygon

    s, f = mask.shape[1], FOLD_GUARD_FACTOR
    gain = _smoothstep((mouth_opening(kp) - mouth_opening(ks)) / MOUTH_PAINT_GAIN)
    gain = gain[:, None, None, None]
    # the polygon test on the fold guard's coarser grid (7 ms a frame at full resolution), then
    # brought up bilinearly: the mouth's edge softens over a few pixels
    lips = _to_grid(tf.convert_to_tensor(kp, tf.float32)[:, INNER_LIPS], f)
    mouth = tf.image.resize(inside_polygon(lips, s // f, s // f), (s, s), method="bilinear")
    return 1.0 - gain * mouth * (1.0 - mask)


def guard_flow(flow: tf.Tensor, coarse_flow: tf.Tensor, ks: tf.Tensor, kp: tf.Tensor) -> tf.Tensor:
    """The inference guards on a refined flow: :func:`fade_with_motion`, then
    :func:`unfold_beside_face`, then :func:`snap_to_keypoints` (so the snap sees the flow that
    will be used)."""
    flow = fade_with_motion(flow, coarse_flow, ks, kp)
    return snap_to_keypoints(unfold_beside_face(flow, coarse_flow, kp), ks, kp)


def forward(
    models: AnimationModels,
    photo: tf.Tensor,
    ks: tf.Tensor,
    kp: tf.Tensor,
    training: bool = False,
    features: list[tf.Tensor] | None = None,
    coarse_flow: tf.Tensor | None = None,
    guards: bool = False,
) -> dict[str, tf.Tensor]:
    """Animate a batch: photos + keypoints -> frames, with every intermediate for inspection.

    Args:
        models: the three parts.
        photo: ``(B, S, S, 3)`` photos (or ``(1, S, S, 3)`` broadcast to the keypoints' batch).
        ks: ``(B, N, 2)`` photo keypoints; kp: ``(B, N, 2)`` target keypoints (crop pixels).
        training: Keras training flag.
        features: the encoder's output for ``photo`` if already computed (one photo, many
            frames: :func:`animate_crop` encodes once).
        coarse_flow: the thin-plate flow if already computed (default: ``tps_flow(ks, kp)``).
        guards: the inference guards (what :func:`render_motion` renders): :func:`guard_flow`
            on the refined flow and :func:`paint_only_opening_mouth` on the fusion mask.
            Training leaves them off: the losses judge the models' own flow and mask.

    Returns:
        dict of ``frame (B,S,S,3)``, ``flow`` (refined, pixels), ``coarse_flow``, ``occlusion``
        ``(B,S/4,S/4,1)`` in [0, 1], ``mask`` (fusion, ``(B,S,S,1)``; with ``guards`` the
        decoder's own is also returned, as ``decoder_mask``), ``colour`` (decoder painting) and
        ``warped`` (photo warped by the refined flow).
    """
    from .motion import tps_flow

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
    if guards:
        flow = guard_flow(flow, coarse_flow, ks, kp)
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
    mask = paint_only_opening_mouth(decoder_mask, ks, kp) if guards else decoder_mask
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
    if guards:
        out["decoder_mask"] = decoder_mask  # what the decoder proposed, before the guard
    return out


#: What the compiled inference function returns (see :func:`render_motion`).
RENDERED = ("frame", "flow", "mask", "colour")


def _compiled_renderer(models: AnimationModels):
    """The ``tf.function`` (photo, ks, kp) -> {frame, flow, mask, colour} for inference, traced
    once per models."""
    if models._renderer is None:

        @tf.function(reduce_retracing=True)
        def render(photo, ks, kp):
            feats = models.encoder(photo, training=False)
            out = forward(models, photo, ks, kp, features=feats, guards=True)
            return {k: out[k] for k in RENDERED}

        models._renderer = render
    return models._renderer


def render_motion(
    models: AnimationModels, crop: np.ndarray, ks: np.ndarray, kps: np.ndarray
) -> dict[str, np.ndarray]:
    """Render target keypoints on one face crop, with the inference guards of :func:`guard_flow`.

    Args:
        crop: ``(S, S, 3)`` float32 face crop in [0, 1] (S = ``models.config.size``).
        ks: ``(N, 2)`` its keypoints; kps: ``(B, N, 2)`` target keypoints (crop pixels).

    Returns:
        NumPy float32 ``frame (B, S, S, 3)`` (clipped to [0, 1]), ``flow (B, S, S, 2)`` (the
        guarded refined flow, crop pixels), ``mask (B, S, S, 1)`` and ``colour (B, S, S, 3)``:
        what :mod:`didlearn.composite` needs to render the frames at any resolution.
    """
    s = models.config.size
    crop = np.asarray(crop, np.float32)
    if crop.shape != (s, s, 3):
        raise ValueError(
            f"the model runs on {s}x{s} crops but got an image of shape {crop.shape}; crop the "
            f"face with faces.crop_face(photo, landmarks, size={s})"
        )
    kps = np.asarray(kps, np.float32)
    n = len(kps)
    # a new batch size would trace (and XLA-compile) the model again, which costs more than
    # rendering a few repeated frames
    padded = -n % RENDER_BATCH
    if padded:
        kps = np.concatenate([kps, np.repeat(kps[-1:], padded, axis=0)])
    ks = np.broadcast_to(np.asarray(ks, np.float32), kps.shape)
    out = _compiled_renderer(models)(crop[None], tf.constant(ks), tf.constant(kps))
    out = {k: v.numpy()[:n] for k, v in out.items()}
    out["frame"] = np.clip(out["frame"], 0.0, 1.0)
    return out


def animate_crop(
    models: AnimationModels, crop: np.ndarray, ks: np.ndarray, kps: np.ndarray
) -> np.ndarray:
    """The ``(B, S, S, 3)`` frames of :func:`render_motion` (float32 in [0, 1]): the model's
    animated face crops, with the inference guards of :func:`guard_flow`."""
    return render_motion(models, crop, ks, kps)["frame"]


# --------------------------------------------------------------------------------------------
# Save and load
# --------------------------------------------------------------------------------------------


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
    """Write the config (JSON, with ``info``) and the weights of the three parts.

    All files are written to a temporary folder first and moved into place only when complete.

    Raises:
        OutputExistsError: one of the files exists and ``overwrite`` is False (nothing written).
    """
    files = weight_files(folder, name)
    existing = [str(p) for p in files.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{', '.join(existing)} exist(s) already: choose another folder or name, or pass "
            "overwrite=True."
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    meta = {"config": models.config.to_json(), "info": info or {}}
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{name}-") as tmp:
        staged = weight_files(tmp, name)
        staged["config"].write_text(json.dumps(meta, indent=2) + "\n")
        for p in PARTS:
            getattr(models, p).save_weights(str(staged[p]))
        for key, path in staged.items():
            shutil.move(str(path), files[key])
    return files


def load_models(folder: str | os.PathLike, name: str = WEIGHTS_NAME) -> AnimationModels:
    """Rebuild the models from a :func:`save_models` folder and load their weights.

    Raises:
        MissingResourceError: a file is missing (the message lists which).
    """
    files = weight_files(folder, name)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise MissingResourceError(
            f"model files not found: {', '.join(missing)}. Train with `python -m "
            "didlearn.optimize` or reinstall didlearn (pip install -e .) to get the shipped ones."
        )
    meta = json.loads(files["config"].read_text())
    models = build_models(GeneratorConfig.from_json(meta["config"]))
    for p in PARTS:
        getattr(models, p).load_weights(str(files[p]))
    models.info.update(meta.get("info", {}))
    return models


def load_pretrained() -> AnimationModels:
    """The weights shipped inside the package (``didlearn/weights/``), loaded offline."""
    return load_models(WEIGHTS_DIR, WEIGHTS_NAME)
