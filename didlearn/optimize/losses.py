"""The loss terms of training, in one registry, and their weights.

Every term is a function registered with :func:`loss_term`; that one table is what
:class:`LossWeights` (one field per term), :func:`compute_losses`, :func:`parse_loss_weights`
(the CLI's ``--weight``), :func:`describe_losses` and the chapter 5 widget's sliders read. Adding
a term is one function plus its ``@loss_term(...)`` line, above the ``LossWeights`` definition.

All terms are means, so they do not depend on the batch or image size. Each term function takes
``(out, target, ks, kd, weights)``: the :func:`generator.forward` output (``frame``, ``flow``,
``colour``, ``mask``), the true driving frames ``(B, S, S, 3)`` float32 (no gradient), the photo's
and the driving landmarks ``(B, N, 2)`` (crop pixels) and the :class:`LossWeights` (for a term's
own settings, like the perceptual scales); it returns a float32 scalar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from .. import generator
from ..motion import area_ratio_tensor, inside_mouth, outside_face

#: :func:`generator.forward`'s output: ``frame``, ``flow``, ``colour``, ``mask`` tensors.
Outputs = Mapping[str, tf.Tensor]
#: ``(out, target, ks, kd, weights) -> scalar``: see the module docstring.
LossFn = Callable[[Outputs, tf.Tensor, tf.Tensor, tf.Tensor, Any], tf.Tensor]


@dataclass(frozen=True)
class LossTerm:
    """One registered loss term.

    Attributes:
        name: its key in :func:`compute_losses`' dict and the log, and its weight's field.
        compute: the term's function (:data:`LossFn`).
        default: the weight training uses.
        description: one line, for printouts.
        short: abbreviation for plot legends.
        top, step: range (0 .. top) and step of the chapter 5 widget's slider.
        always: computed (and logged) even at weight 0: the progress bar and plots need it.
    """

    name: str
    compute: LossFn
    default: float
    description: str
    short: str
    top: float
    step: float
    always: bool = False


#: The registry: every loss term by name, in the order of the logs and the widget's sliders.
LOSS_TERMS: dict[str, LossTerm] = {}


def loss_term(
    name: str,
    default: float,
    description: str,
    short: str,
    top: float,
    step: float,
    always: bool = False,
) -> Callable[[LossFn], LossFn]:
    """Decorator: register the function as the loss term ``name`` (see :class:`LossTerm`)."""

    def register(fn: LossFn) -> LossFn:
        if name in LOSS_TERMS:
            raise ValueError(f"loss term '{name}' is registered already")
        LOSS_TERMS[name] = LossTerm(name, fn, default, description, short, top, step, always)
        return fn

    return register


def keypoint_loss(flow: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor) -> tf.Tensor:
    """``mean |kd + F(kd) - ks| / S``: where each target landmark reads from, vs the photo's."""
    size = tf.cast(tf.shape(flow)[2], tf.float32)
    return tf.reduce_mean(tf.abs(generator.keypoint_leftover(flow, ks, kd))) / size


def fold_loss(flow: tf.Tensor, landmarks: tf.Tensor | None = None) -> tf.Tensor:
    """``mean(max(0, -det(I + ∇F)))``: how much the backward warp folds over itself.

    A fold shows the same photo pixels in two places: beside a turned head, a mirrored ghost of
    the cheek. With the driving ``landmarks`` (``(B, 68, 2)`` pixels) only folds outside the face
    outline are priced: inside it a fold stands in for an occlusion the warp cannot express (lips
    closing over the teeth), and the landmarks need it (MODEL_CARD).
    """
    folded = tf.nn.relu(-area_ratio_tensor(flow))[..., None]
    if landmarks is not None:
        folded *= outside_face(landmarks, flow.shape[1], flow.shape[2])
    return tf.reduce_mean(folded)


@loss_term(
    "l1",
    default=1.0,
    description="mean |frame - driving| (pixels in [0, 1])",
    short="l1",
    top=2,
    step=0.1,
    always=True,
)
def l1_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """Pixel L1 of the output frame."""
    return tf.reduce_mean(tf.abs(tf.cast(out["frame"], tf.float32) - target))


@loss_term(
    "perceptual",
    default=0.1,
    description="VGG pyramid distance of frame and driving",
    short="perc",
    top=1,
    step=0.05,
)
def perceptual_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """Chapter 1's VGG pyramid distance (``features.perceptual_distance``) at
    ``weights.perceptual_scales``."""
    from ..features import perceptual_distance

    frame = tf.cast(out["frame"], tf.float32)
    return perceptual_distance(frame, target, scales=weights.perceptual_scales)


@loss_term(
    "keypoint",
    default=10.0,
    description="mean |kd + F(kd) - ks| / S of the refined flow",
    short="kp",
    top=50,
    step=1,
)
def keypoint_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """The refined backward flow must carry every target landmark back onto the photo's.

    The output's landmarks then sit at the driving landmarks, and the refiner cannot trade face
    geometry for a lower pixel loss.
    """
    return keypoint_loss(tf.cast(out["flow"], tf.float32), ks, kd)


@loss_term(
    "colour",
    default=0.5,
    description="mean |C - driving| of the decoder's painting C",
    short="colour",
    top=2,
    step=0.1,
)
def colour_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """The painting ``C`` judged on its own.

    In the frame ``M·warp + (1-M)·C`` the painting only counts where the mask lets it, and the
    mask starts at 0.98 everywhere, so without this term ``C`` never learns to paint and the mask
    never has a reason to open (the first shipped weights ended with M = 1.00 and a yellow C).
    """
    return tf.reduce_mean(tf.abs(tf.cast(out["colour"], tf.float32) - target))


