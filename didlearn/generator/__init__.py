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

The subpackage keeps the models apart from what inference does with them:

* :mod:`~didlearn.generator.architecture`: config, layers, ``build_*``, the models' own pass;
* :mod:`~didlearn.generator.guards`: the inference guards and :func:`forward` (``guards=True``);
* :mod:`~didlearn.generator.render`: the compiled renderer (:func:`render_motion`);
* :mod:`~didlearn.generator.weights`: saving and loading, with the settings the weights need.

Everything below is importable as ``generator.NAME``.
"""

from .architecture import (
    PARTS,
    TPS_STEP,
    AnimationModels,
    GeneratorConfig,
    build_decoder,
    build_encoder,
    build_models,
    build_refiner,
    refiner_input,
)
from .guards import (
    FOLD_GUARD_BLUR,
    FOLD_GUARD_FACTOR,
    FOLD_GUARD_GROW,
    FOLD_GUARD_PASSES,
    MOTION_FADE_PX,
    MOUTH_PAINT_GAIN,
    fade_with_motion,
    forward,
    guard_flow,
    keypoint_leftover,
    mouth_opening,
    paint_in_grey_for_grey_photos,
    paint_only_opening_mouth,
    snap_to_keypoints,
    unfold_beside_face,
)
from .render import RENDER_BATCH, RENDERED, animate_crop, compiled_renderer, render_motion
from .weights import (
    WEIGHTS_DIR,
    WEIGHTS_NAME,
    load_models,
    load_pretrained,
    package_versions,
    save_models,
    verify_settings,
    weight_files,
    weight_settings,
)

__all__ = [
    "FOLD_GUARD_BLUR",
    "FOLD_GUARD_FACTOR",
    "FOLD_GUARD_GROW",
    "FOLD_GUARD_PASSES",
    "MOTION_FADE_PX",
    "MOUTH_PAINT_GAIN",
    "PARTS",
    "RENDERED",
    "RENDER_BATCH",
    "TPS_STEP",
    "WEIGHTS_DIR",
    "WEIGHTS_NAME",
    "AnimationModels",
    "GeneratorConfig",
    "animate_crop",
    "build_decoder",
    "build_encoder",
    "build_models",
    "build_refiner",
    "compiled_renderer",
    "fade_with_motion",
    "forward",
    "guard_flow",
    "keypoint_leftover",
    "load_models",
    "load_pretrained",
    "mouth_opening",
    "package_versions",
    "paint_in_grey_for_grey_photos",
    "paint_only_opening_mouth",
    "refiner_input",
    "render_motion",
    "save_models",
    "snap_to_keypoints",
    "unfold_beside_face",
    "verify_settings",
    "weight_files",
    "weight_settings",
]
