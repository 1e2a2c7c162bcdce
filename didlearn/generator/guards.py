"""Inference guards: what inference mends in the refined flow and the fusion mask.

Four known faults of the shipped weights are mended at inference; none has a weight to train,
and training leaves them off so that the losses judge the models' own flow and mask
(``didlearn/weights/MODEL_CARD.md``, "Inference guards"):

* :func:`fade_with_motion`: no correction where no motion is asked (frame 0 is the photo);
* :func:`unfold_beside_face`: no folds (mirrored ghosts) beside the face;
* :func:`snap_to_keypoints`: the landmarks land where they are asked to;
* :func:`paint_only_opening_mouth`: the decoder paints only a mouth opening wider than the photo's.

:func:`forward` is :func:`didlearn.generator.architecture.forward` with them (``guards=True``).
Their constants were chosen for the shipped weights and are saved with them
(:func:`didlearn.generator.weights.weight_settings`).
"""

from __future__ import annotations

import tensorflow as tf

from ..flow import sample_points
from ..landmarks import INNER_LIPS, LEFT_EYE, RIGHT_EYE
from ..motion import (
    TPS_SMOOTHING,
    area_ratio_tensor,
    inside_polygon,
    outside_face,
    polygon_area,
    tps_flow,
)
from . import architecture
from .architecture import TPS_STEP, AnimationModels, to_grid

#: :func:`unfold_beside_face`: a fold beside the face falls back to the thin-plate flow within
#: this many pixels of it, blended over this many more (16 and 32 px scored the same AKD on the
#: benchmark; the smaller reach gives back less of what the refiner learned).
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


def _box_pool(x: tf.Tensor, radius: int, reduce: str) -> tf.Tensor:
    """Max or mean of ``(B, H, W, 1)`` over ``(2r+1)²`` windows, as two 1-D passes (a 33x33
    window done in one pass costs 16x the comparisons)."""
    pool = tf.nn.max_pool2d if reduce == "max" else tf.nn.avg_pool2d
    k = 2 * radius + 1
    return pool(pool(x, [1, k], 1, "SAME"), [k, 1], 1, "SAME")


def _smoothstep(x: tf.Tensor) -> tf.Tensor:
    """0 below 0, 1 above 1, ``3x² - 2x³`` between: a ramp with no kink at either end."""
    t = tf.clip_by_value(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


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
    f = FOLD_GUARD_FACTOR
    s = flow.shape[1]
    beside = outside_face(to_grid(kp, f), s // f, s // f, margin=1)
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
    leftover = keypoint_leftover(flow, ks, kp)
    h, w = flow.shape[1], flow.shape[2]
    correction = tps_flow(kp + leftover, kp, h, w, step=step, regularization=TPS_SMOOTHING)
    return flow + correction


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
    s, f = mask.shape[1], FOLD_GUARD_FACTOR
    gain = _smoothstep((mouth_opening(kp) - mouth_opening(ks)) / MOUTH_PAINT_GAIN)
    gain = gain[:, None, None, None]
    # the polygon test on the fold guard's coarser grid (7 ms a frame at full resolution), then
    # brought up bilinearly: the mouth's edge softens over a few pixels
    lips = to_grid(tf.convert_to_tensor(kp, tf.float32)[:, INNER_LIPS], f)
    mouth = tf.image.resize(inside_polygon(lips, s // f, s // f), (s, s), method="bilinear")
    return 1.0 - gain * mouth * (1.0 - mask)


#: A photo whose channels differ by less than this on average (pixels in [0, 1]) is greyscale:
#: a scanned black-and-white print, whose JPEG keeps the channels equal to a level or two.
GREY_PHOTO_SPREAD = 0.01


def paint_in_grey_for_grey_photos(colour: tf.Tensor, photo: tf.Tensor) -> tf.Tensor:
    """The painting ``C`` ``(B, S, S, 3)`` in grey (its luma in every channel) where the photo
    ``(B or 1, S, S, 3)`` is greyscale, unchanged otherwise.

    The painter learned from colour videos: on a black-and-white photo its blurred guess of a
    mouth's inside comes out tinted (a teal-grey blob inside the lips, where the warped photo
    around it is grey). No colour of a greyscale photo can be right, so none is painted.
    """
    spread = tf.reduce_mean(
        tf.reduce_max(photo, -1) - tf.reduce_min(photo, -1), axis=[1, 2], keepdims=True
    )
    grey = tf.cast(spread < GREY_PHOTO_SPREAD, colour.dtype)[..., None]
    luma = tf.reduce_sum(colour * tf.constant([0.299, 0.587, 0.114], colour.dtype), -1, True)
    return grey * tf.tile(luma, [1, 1, 1, 3]) + (1.0 - grey) * colour


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

    :func:`didlearn.generator.architecture.forward`, with the inference guards when asked.

    Args:
        models: the three parts.
        photo: ``(B, S, S, 3)`` photos (or ``(1, S, S, 3)`` broadcast to the keypoints' batch).
        ks: ``(B, N, 2)`` photo keypoints; kp: ``(B, N, 2)`` target keypoints (crop pixels).
        training: Keras training flag.
        features: the encoder's output for ``photo`` if already computed (one photo, many
            frames: ``render_motion`` encodes once).
        coarse_flow: the thin-plate flow if already computed (default: ``tps_flow(ks, kp)``).
        guards: the inference guards (what ``render_motion`` renders): :func:`guard_flow`
            on the refined flow, :func:`paint_only_opening_mouth` on the fusion mask and
            :func:`paint_in_grey_for_grey_photos` on the painting.
            Training leaves them off: the losses judge the models' own flow and mask.

    Returns:
        dict of ``frame (B,S,S,3)``, ``flow`` (refined, pixels), ``coarse_flow``, ``occlusion``
        ``(B,S/4,S/4,1)`` in [0, 1], ``mask`` (fusion, ``(B,S,S,1)``; with ``guards`` the
        decoder's own is also returned, as ``decoder_mask``), ``colour`` (decoder painting) and
        ``warped`` (photo warped by the refined flow).
    """
    out = architecture.forward(
        models,
        photo,
        ks,
        kp,
        training=training,
        features=features,
        coarse_flow=coarse_flow,
        flow_guard=guard_flow if guards else None,
        mask_guard=paint_only_opening_mouth if guards else None,
    )
    if guards:  # the painting in the photo's colours, and the frame fused with it
        colour = paint_in_grey_for_grey_photos(out["colour"], tf.convert_to_tensor(photo))
        out["colour"] = colour
        out["frame"] = out["mask"] * out["warped"] + (1.0 - out["mask"]) * colour
    return out
