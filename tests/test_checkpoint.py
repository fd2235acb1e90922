"""Checkpoints and resume: an interrupted run ends exactly where an uninterrupted one does."""
from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from helpers import tree_allclose
from jaxnet import checkpoint, engine, mlp, train
from jaxnet.checkpoint import ConfigMismatchError
from test_engine import METRICS, MODEL, small_net, teacher

TESTS = Path(__file__).resolve().parent

# A background save that fails, or a coroutine orbax abandons, fails the test that caused it.
pytestmark = [pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]


@pytest.fixture(autouse=True)
def saves_finish():
    """Every test's pending saves land before the next test (and before pytest exits)."""
    yield
    checkpoint.close_all()


class Killed(Exception):
    pass


def kill_at(epoch):
    """A hook that raises at the first check at or after ``epoch`` (as a crash would)."""
    def hook(event):
        if isinstance(event, engine.Check) and event.epoch >= epoch:
            raise Killed
    return [hook]


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
    return engine.fit(MODEL, small_net(3), train.make_optimizer("adam", learning_rate=0.01), **(setup | kwargs))


def test_a_run_killed_by_an_exception_resumes_to_the_same_parameters(setup, tmp_path):
    uninterrupted = run(setup, epochs=4)
    with pytest.raises(Killed):
        run(setup, epochs=4, checkpoint_dir=tmp_path, hooks=kill_at(3))
    assert checkpoint.latest_epoch(tmp_path) == 2 and (tmp_path / "1").is_dir()
    lines = []
    resumed = run(setup, epochs=4, checkpoint_dir=tmp_path, resume=True, log=lines.append)
    assert lines[0].startswith("resumed") and len(lines) == 1 + 2  # epochs 3 and 4 trained again
    assert_same_run(resumed, uninterrupted)


def test_a_checkpoint_holds_the_state_of_its_epoch(setup, tmp_path):
    two_epochs = run(setup, epochs=2)
    with pytest.raises(Killed):
        run(setup, epochs=3, checkpoint_dir=tmp_path, hooks=kill_at(3))
    like = {"params": small_net(3), "opt_state": train.make_optimizer("adam").init(small_net(3)),
            "best_params": small_net(3), "data_keys": jax.random.PRNGKey(0)}
    epoch, state, meta = checkpoint.restore(tmp_path, like)
    assert epoch == 2
    assert tree_allclose(state["params"], two_epochs.params, rtol=0, atol=0)
    assert tree_allclose(state["opt_state"], two_epochs.opt_state, rtol=0, atol=0)
    assert np.array_equal(state["data_keys"], jax.random.PRNGKey(setup["seed"]))  # the RNG state
    assert meta["histories"][0]["val_loss"] == two_epochs.history.val_loss


@pytest.mark.slow  # the same kill-and-resume runs by default through the CLI: test_bad_input's SIGKILL test
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
    model, params, optimizer, data = (kwargs.pop(k) for k in ("model", "params", "optimizer", "train_data"))
    resumed = engine.fit(model, params, optimizer, data, checkpoint_dir=tmp_path, resume=True, **kwargs)
    uninterrupted = engine.fit(model, params, optimizer, data, **kwargs)
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
        engine.fit(MODEL, params, optimizer, **(kwargs | change))
    assert named in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_killed_sweep_resumes_to_the_same_members(tmp_path):
    x, y = teacher(160)
    kwargs = dict(epochs=3, batch_size=32, val=teacher(80, seed=1), learning_rate=[0.05, 0.1, 1e9], init_seed=[0, 1, 2],
                  data_seed=[3, 4, 5], log=None)
    init = mlp.model([20, 12, 3])
    optimizer = train.make_optimizer("momentum")
    uninterrupted = engine.sweep(init, optimizer, (x, y), **kwargs)
    with pytest.raises(Killed):
        engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, hooks=kill_at(2), **kwargs)
    resumed = engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_run(resumed, uninterrupted)
    assert resumed.histories[2].diverged
    with pytest.raises(ConfigMismatchError, match="learning_rate"):
        engine.sweep(init, optimizer, (x, y), checkpoint_dir=tmp_path, resume=True,
                     **(kwargs | dict(learning_rate=[0.05, 0.1, 0.2])))


