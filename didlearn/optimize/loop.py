"""The train step (the one in the package), devices and distribution, the fit loop, checkpoints.

::

    (source, driving, ks, kd) batches ─► make_train_step: forward, compute_losses, GradientTape,
        one Adam update ─► fit: steps, log.csv, checkpoints (resume), config.json, losses.png
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from .. import generator
from ..generator import AnimationModels
from ..quiet import optimizer_notes_held_back
from .logs import LOG_FILE, CsvLog, run_config, save_loss_plot, write_config
from .losses import DEFAULT_WEIGHTS, LossWeights, compute_losses

#: ``step(batch) -> losses``: one update on a ``(source, driving, ks, kd)`` batch.
TrainStep = Callable[[tuple], dict[str, tf.Tensor]]

# --------------------------------------------------------------------------------------------
# Devices: one code path for a CPU, one GPU or several
# --------------------------------------------------------------------------------------------


def cluster_task() -> tuple[int, int]:
    """``(workers, this worker's index)`` of the cluster ``TF_CONFIG`` describes; ``(1, 0)``
    without one.

    ``TF_CONFIG`` is TensorFlow's own description of a multi-machine run, one JSON per worker:
    ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker",
    "index": 0}}`` (README, "Training on several machines").

    Raises:
        UsageError: ``TF_CONFIG`` is not such a JSON.
    """
    from ..errors import UsageError

    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return 1, 0
    try:
        config = json.loads(text)
        workers = len(config["cluster"].get("chief", [])) + len(config["cluster"]["worker"])
        index = int(config["task"]["index"]) + (config["task"]["type"] == "worker") * len(
            config["cluster"].get("chief", [])
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(
            f"TF_CONFIG is not a cluster description ({err}): expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    return workers, index


def distribution_strategy() -> tf.distribute.Strategy:
    """The strategy for this machine and cluster: ``MultiWorkerMirroredStrategy`` when
    ``TF_CONFIG`` names several workers (each keeps a full copy of the weights; gradients are
    summed across them every step), ``MirroredStrategy`` across several GPUs, else the default.

    Call it before anything else touches TensorFlow's devices: collective operations must be
    configured when the runtime starts.
    """
    if cluster_task()[0] > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def use_mixed_precision() -> bool:
    """Turn on float16 compute (float32 weights) when a GPU is present; return whether it did.

    On a CPU float16 is slower, so it stays off. Call it before building the models.
    """
    if not tf.config.list_logical_devices("GPU"):
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


# --------------------------------------------------------------------------------------------
# Train step
# --------------------------------------------------------------------------------------------


def make_optimizer(lr: float = 2e-4, mixed: bool = False) -> keras.optimizers.Optimizer:
    """Adam (β1 = 0.5 as in GAN-style generators), wrapped in loss scaling for float16."""
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.5, beta_2=0.999)
    return keras.optimizers.LossScaleOptimizer(opt) if mixed else opt


def make_train_step(
    models: AnimationModels,
    optimizer: keras.optimizers.Optimizer,
    weights: LossWeights = DEFAULT_WEIGHTS,
    strategy: tf.distribute.Strategy | None = None,
    compiled: bool = True,
) -> TrainStep:
    """A ``step(batch) -> losses``: forward, losses, gradients, one Adam update.

    The losses are those of the weights *before* the update. With several replicas each
    computes the gradient of its share of the batch; the losses are scaled by ``1 / replicas``
    so the summed gradient is that of the global mean.

    Args:
        compiled: wrap the step in ``tf.function`` (long runs). False runs it eagerly: no
            tracing wait before the first step, which is what a handful of steps needs (the
            chapter 5 widget).
    """
    from ..features import PERCEPTUAL_LAYERS, feature_extractor

    strategy = strategy or tf.distribute.get_strategy()
    variables = models.trainable_variables
    # Create every variable before tracing: Adam's slots and the VGG network built inside the
    # trace would make tf.function trace the step twice (tens of seconds on a CPU).
    if not optimizer.built:  # building again would reset a used optimizer's moments
        with strategy.scope():
            optimizer.build(variables)
    if weights.perceptual:
        feature_extractor(PERCEPTUAL_LAYERS)

    def replica_step(source, driving, ks, kd):
        with tf.GradientTape() as tape:
            out = generator.forward(models, source, ks, kd, training=True)
            losses = compute_losses(out, driving, ks, kd, weights)
            total = losses["total"] / strategy.num_replicas_in_sync
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                total = optimizer.scale_loss(total)
        grads = tape.gradient(total, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return losses

    def step(batch):
        per_replica = strategy.run(replica_step, args=tuple(batch))
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    if not compiled:
        return step
    traced = tf.function(step, reduce_retracing=True)
    first = [True]

    def compiled_step(batch):
        if not first[0]:
            return traced(batch)
        first[0] = False
        # grappler's remapper gives up on the decoder's gradient graph and logs an ERROR line
        # for it ("remapper failed: INVALID_ARGUMENT"); the step itself is right
        with optimizer_notes_held_back():
            return traced(batch)

    return compiled_step


# --------------------------------------------------------------------------------------------
# Fit loop and checkpoints
# --------------------------------------------------------------------------------------------


def _checkpoints(
    log_dir: Path, models: AnimationModels, optimizer: keras.optimizers.Optimizer
) -> tuple[tf.train.CheckpointManager, int]:
    """The run's checkpoint manager (``log_dir/checkpoints``, TF writes them) and the step to
    resume from (0 for a new run; the models and optimizer are restored otherwise)."""
    parts = {p: getattr(models, p) for p in generator.PARTS}
    ckpt = tf.train.Checkpoint(optimizer=optimizer, **parts)
    manager = tf.train.CheckpointManager(ckpt, log_dir / "checkpoints", max_to_keep=2)
    if not manager.latest_checkpoint:
        return manager, 0
    ckpt.restore(manager.latest_checkpoint)
    return manager, _checkpoint_step(manager.latest_checkpoint)


def _training_options(
    dataset: tf.data.Dataset,
    optimizer: keras.optimizers.Optimizer,
    strategy: tf.distribute.Strategy,
    **options: Any,
) -> dict[str, Any]:
    """What fit itself knows of a run: the batch, the learning rate really used, the devices."""
    spec = tf.nest.flatten(dataset.element_spec)[0]
    return {
        "batch": spec.shape[0],  # the global batch (None if the dataset's last one is short)
        "lr": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
        "replicas": strategy.num_replicas_in_sync,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        **options,
    }


def fit(
    models: AnimationModels,
    dataset: tf.data.Dataset,
    steps: int,
    lr: float = 2e-4,
    weights: LossWeights = DEFAULT_WEIGHTS,
    log_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    max_minutes: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train for ``steps`` batches; return the per-step losses.

    ``max_minutes``: stop earlier once this much wall time has passed (a class's lunch break,
    a CI budget); the run ends as if ``steps`` were reached, with a checkpoint and the plot.
    With ``log_dir``: the run's whole configuration at each start (``config.json``: loss weights,
    model config, ``generator.weight_settings()``, training options, package versions, git
    commit), a CSV log (``log.csv``: step, seconds, every loss), checkpoints every
    ``checkpoint_every`` steps (``checkpoints/``; a rerun resumes from the latest) and the loss
    curves (``losses.png``) at the end. ``options``: the caller's training options for
    ``config.json`` (e.g. ``seed``, ``clips``).

    No global random state is set here: the data's randomness comes from the dataset's seeds.
    """
    from tqdm.auto import tqdm

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        optimizer = optimizer or make_optimizer(lr)
    step_fn = make_train_step(models, optimizer, weights, strategy)
    manager, log, done = None, None, 0
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        manager, done = _checkpoints(log_dir, models, optimizer)
        training = _training_options(
            dataset,
            optimizer,
            strategy,
            steps=steps,
            start_step=done,
            checkpoint_every=checkpoint_every,
            max_minutes=max_minutes,
            **(options or {}),
        )
        write_config(log_dir, run_config(models, weights, training))
    history: list[dict[str, float]] = []
    batches = iter(strategy.experimental_distribute_dataset(dataset))
    bar = tqdm(range(done, steps), desc="train", unit="step", disable=not progress)
    t0 = time.perf_counter()
    try:
        log = CsvLog(log_dir / LOG_FILE) if log_dir is not None else None
        for i in bar:
            losses = {k: float(v) for k, v in step_fn(next(batches)).items()}
            row = {"step": i + 1, "seconds": time.perf_counter() - t0, **losses}
            history.append(row)
            bar.set_postfix(l1=f"{losses['l1']:.4f}", total=f"{losses['total']:.4f}")
            if log is not None:
                log.write(row)
            if manager is not None and (i + 1) % checkpoint_every == 0:
                manager.save(checkpoint_number=i + 1)
            if max_minutes is not None and row["seconds"] > 60.0 * max_minutes:
                break
    finally:
        bar.close()
        if log is not None:
            log.close()
    if manager is not None and history:
        manager.save(checkpoint_number=history[-1]["step"])
        save_loss_plot(log_dir)
    return history


def load_checkpoint(
    log_dir: str | os.PathLike, config: generator.GeneratorConfig | None = None
) -> tuple[AnimationModels, int]:
    """The models of the latest checkpoint of a :func:`fit` run (e.g. while it still trains).

    Returns:
        ``(models, step)``.

    Raises:
        MissingResourceError: no checkpoint in ``log_dir/checkpoints``.
    """
    from ..errors import MissingResourceError

    latest = tf.train.latest_checkpoint(str(Path(log_dir, "checkpoints")))
    if latest is None:
        raise MissingResourceError(f"no checkpoint in {Path(log_dir, 'checkpoints')}")
    models = generator.build_models(config)
    parts = {p: getattr(models, p) for p in generator.PARTS}
    tf.train.Checkpoint(**parts).restore(latest).expect_partial()
    return models, _checkpoint_step(latest)


def _checkpoint_step(path: str) -> int:
    """The training step a checkpoint was saved at: :func:`fit` numbers them by step
    (``ckpt-700``), which is not the optimizer's count when it was given a used optimizer."""
    return int(path.rsplit("-", 1)[-1])
