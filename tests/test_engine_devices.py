"""Devices: `import jaxnet` gives jax one CPU device per core (unless told otherwise), a
sweep sharded over those devices equals one device, and fit(data_parallel=True) over four
simulated devices equals one device. Device counts are fixed when jax starts its backend,
so each configuration runs in its own Python process (tests/engine_worker.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxnet
from helpers import tree_max_relative_error
from test_distributed import assert_matches, reference

WORKER = Path(__file__).resolve().parent / "engine_worker.py"
TIMEOUT = 180


def clean_environment(**extra: str) -> dict:
    """This environment without any device-count setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAXNET_HOST_DEVICES", "JAX_NUM_CPU_DEVICES")}
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    return env | extra


def worker(tmp_path, mode: str, env: dict, *args: str) -> dict:
    out = tmp_path / f"{mode}.json"
    done = subprocess.run([sys.executable, str(WORKER), mode, str(out), *args], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"worker exited with {done.returncode}:\n{done.stderr}"
    return json.loads(out.read_text())


# --- the device count chosen at import --------------------------------------------------------


@pytest.mark.parametrize("environ, cpus, expected", [
    ({}, 8, 8),
    ({}, 1, None),  # one core: nothing to do
    ({"JAXNET_HOST_DEVICES": "1"}, 8, None),  # turned off
    ({"JAXNET_HOST_DEVICES": "3"}, 8, 3),
    ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 8, None),  # the user's flag wins
    ({"XLA_FLAGS": "--xla_cpu_use_thunk_runtime=true"}, 8, 8),  # other flags do not matter
    ({"JAX_NUM_CPU_DEVICES": "2"}, 8, None),
    ({"JAX_PLATFORMS": "cuda"}, 8, None),  # a GPU-only process: leave the CPU alone
    ({"JAX_PLATFORMS": "cuda,cpu"}, 8, 8),
    ({"JAX_PLATFORMS": "cpu"}, 4, 4),
])
def test_the_host_device_count_rule(environ, cpus, expected):
    assert jaxnet.devices.host_device_count(environ, cpus) == expected


@pytest.mark.parametrize("setting", ["0", "two", "-3"])
def test_a_bad_host_device_setting_is_refused(setting):
    with pytest.raises(ValueError, match="JAXNET_HOST_DEVICES must be a positive integer"):
        jaxnet.devices.host_device_count({"JAXNET_HOST_DEVICES": setting}, 8)


def test_importing_jaxnet_makes_one_cpu_device_per_core(tmp_path):
    cores = len(os.sched_getaffinity(0))
    assert worker(tmp_path, "devices", clean_environment())["devices"] == cores
    assert worker(tmp_path, "devices", clean_environment(JAXNET_HOST_DEVICES="1"))["devices"] == 1
    assert worker(tmp_path, "devices", clean_environment(JAXNET_HOST_DEVICES="3"))["devices"] == 3
    flagged = clean_environment(JAXNET_HOST_DEVICES="3", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert worker(tmp_path, "devices", flagged)["devices"] == 2


# --- a sweep over the host devices ------------------------------------------------------------------


def test_a_sweep_over_the_default_host_devices_equals_one_device(tmp_path):
    env = clean_environment(JAXNET_HOST_DEVICES="4", SWEEP_MEMBERS="3")
    record = worker(tmp_path, "sweep", env)
    assert record["devices"] == 4
    assert_matches(record, reference(3))


# --- data-parallel fit ------------------------------------------------------------------------------


def test_data_parallel_fit_over_four_devices_equals_one_device(tmp_path):
    record = worker(tmp_path, "data_parallel", clean_environment(JAXNET_HOST_DEVICES="4"))
    assert record["devices"] == 4
    parallel, single = record["parallel"], record["single"]
    assert parallel["param_devices"] == [4] and single["param_devices"] == [1]
    error = tree_max_relative_error([np.asarray(p) for p in parallel["params"]],
                                    [np.asarray(p) for p in single["params"]], floor=1e-3)
    assert error < 1e-5, error
    (got,), (want,) = parallel["histories"], single["histories"]
    assert got["epoch"] == want["epoch"]
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, err_msg=name)
    assert "batch_size 5 is not a multiple of 4" in record["indivisible_batch"]