# --- cheap, asynchronous saves -----------------------------------------------------------------


def small_state(value: float):
    """A state like the engine's: params, optimizer state, best params and an RNG key."""
    params = jax.tree.map(lambda leaf: leaf + value, small_net(0))
    return {"params": params, "opt_state": train.make_optimizer("momentum").init(params), "best_params": params,
            "data_keys": jax.random.PRNGKey(int(value))}


def assert_state(actual, value):
    assert tree_allclose(actual, small_state(value), rtol=0, atol=0)


def test_wait_finishes_the_write(tmp_path):
    checkpoint.save(tmp_path, 1, small_state(1.0), {"epoch": 1})
    checkpoint.wait(tmp_path)
    assert (tmp_path / "1" / "state").is_dir() and (tmp_path / "1" / "meta").is_dir()
    assert not list(tmp_path.glob("*tmp*"))  # finalized: no temporary directory left


def steps_on_disk(directory):
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def test_back_to_back_saves_all_land(tmp_path):
    """Issue 18: a save queued behind a slow write was dropped for the next one, so a kill
    lost many epochs. Each save now starts only once the previous one is on disk."""
    for epoch in range(1, 7):
        checkpoint.save(tmp_path, epoch, small_state(float(epoch)), {"epoch": epoch})  # no wait between saves
        assert steps_on_disk(tmp_path)[-1:] == ([epoch - 1] if epoch > 1 else [])  # the previous one landed
    checkpoint.wait(tmp_path)
    assert steps_on_disk(tmp_path) == [5, 6]  # the newest KEEP = 2
    for newest in (6, 5):  # both readable, each with its own state
        epoch, state, meta = checkpoint.restore(tmp_path, small_state(0.0))
        assert (epoch, meta) == (newest, {"epoch": newest})
        assert_state(state, float(newest))
        shutil.rmtree(tmp_path / str(newest))


def test_reads_wait_for_pending_saves(tmp_path):
    for epoch in range(1, 6):
        checkpoint.save(tmp_path, epoch, small_state(float(epoch)), {"epoch": epoch})
    # no wait(): latest_epoch and restore must see the newest save, complete
    assert checkpoint.latest_epoch(tmp_path) == 5
    epoch, state, meta = checkpoint.restore(tmp_path, small_state(0.0))
    assert (epoch, meta) == (5, {"epoch": 5})
    assert_state(state, 5.0)
    assert steps_on_disk(tmp_path) == [4, 5]


def test_arrays_may_be_donated_right_after_save(tmp_path):
    """The engine donates the state's buffers to the next epoch as soon as save returns."""
    overwrite = jax.jit(lambda tree: jax.tree.map(lambda leaf: leaf * 0 - 7, tree), donate_argnums=0)
    jax.block_until_ready(overwrite(small_state(5.0)["params"]))  # compiled: it runs as soon as save returns
    state = small_state(1.0)
    checkpoint.save(tmp_path, 1, state, {})
    jax.block_until_ready(overwrite(state["params"]))  # while the write is (most likely) still running
    _, restored, _ = checkpoint.restore(tmp_path, small_state(0.0))
    assert_state(restored, 1.0)


