"""Checkpoints and resume: an interrupted run ends exactly where an uninterrupted one does."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from helpers import tree_allclose
from jaxnet import checkpoint, engine, mlp, train
from jaxnet.checkpoint import ConfigMismatchError
from test_engine import METRICS, small_net, teacher

TESTS = Path(__file__).resolve().parent


class Killed(Exception):
    pass


def kill_at(epoch):
    def callback(at, histories):
        if at >= epoch:
            raise Killed
    return callback


def metrics(history):
    return {name: getattr(history, name) for name in METRICS + ("epoch", "step")}


def assert_same_run(a, b):
    for part in ("params", "opt_state", "best_params"):
        assert tree_allclose(getattr(a, part), getattr(b, part), rtol=0, atol=0), part
    histories = [a.history, b.history] if hasattr(a, "history") else [a.histories, b.histories]
    if hasattr(a, "history"):
        assert metrics(a.history) == metrics(b.history)
        assert a.history.best_epoch == b.history.best_epoch
    else:
        assert [metrics(h) for h in histories[0]] == [metrics(h) for h in histories[1]]


@pytest.fixture(scope="module")
def setup():
    return dict(train_data=teacher(200), val=teacher(100, seed=1), batch_size=32, seed=7, log=None)


def run(setup, **kwargs):
    return engine.fit(small_net(3), train.make_optimizer("adam", learning_rate=0.01), **(setup | kwargs))


def test_a_run_killed_by_an_exception_resumes_to_the_same_parameters(setup, tmp_path):
    uninterrupted = run(setup, epochs=4)
    with pytest.raises(Killed):
        run(setup, epochs=4, checkpoint_dir=tmp_path, callback=kill_at(3))
    assert checkpoint.latest_epoch(tmp_path) == 2
    lines = []
    resumed = run(setup, epochs=4, checkpoint_dir=tmp_path, resume=True, log=lines.append)
    assert lines[0].startswith("resumed") and len(lines) == 1 + 2  # epochs 3 and 4 trained again
    assert_same_run(resumed, uninterrupted)


def test_a_checkpoint_holds_the_state_of_its_epoch(setup, tmp_path):
    two_epochs = run(setup, epochs=2)
    with pytest.raises(Killed):
        run(setup, epochs=3, checkpoint_dir=tmp_path, callback=kill_at(3))
    like = {"params": small_net(3), "opt_state": train.make_optimizer("adam").init(small_net(3)),
            "best_params": small_net(3), "data_keys": jax.random.PRNGKey(0)}
    epoch, state, meta = checkpoint.restore(tmp_path, like)
    assert epoch == 2
    assert tree_allclose(state["params"], two_epochs.params, rtol=0, atol=0)
    assert tree_allclose(state["opt_state"], two_epochs.opt_state, rtol=0, atol=0)
    assert np.array_equal(state["data_keys"], jax.random.PRNGKey(setup["seed"]))  # the RNG state
    assert meta["histories"][0]["val_loss"] == two_epochs.history.val_loss


def test_a_really_killed_process_resumes_to_the_same_parameters(tmp_path):
    from engine_worker import FIT_EPOCHS, fit_kwargs

    child = subprocess.Popen([sys.executable, str(TESTS / "engine_worker.py"), "fit", str(tmp_path)],
                             stderr=subprocess.PIPE, env=os.environ | {"JAX_PLATFORMS": "cpu"})
    deadline = time.monotonic() + 120
    try:
        while not (tmp_path / "1").exists():
            assert child.poll() is None, f"the training process ended early:\n{child.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint appeared within 120 s"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    saved = checkpoint.latest_epoch(tmp_path)
    assert saved is not None and saved < FIT_EPOCHS  # killed mid-way

    kwargs = fit_kwargs()
    params, optimizer, data = kwargs.pop("params"), kwargs.pop("optimizer"), kwargs.pop("train_data")
    resumed = engine.fit(params, optimizer, data, checkpoint_dir=tmp_path, resume=True, **kwargs)
    uninterrupted = engine.fit(params, optimizer, data, **kwargs)
    assert len(resumed.history.epoch) == FIT_EPOCHS
    assert_same_run(resumed, uninterrupted)


def test_resuming_a_finished_run_trains_nothing(setup, tmp_path):
    first = run(setup, epochs=2, checkpoint_dir=tmp_path)
    again = run(setup, epochs=2, checkpoint_dir=tmp_path, resume=True)
    assert_same_run(again, first)


def test_resume_without_a_checkpoint_starts_afresh(setup, tmp_path):
    assert_same_run(run(setup, epochs=2, checkpoint_dir=tmp_path / "new", resume=True), run(setup, epochs=2))


def test_a_fresh_run_replaces_old_checkpoints(setup, tmp_path):
    run(setup, epochs=4, checkpoint_dir=tmp_path)
    run(setup, epochs=2, checkpoint_dir=tmp_path, seed=8)
    assert checkpoint.latest_epoch(tmp_path) == 2  # not the stale epoch 4 of the other run
    resumed = run(setup, epochs=3, checkpoint_dir=tmp_path, seed=8, resume=True)
    assert_same_run(resumed, run(setup, epochs=3, seed=8))


@pytest.mark.parametrize("change, named", [
    (dict(batch_size=64), "batch_size: saved 32, now 64"),
    (dict(seed=8), "seed: saved 7, now 8"),
    (dict(shuffle=False), "shuffle"),
    (dict(optimizer=train.make_optimizer("adam", learning_rate=0.1)), "hyperparams"),
    (dict(params=small_net(3, (20, 8, 3))), "params"),
])
def test_a_directory_of_another_configuration_refuses_to_resume(setup, tmp_path, change, named):
    run(setup, epochs=1, checkpoint_dir=tmp_path)
    kwargs = setup | dict(epochs=2, checkpoint_dir=tmp_path, resume=True)
    params = change.pop("params", small_net(3))
    optimizer = change.pop("optimizer", train.make_optimizer("adam", learning_rate=0.01))
    with pytest.raises(ConfigMismatchError, match="different configuration") as caught:
        engine.fit(params, optimizer, **(kwargs | change))
    assert named in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_killed_sweep_resumes_to_the_same_members(tmp_path):
    x, y = teacher(160)
    kwargs = dict(epochs=3, batch_size=32, val=teacher(80, seed=1), learning_rate=[0.05, 0.1, 1e9], init_seed=[0, 1, 2],
                  data_seed=[3, 4, 5], log=None)
    init = lambda key: mlp.init(key, [20, 12, 3])  # noqa: E731
    optimizer = train.make_optimizer("momentum")
    uninterrupted = engine.sweep(init, optimizer, (x, y), **kwargs)
    with pytest.raises(Killed):
        engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, callback=kill_at(2), **kwargs)
    resumed = engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_run(resumed, uninterrupted)
    assert resumed.histories[2].diverged
    with pytest.raises(ConfigMismatchError, match="learning_rate"):
        engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, resume=True,
                     **(kwargs | dict(learning_rate=[0.05, 0.1, 0.2])))
