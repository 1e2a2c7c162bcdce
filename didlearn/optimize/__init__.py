"""Gradient optimization (chapter 5): losses, training data, the train step, fitting, fine-tuning.

Training is *self-reenactment*: two frames of the same talking-head video, a source and a
driving frame, with their landmarks. The models animate the source with the driving frame's
landmarks, and the loss compares the result with the driving frame itself, which is the right
answer::

    video folder ─► prepare_clips (crop, landmarks; cached) ─► pair_dataset (tf.data, augmented)
        ─► (source, driving, ks, kd) batches ─► train step (GradientTape) ─► Adam ─► weights

The subpackage, in the order its modules depend on each other:

* :mod:`.losses` — the loss-term registry (:data:`LOSS_TERMS`, ``@loss_term``),
  :class:`LossWeights` built from it, :func:`compute_losses`;
* :mod:`.split` — who is in which clip (:func:`person_of`) and the validation clips no run
  trains on (:data:`VALIDATION_CLIPS`, :func:`split_videos`);
* :mod:`.clips` — clips as face crops (the crop recipe is :func:`didlearn.reenactment.crop_clip`),
  their cache (keyed by the video's bytes), pairs drawn evenly by person, augmented, in
  ``tf.data``;
* :mod:`.logs` — what :func:`fit` writes in its log folder (``config.json``, ``log.csv``,
  ``losses.png``) and how to read it;
* :mod:`.loop` — devices and distribution, the one train step, :func:`fit`, checkpoints;
* :mod:`.finetune` — per-photo fine-tuning;
* :mod:`.cli` — ``python -m didlearn.optimize --videos DIR ... --steps N --out FOLDER`` trains
  from the command line (how the shipped weights were made: ``didlearn/weights/MODEL_CARD.md``).

Everything public is re-exported here: ``from didlearn import optimize; optimize.fit(...)``.
"""

from .cli import main
from .clips import Clip, augment_pair, pair_dataset, prepare_clip, prepare_clips, video_digest
from .finetune import copy_models, fine_tune, self_pairs
from .logs import plot_history, read_config, read_log
from .loop import (
    cluster_task,
    distribution_strategy,
    fit,
    load_checkpoint,
    make_optimizer,
    make_train_step,
    use_mixed_precision,
)
from .losses import (
    DEFAULT_WEIGHTS,
    LOSS_TERMS,
    LossTerm,
    LossWeights,
    compute_losses,
    describe_losses,
    fold_loss,
    keypoint_loss,
    loss_term,
    parse_loss_weights,
)
from .split import VALIDATION_CLIPS, VALIDATION_PEOPLE, person_of, split_videos

__all__ = [
    "DEFAULT_WEIGHTS",
    "LOSS_TERMS",
    "VALIDATION_CLIPS",
    "VALIDATION_PEOPLE",
    "Clip",
    "LossTerm",
    "LossWeights",
    "augment_pair",
    "cluster_task",
    "compute_losses",
    "copy_models",
    "describe_losses",
    "distribution_strategy",
    "fine_tune",
    "fit",
    "fold_loss",
    "keypoint_loss",
    "load_checkpoint",
    "loss_term",
    "main",
    "make_optimizer",
    "make_train_step",
    "pair_dataset",
    "parse_loss_weights",
    "person_of",
    "plot_history",
    "prepare_clip",
    "prepare_clips",
    "read_config",
    "read_log",
    "self_pairs",
    "split_videos",
    "use_mixed_precision",
    "video_digest",
]