def test_orbax_writes_on_the_writer_thread_while_the_caller_trains_on(tmp_path, monkeypatch):
    """save returns once the arrays are copied; orbax's (synchronous) write runs on the module's
    writer thread, never on the thread that trains."""
    writers = []
    real_save = ocp.CheckpointManager.save

    def spy(manager, *args, **kwargs):  # the real save runs; only its thread is noted
        writers.append(threading.current_thread().name)
        return real_save(manager, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", spy)
    for epoch in (1, 2):
        checkpoint.save(tmp_path, epoch, small_state(float(epoch)), {"epoch": epoch})
    checkpoint.wait(tmp_path)
    assert len(writers) == 2 and all(name.startswith("jaxnet-checkpoint") for name in writers), writers
    assert threading.current_thread().name not in writers and steps_on_disk(tmp_path) == [1, 2]


def test_saving_an_earlier_epoch_replaces_the_later_steps(tmp_path):
    for epoch in (1, 2, 3):
        checkpoint.save(tmp_path, epoch, small_state(float(epoch)), {"epoch": epoch})
    checkpoint.save(tmp_path, 2, small_state(20.0), {"epoch": "again"})  # a run resumed after epoch 1
    epoch, state, meta = checkpoint.restore(tmp_path, small_state(0.0))
    assert (epoch, meta) == (2, {"epoch": "again"})
    assert_state(state, 20.0)
    assert steps_on_disk(tmp_path) == [2]


def test_a_failed_save_names_the_directory_and_leaves_it_usable(tmp_path):
    with pytest.raises(RuntimeError, match=f"saving a checkpoint to {tmp_path} failed"):
        checkpoint.save(tmp_path, 1, {"not an array": object()}, {})
        checkpoint.wait(tmp_path)
    checkpoint.save(tmp_path, 1, small_state(1.0), {})
    assert checkpoint.restore(tmp_path, small_state(0.0))[0] == 1


MLP = "mlp.init(jax.random.PRNGKey(0), [784, 128, 64, 10])"


def run_python(script, *args):
    """Runs ``script`` in a fresh Python; the timeout catches a process that hangs at exit."""
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=os.environ | {"JAX_PLATFORMS": "cpu"})


def test_a_process_that_closes_its_directory_before_exiting_keeps_every_step(tmp_path):
    done = run_python("import sys, jax; from jaxnet import checkpoint, mlp\n"
                      f"params = {MLP}\n"
                      "for epoch in (1, 2, 3): checkpoint.save(sys.argv[1], epoch, params, {'epoch': epoch})\n"
                      "checkpoint.close(sys.argv[1])\n", tmp_path)
    assert done.returncode == 0 and "Warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert steps_on_disk(tmp_path) == [2, 3] and not list(tmp_path.glob("*tmp*"))
    epoch, params, meta = checkpoint.restore(tmp_path, mlp.init(jax.random.PRNGKey(1), [784, 128, 64, 10]))
    assert (epoch, meta) == (3, {"epoch": 3})
    assert tree_allclose(params, mlp.init(jax.random.PRNGKey(0), [784, 128, 64, 10]), rtol=0, atol=0)


