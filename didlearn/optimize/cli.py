"""The training command line: ``python -m didlearn.optimize --videos DIR ... --steps N --out DIR``.

This is how the shipped weights were made (``didlearn/weights/MODEL_CARD.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from .. import generator
from ..data import VIDEO_SUFFIXES
from ..errors import UsageError
from .clips import pair_dataset, prepare_clips
from .loop import cluster_task, distribution_strategy, fit, make_optimizer, use_mixed_precision
from .losses import describe_losses, parse_loss_weights
from .split import VALIDATION_CLIPS, split_videos


def _video_files(sources: Sequence[str]) -> list[Path]:
    """The videos of the files and folders given (a folder: its videos, sorted); the bundled
    clip when there are none."""
    from .. import data

    paths: list[Path] = []
    for s in sources:
        p = Path(s)
        paths += (
            sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if p.is_dir()
            else [p]
        )
    return paths or [data.sample_driving_video()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m didlearn.optimize",
        description=main.__doc__,
        epilog="loss terms (TERM, default weight, meaning):\n" + describe_losses(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--videos", nargs="*", default=[], help="videos or folders (default: the bundled clip)"
    )
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="video stems to hold out besides the validation clips, which never train "
        f"({', '.join(VALIDATION_CLIPS)})",
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this long (checkpointed)"
    )
    parser.add_argument("--batch", type=int, default=4, help="pairs per step and replica")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (models: 256)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-frames", type=int, default=None, help="frames per video")
    parser.add_argument("--log-dir", default="runs/train", help="log, checkpoints, loss plot")
    parser.add_argument("--out", default="runs/weights", help="folder for the final weights")
    parser.add_argument("--init", default=None, help="start from the weights in this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="TERM=VALUE",
        help="change a loss weight, e.g. --weight fold=10 (repeatable; default: LossWeights)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Train the models on a folder of talking-head videos and save the weights."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        weights = parse_loss_weights(args.weight)
    except ValueError as err:
        parser.error(str(err))

    try:
        paths, held_out = split_videos(_video_files(args.videos))
    except UsageError as err:
        parser.error(str(err))
    paths = [p for p in paths if p.stem not in set(args.exclude)]
    if held_out:
        print(f"validation clips, not trained on: {', '.join(p.stem for p in held_out)}")
    strategy = distribution_strategy()  # first: a cluster's collectives start with the runtime
    mixed = use_mixed_precision()
    workers, worker = cluster_task()
    config = generator.GeneratorConfig(size=args.size)
    clips = prepare_clips(paths, args.size, args.max_frames, cache=Path(args.log_dir, "clips"))
    frames = sum(len(c.frames) for c in clips)
    people = sorted({c.person for c in clips})
    print(
        f"{len(clips)} videos of {len(people)} people, {frames} frames "
        "(pairs drawn evenly by person)"
    )
    with strategy.scope():
        if args.init:
            models = generator.load_models(args.init)
            if models.config.size != args.size:
                parser.error(
                    f"--init {args.init} holds {models.config.size}-px weights, "
                    f"not --size {args.size}"
                )
        else:
            # the seed of the initial weights: generator.build_models sets Keras' global seed
            models = generator.build_models(config, seed=args.seed)
        optimizer = make_optimizer(args.lr, mixed)
    # every worker draws its own pairs (its own seed), and the global batch is split among all
    ds = pair_dataset(clips, args.batch * strategy.num_replicas_in_sync, seed=args.seed + worker)
    if workers > 1:
        ds = ds.with_options(_unsharded())
    t0 = time.perf_counter()
    history = fit(
        models,
        ds,
        args.steps,
        log_dir=args.log_dir,
        strategy=strategy,
        optimizer=optimizer,
        weights=weights,
        checkpoint_every=100,
        max_minutes=args.max_minutes,
        options={
            "seed": args.seed,
            "batch_per_replica": args.batch,
            "clips": [c.name for c in clips],
            "people": people,
            "validation_clips": list(VALIDATION_CLIPS),
            "frames": frames,
            "videos": [str(p) for p in paths],
            "max_frames": args.max_frames,
            "init": args.init,
            "mixed_precision": mixed,
            "workers": workers,
            "worker": worker,
            "out": args.out,
        },
    )
    info = _weights_info(args, weights, clips, history, t0)
    generator.save_models(models, args.out, info=info, overwrite=True)
    print(f"weights written to {args.out}")
    return 0


def _unsharded() -> tf.data.Options:
    """Dataset options for a cluster: no automatic sharding (pairs come from a generator, not
    files; each worker's own seed makes its pairs differ)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def _weights_info(args, weights, clips, history, t0: float) -> dict:
    """What is saved with the weights (``generator.save_models``' ``info``): the run's summary
    and its whole ``config.json`` (the same record as in the log folder)."""
    from .logs import read_config

    last = history[-min(100, len(history)) :] if history else []
    return {
        "run_config": read_config(args.log_dir),
        "videos": [c.name for c in clips],
        "people": len({c.person for c in clips}),
        "validation_clips": list(VALIDATION_CLIPS),
        "frames": sum(len(c.frames) for c in clips),
        "steps": int(history[-1]["step"]) if history else args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "loss_weights": dataclasses.asdict(weights),
        "seconds_this_run": round(time.perf_counter() - t0, 1),
        "final_losses_mean_last_100": {
            k: float(np.mean([h[k] for h in last]))
            for k in (last[0] if last else {})
            if k not in ("step", "seconds")
        },
        "devices": [d.name for d in tf.config.list_logical_devices()],
    }
