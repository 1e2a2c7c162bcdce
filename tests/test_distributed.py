"""Training on several machines: two worker processes on localhost (loopback only), driven by
``TF_CONFIG`` as the README describes, train a few steps and end with the same weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from didlearn import data, generator
from didlearn.errors import UsageError
from didlearn.optimize import cluster_task


def _free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on the loopback interface right now."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _worker_command(tmp_path, index: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "didlearn.optimize",
        "--videos",
        str(data.sample_driving_video()),
        "--max-frames",
        "8",
        "--size",
        "64",
        "--steps",
        "3",
        "--batch",
        "1",
        "--weight",
        "perceptual=0",
        "--log-dir",
        str(tmp_path / f"log{index}"),
        "--out",
        str(tmp_path / f"weights{index}"),
    ]


def test_two_workers_train_together_and_agree_on_the_weights(tmp_path):
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "CUDA_VISIBLE_DEVICES": ""}
        workers.append(
            subprocess.Popen(
                _worker_command(tmp_path, index),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = []
    try:
        for w in workers:
            logs.append(w.communicate(timeout=600)[0])
    finally:
        for w in workers:
            w.kill()
    for w, log in zip(workers, logs, strict=True):
        assert w.returncode == 0, log[-3000:]
    configs = [json.loads((tmp_path / f"log{i}" / "config.json").read_text()) for i in range(2)]
    assert [c["training"]["replicas"] for c in configs] == [2, 2]
    assert [c["training"]["worker"] for c in configs] == [0, 1]
    first, second = (generator.load_models(tmp_path / f"weights{i}") for i in range(2))
    # the run's whole configuration is kept next to the weights too
    assert first.info["run_config"] == configs[0] and second.info["run_config"] == configs[1]
    start = generator.build_models(generator.GeneratorConfig(size=64), seed=0)
    for part in generator.PARTS:
        mine, theirs = getattr(first, part).get_weights(), getattr(second, part).get_weights()
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    # and they did train: the weights moved from where both started
    trained = [w for part in generator.PARTS for w in getattr(first, part).get_weights()]
    initial = [w for part in generator.PARTS for w in getattr(start, part).get_weights()]
    assert any(not np.array_equal(a, b) for a, b in zip(trained, initial, strict=True))


def test_cluster_description_is_read_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_task() == (1, 0)
    hosts = ["a:1", "b:2", "c:3"]
    config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": 2}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert cluster_task() == (3, 2)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(UsageError, match="TF_CONFIG is not a cluster description"):
        cluster_task()