def test_a_process_that_exits_during_a_save_keeps_the_earlier_steps(tmp_path):
    """Without wait or close, the save in flight at exit cannot finish (orbax's writer needs
    thread pools Python shuts down first); like a kill, it leaves the steps before it intact,
    and the process still exits at once (it could hang for 20 minutes, see _manager)."""
    done = run_python("import sys, jax; from jaxnet import checkpoint, mlp\n"
                      f"params = {MLP}\n"
                      "for epoch in (1, 2, 3): checkpoint.save(sys.argv[1], epoch, params, {'epoch': epoch})\n",
                      tmp_path)
    assert done.returncode == 0, done.stderr
    epoch, params, meta = checkpoint.restore(tmp_path, mlp.init(jax.random.PRNGKey(1), [784, 128, 64, 10]))
    assert epoch in (2, 3) and meta == {"epoch": epoch}
    assert tree_allclose(params, mlp.init(jax.random.PRNGKey(0), [784, 128, 64, 10]), rtol=0, atol=0)
    if epoch == 2:
        assert "call jaxnet.checkpoint.wait(directory) when a run ends" in done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_close_finishes_the_write_without_a_thread_traceback(tmp_path, signum):
    """Ctrl-C (or SIGTERM), sent three times while close waits for a large write (half a second
    here; the signals come within 30 ms): the write lands, then the signal stops the process,
    with no traceback from orbax's threads."""
    done = run_python("import os, signal, sys, threading, time, jax, jax.numpy as jnp\n"
                      "from jaxnet import checkpoint\n"
                      "state = {'w': jnp.arange(2 ** 25, dtype=jnp.float32)}\n"
                      "checkpoint.save(sys.argv[1], 1, state, {'epoch': 1})\n"
                      "def stop():\n"
                      f"    for _ in range(3): time.sleep(0.01); os.kill(os.getpid(), {int(signum)})\n"
                      "threading.Thread(target=stop).start()\n"
                      "checkpoint.close(sys.argv[1])\n"
                      "print('not reached')\n", tmp_path)
    assert done.returncode == -signum and "not reached" not in done.stdout, done.stderr
    assert done.stderr.count(f"finishing the checkpoint being written to {tmp_path} first") == 1, done.stderr
    if signum == signal.SIGINT:  # Python's default: a KeyboardInterrupt; SIGTERM's default ends the process silently
        assert done.stderr.count("Traceback") == 1 and done.stderr.rstrip().endswith("KeyboardInterrupt"), done.stderr
    else:
        assert "Traceback" not in done.stderr, done.stderr
    assert "Exception in thread" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    epoch, state, meta = checkpoint.restore(tmp_path, {"w": np.zeros(2 ** 25, np.float32)})
    assert (epoch, meta) == (1, {"epoch": 1}) and np.array_equal(state["w"], np.arange(2 ** 25, dtype=np.float32))


def test_a_directory_deleted_between_runs_is_recreated(tmp_path):
    directory = tmp_path / "run"
    checkpoint.save(directory, 1, small_state(1.0), {})
    checkpoint.wait(directory)
    shutil.rmtree(directory)
    assert checkpoint.latest_epoch(directory) is None
    checkpoint.save(directory, 1, small_state(2.0), {})
    assert_state(checkpoint.restore(directory, small_state(0.0))[1], 2.0)


def test_the_module_uses_no_private_api_of_python_jax_or_orbax():
    """No ``threading._register_atexit``, ``jax._src`` or ``manager._checkpointer``: every
    attribute it reads of another module or object is public."""
    source = Path(checkpoint.__file__).read_text()
    assert "_register_atexit" not in source and "jax._src" not in source
    attributes = {node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)}
    assert sorted(a for a in attributes if a.startswith("_") and not a.endswith("__")) == []


# --- unreadable checkpoints ---------------------------------------------------------------------


def two_steps(directory):
    checkpoint.save(directory, 1, small_state(1.0), {"epoch": 1})
    checkpoint.save(directory, 2, small_state(2.0), {"epoch": 2})
    checkpoint.wait(directory)  # before the test damages its files
    return directory / "2"


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def array_files(step_dir):
    """Every file holding array data in a step (tensorstore writes them; how the arrays are
    spread over them varies from save to save)."""
    return [p for p in (step_dir / "state").rglob("*") if p.is_file() and "/d/" in p.as_posix()]


def array_file(step_dir):
    """The largest file holding array data in a step."""
    return max(array_files(step_dir), key=lambda p: p.stat().st_size)


def truncate_arrays(step_dir):
    for path in array_files(step_dir):
        truncate(path)


def assert_falls_back_to_step_1(directory):
    with pytest.warns(checkpoint.CorruptCheckpointWarning, match=rf"checkpoint step 2 in {directory} is unreadable"):
        epoch, state, meta = checkpoint.restore(directory, small_state(0.0))
    assert (epoch, meta) == (1, {"epoch": 1})
    assert_state(state, 1.0)