@loss_term(
    "paint",
    default=0.05,
    description="mean (1 - M): a price on every painted pixel",
    short="paint",
    top=0.5,
    step=0.01,
)
def paint_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """``mean (1 - M)``: a price on painting.

    ``C`` is smooth (the decoder works at half resolution), so blending it in a little almost
    everywhere shaves a little L1 off, and blurs the eyes, brows, lips and jaw that a viewer (and
    a landmark detector) reads. With a price, the mask opens only where the warp has nothing
    right to show: background a turning head uncovers, the inside of an opening mouth.
    """
    return tf.reduce_mean(1.0 - tf.cast(out["mask"], tf.float32))


@loss_term(
    "mouth",
    default=0.5,
    description="mean |frame - driving| and |C - driving| inside the driving mouth",
    short="mouth",
    top=5,
    step=0.1,
)
def mouth_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """Pixel L1 of the frame and of the painting ``C`` inside the driving frame's mouth.

    The mouth is about 2 % of a crop, so in the plain L1 its teeth, tongue and dark inside count
    for next to nothing, yet it is the one place a warp of the photo cannot be right when it
    opens wider than the photo's, and the one place the inference guard lets the painting show
    (``generator.paint_only_opening_mouth``). Averaged over the mouth alone, it weighs about as
    much as the whole frame's L1.
    """
    size = out["frame"].shape[1:3]
    mouth = inside_mouth(kd, size[0], size[1])
    area = 3.0 * tf.reduce_sum(mouth) + 1.0

    def error(image: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(mouth * tf.abs(tf.cast(image, tf.float32) - target)) / area

    return 0.5 * (error(out["frame"]) + error(out["colour"]))


# off by default: a stage trained with fold = 10 removed the shipped model's folds, but the mask
# painted the uncovered background blurrily instead, and AKD got worse (MODEL_CARD)
@loss_term(
    "fold",
    default=0.0,
    description="folded warp beside the face (fold_loss)",
    short="fold",
    top=50,
    step=1,
)
def fold_term(
    out: Outputs, target: tf.Tensor, ks: tf.Tensor, kd: tf.Tensor, weights: Any
) -> tf.Tensor:
    """:func:`fold_loss` of the refined flow, priced beside the driving face only."""
    return fold_loss(out["flow"], kd)


_WEIGHTS_DOC = """Weights of the loss terms (one field per registered term), and the perceptual
    scales of the VGG pyramid.

    The VGG passes cost far more than the models: on a 2-core CPU a batch of 4 takes about
    4 s a step with the pyramid at 1/2, 1/4, 1/8 of the crop and well under half that at 1/4 and
    1/8 only. The coarse scales judge structure (where the eyes and mouth are, the face's
    shape); pixel L1 at full resolution covers the finest detail, and the fusion keeps the
    photo's own sharp pixels wherever the warp is right. On a GPU, add 1.0 and 0.5 back.
    """

#: A frozen dataclass built from the registry: ``LossWeights(l1=1.0, ..., perceptual_scales=...)``.
LossWeights = dataclasses.make_dataclass(
    "LossWeights",
    [(t.name, float, dataclasses.field(default=t.default)) for t in LOSS_TERMS.values()]
    + [("perceptual_scales", tuple[float, ...], dataclasses.field(default=(0.25, 0.125)))],
    frozen=True,
    namespace={"__doc__": _WEIGHTS_DOC, "__module__": __name__},
)
#: The weights training uses (every term's registered default).
DEFAULT_WEIGHTS = LossWeights()


def compute_losses(
    out: Outputs,
    target: tf.Tensor,
    ks: tf.Tensor,
    kd: tf.Tensor,
    weights: LossWeights = DEFAULT_WEIGHTS,
) -> dict[str, tf.Tensor]:
    """The loss terms of one batch and their weighted sum ``total`` (float32 scalars).

    A term with weight 0 is left out (it costs nothing), except the ``always`` ones (pixel L1).

    Args:
        out: :func:`generator.forward` output (``frame``, ``flow``, ``colour``, ``mask``).
        target: ``(B, S, S, 3)`` the true driving frames.
        ks, kd: ``(B, N, 2)`` photo and driving landmarks (crop pixels).
        weights: a :class:`LossWeights`.
    """
    target = tf.stop_gradient(tf.cast(target, tf.float32))
    losses = {
        t.name: t.compute(out, target, ks, kd, weights)
        for t in LOSS_TERMS.values()
        if t.always or getattr(weights, t.name)
    }
    losses["total"] = tf.add_n([getattr(weights, k) * v for k, v in losses.items()])
    return losses


def parse_loss_weights(items: Sequence[str]) -> LossWeights:
    """``LossWeights`` with the ``TERM=VALUE`` items (e.g. ``["fold=10", "paint=0.2"]``) changed.

    Raises:
        ValueError: an item is not ``TERM=NUMBER`` or names no loss term (the message lists them).
    """
    changed: dict[str, float] = {}
    for item in items:
        term, _, value = item.partition("=")
        if term not in LOSS_TERMS:
            raise ValueError(
                f"unknown loss term '{term}' in '{item}': use one of {', '.join(LOSS_TERMS)}"
            )
        try:
            changed[term] = float(value)
        except ValueError:
            raise ValueError(f"'{item}' needs a number after '=', e.g. {term}=0.5") from None
    return LossWeights(**changed)


def describe_losses(weights: LossWeights | None = None) -> str:
    """One line per registered term: name, weight (default when ``weights`` is None), meaning."""
    lines = []
    for t in LOSS_TERMS.values():
        w = t.default if weights is None else getattr(weights, t.name)
        lines.append(f"{t.name:<11} {w:<6g} {t.description}")
    return "\n".join(lines)
