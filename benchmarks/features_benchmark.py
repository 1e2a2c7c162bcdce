"""Speed of didlearn.features on this CPU: images per second at 256x256, batch 1 and 8.

Rows: ``feature_pyramid`` (4 scales, blocks 1-4), ``perceptual_distance`` forward, and
``perceptual_distance`` forward + gradient (what a training step pays), each with the default
layers of the function and with the alternative, all compiled with ``tf.function``. For the
distance rows "images/s" counts image *pairs* per second. The CPU is shared: run it twice.

    .venv/bin/python benchmarks/features_benchmark.py [--repeats 3] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from didlearn import features  # noqa: E402


def _timed(fn: Callable[[], object], repeats: int) -> float:
    """Seconds per call, after one warm-up call (tracing and first-run allocation excluded)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _cases(a: tf.Tensor, b: tf.Tensor) -> list[tuple[str, str, Callable[[], object]]]:
    blocks_1_3, blocks_1_4 = features.PERCEPTUAL_LAYERS, features.DEFAULT_LAYERS
    cases = []
    for label, layers in (("blocks 1-4", blocks_1_4), ("blocks 1-3", blocks_1_3)):
        pyramid = tf.function(lambda x, layers=layers: features.feature_pyramid(x, layers))
        cases.append(("feature_pyramid", label, lambda f=pyramid: f(a)))
    for label, layers in (("blocks 1-3", blocks_1_3), ("blocks 1-4", blocks_1_4)):
        dist = tf.function(
            lambda x, y, layers=layers: features.perceptual_distance(x, y, False, layers)
        )
        cases.append(("perceptual_distance", label, lambda f=dist: f(a, b)))

        @tf.function
        def loss_grad(x, y, layers=layers):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = features.perceptual_distance(x, tf.stop_gradient(y), False, layers)
            return loss, tape.gradient(loss, x)

        cases.append(("perceptual_distance + grad", label, lambda f=loss_grad: f(a, b)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"CPU threads: {os.cpu_count()}, TF {tf.__version__}, {args.size}x{args.size} RGB")
    print(f"{'function':<28}{'layers':<12}{'batch':>6}{'s/call':>9}{'images/s':>10}")
    for batch in args.batches:
        shape = (batch, args.size, args.size, 3)
        a = tf.constant(rng.random(shape, dtype=np.float32))
        b = tf.constant(rng.random(shape, dtype=np.float32))
        for name, label, fn in _cases(a, b):
            seconds = _timed(fn, args.repeats)
            print(f"{name:<28}{label:<12}{batch:>6}{seconds:>9.3f}{batch / seconds:>10.2f}")


if __name__ == "__main__":
    main()
