"""Optical-flow benchmark: EPE, angular error and seconds per pair, every method side by side.

Methods: ``variational`` (didlearn's gradient-descent estimator), ``farneback`` and ``dis``
(OpenCV), and ``tvl1`` when OpenCV's contrib module is installed. Data: the synthetic pairs of
:func:`didlearn.flow.synthetic_pair` (affine, smooth, thin-plate) and, with ``--data DIR``, every
Middlebury-style sequence in DIR (a folder per sequence holding frame10.png, frame11.png,
flow10.flo).

    python benchmarks/flow_benchmark.py --data ../shared/data/flow \
        --json benchmarks/results/flow.json

The printed table and the JSON hold the same numbers; the mean is over the ``--data`` sequences
when given, else over the synthetic ones. The first variational call of each image size also
compiles its XLA graphs; that time is included (it is what a user waits for).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from results_file import write_json  # noqa: E402

from didlearn import flow as fl  # noqa: E402
from didlearn import flow_estimators as fe  # noqa: E402
from didlearn.data import load_image  # noqa: E402


def methods() -> dict[str, Callable]:
    """The estimators to compare, by the names used in the JSON."""
    out = {
        "variational": fe.estimate_flow_variational,
        "farneback": fe.farneback_flow,
        "dis": fe.dis_flow,
    }
    if fe.has_tvl1():
        out["tvl1"] = fe.tvl1_flow
    return out


def synthetic_set(size: tuple[int, int], seed: int) -> dict[str, tuple]:
    """One pair per synthetic kind, named ``synthetic-KIND``."""
    kinds = fl.SYNTHETIC_KINDS
    return {f"synthetic-{k}": fl.synthetic_pair(k, size=size, seed=seed) for k in kinds}


def middlebury_set(root: Path) -> dict[str, tuple]:
    """Every sub-folder of ``root`` holding frame10.png, frame11.png and flow10.flo."""
    pairs = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = [d / "frame10.png", d / "frame11.png", d / "flow10.flo"]
        if all(f.exists() for f in files):
            pairs[d.name] = (load_image(files[0]), load_image(files[1]), fl.read_flo(files[2]))
    if not pairs:
        raise SystemExit(f"no sequence (frame10.png, frame11.png, flow10.flo) found in {root}")
    return pairs


def evaluate(pairs: dict[str, tuple], estimators: dict[str, Callable]) -> dict[str, dict]:
    """{sequence: {method: {"epe", "aae", "seconds"}}}, printing one line per run."""
    results: dict[str, dict] = {}
    for name, (i1, i2, gt) in pairs.items():
        results[name] = {}
        for method, estimate in estimators.items():
            start = time.perf_counter()
            flow = estimate(i1, i2)
            seconds = time.perf_counter() - start
            results[name][method] = {
                "epe": fl.endpoint_error(flow, gt),
                "aae": fl.angular_error(flow, gt),
                "seconds": seconds,
            }
            row = results[name][method]
            print(
                f"  {name:<20} {method:<12} EPE {row['epe']:.3f}  AAE {row['aae']:.2f}  "
                f"{seconds:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    return results


def mean_over(results: dict[str, dict], names: list[str]) -> dict[str, dict]:
    """Per-method mean of every number over the sequences ``names``."""
    methods_seen = list(results[names[0]])
    return {
        m: {k: float(np.mean([results[n][m][k] for n in names])) for k in ("epe", "aae", "seconds")}
        for m in methods_seen
    }


def table(results: dict[str, dict], mean: dict[str, dict]) -> str:
    """A plain-text table: one row per sequence (and the mean), EPE / AAE / seconds per method."""
    ms = list(mean)
    head = f"{'sequence':<22}" + "".join(f"{m + ' EPE/AAE/s':>28}" for m in ms)
    lines = [head, "-" * len(head)]
    rows = [*results.items(), ("MEAN", mean)]
    for name, row in rows:
        cells = "".join(
            f"{row[m]['epe']:>10.3f}{row[m]['aae']:>9.2f}{row[m]['seconds']:>9.2f}" for m in ms
        )
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder of Middlebury-style sequences")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this path")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic pairs")
    args = parser.parse_args(argv)

    pairs = {} if args.no_synthetic else synthetic_set(tuple(args.size), args.seed)
    real = middlebury_set(args.data) if args.data else {}
    pairs.update(real)
    if not pairs:
        parser.error("nothing to evaluate: give --data or drop --no-synthetic")
    results = evaluate(pairs, methods())
    mean = mean_over(results, list(real) if real else list(results))
    print(table(results, mean))
    print(f"(mean over {'the --data sequences' if real else 'the synthetic pairs'})")
    out = {"mean": mean, "sequences": results}
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
