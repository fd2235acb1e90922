"""The sweep's member axis sharded over several devices and over several processes:
the same histories as one device in one process. Device counts and jax.distributed must be
set up before jax initializes, so each configuration runs in its own Python process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from engine_worker import histories_json, sweep_kwargs
from helpers import tree_max_relative_error
from jaxnet import engine

WORKER = Path(__file__).resolve().parent / "engine_worker.py"
TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference(members: int) -> dict:
    """The sweep on this process's single CPU device, in float64."""
    with jax.enable_x64(True):
        kwargs = sweep_kwargs(members)
        result = engine.sweep(kwargs.pop("model"), kwargs.pop("optimizer"), kwargs.pop("train_data"),
                              devices=jax.devices()[:1], **kwargs)
        return {"histories": histories_json(result.histories), "params": [np.asarray(leaf) for leaf in jax.tree.leaves(result.params)]}


def environment(devices: int, members: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", SWEEP_MEMBERS=str(members))
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    return env


def assert_matches(record: dict, expected: dict) -> None:
    assert len(record["histories"]) == len(expected["histories"])
    for k, (got, want) in enumerate(zip(record["histories"], expected["histories"])):
        assert got["epoch"] == want["epoch"] and got["diverged"] == want["diverged"]
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, err_msg=f"member {k}: {name}")
    error = tree_max_relative_error([np.asarray(leaf) for leaf in record["params"]], expected["params"], floor=1e-6)
    assert error < 1e-9, error


def check(process: subprocess.CompletedProcess | subprocess.Popen, stderr: str) -> None:
    assert process.returncode == 0, f"worker exited with {process.returncode}:\n{stderr}"


# 3 members on 4 devices: padded to an even split (the even split runs in test_engine_devices;
# 4 members on 4 devices with -m slow)
@pytest.mark.parametrize("members", [3, pytest.param(4, marks=pytest.mark.slow)])
def test_a_sweep_sharded_over_four_devices_equals_one_device(tmp_path, members):
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(WORKER), "sweep", str(out)], env=environment(4, members),
                          capture_output=True, text=True, timeout=TIMEOUT)
    check(done, done.stderr)
    record = json.loads(out.read_text())
    assert record["devices"] == 4 and record["processes"] == 1
    assert_matches(record, reference(members))


def test_two_processes_split_a_sweep_and_agree_with_one(tmp_path):
    port = free_port()
    outs = [tmp_path / f"process{i}.json" for i in range(2)]
    workers = [subprocess.Popen([sys.executable, str(WORKER), "sweep", str(outs[i]), str(port), "2", str(i)],
                                env=environment(1, 3), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    errors = []
    try:
        for worker in workers:
            try:
                errors.append(worker.communicate(timeout=TIMEOUT)[1])
            except subprocess.TimeoutExpired:
                worker.kill()
                errors.append(worker.communicate()[1])
                pytest.fail(f"a worker took longer than {TIMEOUT} s:\n" + "\n---\n".join(errors))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, stderr in zip(workers, errors):
        check(worker, stderr)
    expected = reference(3)
    for out in outs:
        record = json.loads(out.read_text())
        assert record["devices"] == 2 and record["local_devices"] == 1 and record["processes"] == 2
        assert_matches(record, expected)