@pytest.mark.parametrize("damage", ["array files", "meta JSON", "both"])
def test_a_truncated_newest_step_falls_back_to_the_previous_one(tmp_path, damage):
    step_dir = two_steps(tmp_path)
    if damage in ("array files", "both"):
        truncate_arrays(step_dir)
    if damage in ("meta JSON", "both"):
        truncate(step_dir / "meta" / "metadata")
    assert_falls_back_to_step_1(tmp_path)


def test_garbled_meta_json_falls_back_once_with_one_warning(tmp_path):
    step_dir = two_steps(tmp_path)
    (step_dir / "meta" / "metadata").write_text('{"epoch": 2, "histories": [{"val_loss": [0.5, ')
    with pytest.warns(checkpoint.CorruptCheckpointWarning) as caught:
        assert checkpoint.restore_meta(tmp_path) == (1, {"epoch": 1})
        assert checkpoint.restore(tmp_path, small_state(0.0))[0] == 1
    assert len(caught) == 1 and "step 2" in str(caught[0].message)


def test_a_silently_altered_array_file_is_caught_by_its_checksum(tmp_path):
    for target in array_files(two_steps(tmp_path)):
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, one byte changed
        target.write_bytes(bytes(data))
    assert_falls_back_to_step_1(tmp_path)


def test_damage_to_any_file_of_the_newest_step_never_restores_wrong_values(tmp_path):
    """Truncate each file of the newest step in turn: restore gives either exactly step 2 or,
    with a warning naming it, exactly step 1; never something else, never an exception."""
    step_dir = two_steps(tmp_path / "original")
    files = sorted(p.relative_to(step_dir) for p in step_dir.rglob("*") if p.is_file())
    fell_back = []
    for k, name in enumerate(files):
        directory = tmp_path / f"copy{k}"
        shutil.copytree(tmp_path / "original", directory)
        truncate(directory / "2" / name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            epoch, state, meta = checkpoint.restore(directory, small_state(0.0))
        assert epoch in (1, 2) and meta == {"epoch": epoch}, name
        assert_state(state, float(epoch))
        assert (epoch == 1) == any("step 2" in str(w.message) for w in caught), name
        fell_back += [str(name)] * (epoch == 1)
    assert "meta/metadata" in fell_back and str(array_file(step_dir).relative_to(step_dir)) in fell_back


def test_no_intact_step_is_an_error_naming_the_directory_and_the_fix(tmp_path):
    step_dir = two_steps(tmp_path)
    truncate(step_dir / "meta" / "metadata")
    truncate(tmp_path / "1" / "meta" / "metadata")
    with pytest.warns(checkpoint.CorruptCheckpointWarning), \
            pytest.raises(checkpoint.NoIntactCheckpointError, match=rf"no intact checkpoint in {tmp_path}: steps \[1, 2\]"
                          r".*run without --resume \(resume=False\) to start afresh"):
        checkpoint.restore(tmp_path, small_state(0.0))


def test_resume_after_the_newest_checkpoint_is_corrupted_ends_like_an_uninterrupted_run(setup, tmp_path):
    uninterrupted = run(setup, epochs=4)
    with pytest.raises(Killed):
        run(setup, epochs=4, checkpoint_dir=tmp_path, hooks=kill_at(3))
    assert checkpoint.latest_epoch(tmp_path) == 2 and (tmp_path / "1").is_dir()
    truncate_arrays(tmp_path / "2")
    lines = []
    with pytest.warns(checkpoint.CorruptCheckpointWarning, match="step 2"):
        resumed = run(setup, epochs=4, checkpoint_dir=tmp_path, resume=True, log=lines.append)
    assert lines[0] == f"resumed from {tmp_path} after epoch 1"
    assert_same_run(resumed, uninterrupted)
    # the damaged step was rewritten: the directory restores cleanly to the end of the run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint.restore(tmp_path, {"params": small_net(3), "opt_state": train.make_optimizer("adam").init(
            small_net(3)), "best_params": small_net(3), "data_keys": jax.random.PRNGKey(0)})[0] == 4
