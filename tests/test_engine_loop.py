"""The one-epoch API (engine.start / start_sweep / run_epoch / finish, engine.Options), the
probe hook, and resuming a checkpoint that is ahead of the requested epochs."""
from __future__ import annotations

import dataclasses
import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import tree_allclose, tree_max_relative_error
from jaxnet import checkpoint, engine, mlp, train
from jaxnet.history import History
from test_engine import METRICS, MODEL, small_net, teacher

SWEEP_MODEL = mlp.model([20, 12, 3], activation=mlp.RELU)


def without_seconds(history: History) -> dict:
    return {k: v for k, v in history.to_dict().items() if k != "seconds"}


@pytest.fixture(scope="module")
def data():
    return {"train": teacher(200, seed=0), "val": teacher(100, seed=1)}


def weight_norm(params):
    """A probe: the Frobenius norm of all weight matrices, and the largest |weight|."""
    weights = [layer["w"] for layer in params]
    return {"weight_norm": jnp.sqrt(sum(jnp.sum(w ** 2) for w in weights)),
            "max_abs": jnp.max(jnp.stack([jnp.max(jnp.abs(w)) for w in weights]))}


def weight_norm_of(params) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(layer["w"], np.float64) ** 2) for layer in params)))


# --- start / run_epoch / finish -------------------------------------------------------------


def test_driving_run_epoch_by_hand_is_fit(data):
    optimizer = train.make_optimizer("momentum", learning_rate=0.05)
    kwargs = dict(epochs=3, batch_size=32, val=data["val"], evals_per_epoch=2, seed=4, log=None)
    expected = engine.fit(MODEL, small_net(), optimizer, data["train"], **kwargs)
    run, state = engine.start(MODEL, small_net(), optimizer, data["train"], **kwargs)
    assert isinstance(run, engine.Run) and isinstance(state, engine.TrainState)
    assert int(state.epoch) == 0 and not run.done(state) and run.histories[0].epoch == []
    epochs_seen = []
    while not run.done(state):
        state = engine.run_epoch(run, state)
        epochs_seen.append((int(state.epoch), run.histories[0].epoch[-2:]))
    assert epochs_seen == [(1, [0.5, 1.0]), (2, [1.5, 2.0]), (3, [2.5, 3.0])]
    assert engine.run_epoch(run, state) is state  # a finished run trains nothing more
    result = engine.finish(run, state)
    assert isinstance(result, engine.FitResult)
    assert tree_allclose(result.params, expected.params, rtol=0, atol=0)
    assert tree_allclose(result.opt_state, expected.opt_state, rtol=0, atol=0)
    assert without_seconds(result.history) == without_seconds(expected.history)


def test_driving_a_sweep_by_hand_is_sweep(data):
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    kwargs = dict(epochs=2, batch_size=32, val=data["val"], learning_rate=[0.1, 0.05, 0.02], init_seed=[0, 1, 2],
                  log=None)
    expected = engine.sweep(SWEEP_MODEL, optimizer, data["train"], **kwargs)
    run, state = engine.start_sweep(SWEEP_MODEL, optimizer, data["train"], **kwargs)
    assert jax.tree.leaves(state.params)[0].shape[0] == run.members >= 3  # the member axis (padded to the devices)
    assert run.reported == 3 and run.members % len(jax.devices()) == 0
    while not run.done(state):
        state = engine.run_epoch(run, state)
    result = engine.finish(run, state)
    assert isinstance(result, engine.SweepResult) and len(result.histories) == 3
    assert tree_allclose(result.params, expected.params, rtol=0, atol=0)
    assert [without_seconds(h) for h in result.histories] == [without_seconds(h) for h in expected.histories]


def test_a_run_stops_being_driven_once_every_member_stopped():
    x, y = teacher(64, seed=0, noise=0.5)
    run, state = engine.start(MODEL, small_net(0, (20, 128, 128, 3)), train.make_optimizer("adam", learning_rate=0.01),
                              (x, y), epochs=60, batch_size=16, val=teacher(300, seed=1), patience=2, log=None)
    while not run.done(state):
        state = engine.run_epoch(run, state)
    history = engine.finish(run, state).history
    assert int(state.epoch) < 60 and not state.active.any()
    assert history.stopped_epoch == int(state.epoch)


# --- the state is data --------------------------------------------------------------------------

STATE_FIELDS = ("params", "opt_state", "l2", "best_params", "data_keys", "epoch", "best_loss", "bad_checks", "active")


def assert_arrays_only(state, members: int, vmapped: bool) -> None:
    """A TrainState: a pytree whose every leaf is an array (no callables, no None standing in
    for a field), with per-member arrays of length ``members``."""
    assert isinstance(state, engine.TrainState) and state._fields == STATE_FIELDS
    leaves = jax.tree.leaves(state, is_leaf=lambda node: node is None)
    assert leaves and all(isinstance(leaf, (np.ndarray, jax.Array)) for leaf in leaves), [type(v) for v in leaves]
    assert not any(callable(leaf) for leaf in leaves)
    assert jax.tree.structure(state.best_params) == jax.tree.structure(state.params)
    assert np.shape(state.epoch) == ()
    assert np.shape(state.l2) == ((members,) if vmapped else ())
    assert np.shape(state.data_keys) == ((members, 2) if vmapped else (2,))
    for name in ("best_loss", "bad_checks", "active"):
        assert np.shape(getattr(state, name)) == (members,), name
    if vmapped:
        assert all(np.shape(leaf)[0] == members for leaf in jax.tree.leaves((state.params, state.best_params)))
    rebuilt = jax.tree.unflatten(jax.tree.structure(state), jax.tree.leaves(state))
    assert isinstance(rebuilt, engine.TrainState)


def test_the_fit_state_is_a_pytree_of_arrays(data):
    run, state = engine.start(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                              val=data["val"], l2=1e-3, epochs=2, batch_size=32, log=None)
    assert_arrays_only(state, 1, vmapped=False)
    assert float(state.l2) == pytest.approx(1e-3)
    state = engine.run_epoch(run, state)
    assert_arrays_only(state, 1, vmapped=False)


def test_the_sweep_state_is_a_pytree_of_arrays(data):
    run, state = engine.start_sweep(SWEEP_MODEL, train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                                    learning_rate=[0.1, 0.05, 0.02], l2=[0.0, 1e-3, 1e-2], val=data["val"], epochs=2,
                                    batch_size=32, log=None)
    assert run.reported == 3 and run.members >= 3
    assert_arrays_only(state, run.members, vmapped=True)
    np.testing.assert_allclose(np.asarray(state.l2)[:3], [0.0, 1e-3, 1e-2], rtol=1e-6)
    state = engine.run_epoch(run, state)
    assert_arrays_only(state, run.members, vmapped=True)


def test_options_are_spelled_once_and_taken_by_every_entry_point(data):
    fields = dataclasses.fields(engine.Options)
    options = {f.name for f in fields}

    def keywords(function):
        parameters = inspect.signature(function).parameters.values()
        assert [p.name for p in parameters if p.kind == p.VAR_KEYWORD] == ["options"]  # the Options fields
        return {p.name for p in parameters if p.kind == p.KEYWORD_ONLY}

    run_keywords = {"val", "test", "seed", "l2", "opt_state"}
    member_keywords = {"learning_rate", "l2", "init_seed", "data_seed", "labels", "indices", "params", "val", "test"}
    assert keywords(engine.fit) == keywords(engine.start) == run_keywords
    assert keywords(engine.sweep) == keywords(engine.start_sweep) == member_keywords
    assert not (run_keywords | member_keywords) & options  # no setting is spelled twice
    # every field, at its default, is accepted by every entry point and ends up in run.options
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    assert set(defaults) == options - {"epochs", "batch_size"}
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    run, _ = engine.start(MODEL, small_net(), optimizer, data["train"], epochs=1, batch_size=32, **defaults)
    assert run.options == engine.Options(epochs=1, batch_size=32)
    run, _ = engine.start_sweep(SWEEP_MODEL, optimizer, data["train"], learning_rate=[0.1, 0.2], epochs=1,
                                batch_size=32, **defaults)
    assert run.options == engine.Options(epochs=1, batch_size=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.Options(epochs=1, batch_size=2).epochs = 3


def test_an_unknown_option_is_named(data):
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['epoch'\]"):
        engine.start(MODEL, small_net(), train.make_optimizer(), data["train"], epoch=2, batch_size=32)


def test_bad_loop_settings_are_refused(data):
    for setting, message in ((dict(probe_every=0), "probe_every must be at least 1"),
                             (dict(checkpoint_every=0), "checkpoint_every must be at least 1"),
                             (dict(probe=3), "probe must be a function")):
        with pytest.raises(ValueError, match=message):
            engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], epochs=1, batch_size=32, log=None,
                       **setting)
    with pytest.raises(ValueError, match="drop data_parallel"):
        engine.start_sweep(SWEEP_MODEL, train.make_optimizer(), data["train"], epochs=1, batch_size=32,
                           learning_rate=[0.1, 0.2], data_parallel=True, log=None)


# --- the probe ----------------------------------------------------------------------------------


def test_a_probe_runs_every_k_epochs_and_after_the_last(data):
    traces = []

    def probe(params):
        traces.append(1)  # runs while tracing only
        return weight_norm(params)

    lines = []
    result = engine.fit(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                        epochs=5, batch_size=32, evals_per_epoch=2, probe=probe, probe_every=2, log=lines.append)
    history = result.history
    assert history.probe_epoch == [2.0, 4.0, 5.0]
    assert set(history.probes) == {"weight_norm", "max_abs"}
    assert all(len(column) == 3 for column in history.probes.values())
    assert len(traces) == 1  # jitted once, never traced again
    assert history.probes["weight_norm"][-1] == pytest.approx(weight_norm_of(result.params), rel=1e-6)
    max_abs = max(float(np.max(np.abs(layer["w"]))) for layer in result.params)
    assert history.probes["max_abs"][-1] == pytest.approx(max_abs, rel=1e-6)
    assert history.probes["weight_norm"][0] != history.probes["weight_norm"][1]  # measured, not repeated
    assert sum("weight_norm" in line for line in lines) == 3  # shown on the progress line when taken


def test_a_probe_sees_the_parameters_of_its_epoch(data):
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    probed = engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=3, batch_size=32, probe=weight_norm,
                        log=None)
    for epoch, value in zip(probed.history.probe_epoch, probed.history.probes["weight_norm"]):
        shorter = engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=int(epoch), batch_size=32, log=None)
        assert value == pytest.approx(weight_norm_of(shorter.params), rel=1e-6)
    # probing changes nothing about the training
    assert tree_allclose(probed.params, shorter.params, rtol=0, atol=0)


def test_a_sweep_probes_every_member_with_its_own_parameters(data):
    result = engine.sweep(SWEEP_MODEL, train.make_optimizer("sgd"), data["train"], epochs=3, batch_size=32,
                          learning_rate=[0.1, 0.01, 1e12], init_seed=[0, 1, 2], probe=weight_norm, log=None)
    for k in range(2):
        history = result.histories[k]
        assert history.probe_epoch == [1.0, 2.0, 3.0]
        assert history.probes["weight_norm"][-1] == pytest.approx(weight_norm_of(result.member(k)), rel=1e-6)
    assert result.histories[0].probes["weight_norm"] != result.histories[1].probes["weight_norm"]
    diverged = result.histories[2]
    assert diverged.diverged and diverged.probe_epoch == []  # nothing probed at or after the divergence


def test_probes_survive_json_and_dict_round_trips(data):
    history = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], epochs=2,
                         batch_size=32, probe=weight_norm, log=None).history
    assert History.from_json(history.to_json()) == history
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history
    copy = History.from_dict(history.to_dict())
    copy.append_probe(3.0, {"weight_norm": float("nan"), "new": 1.0})
    assert history.probe_epoch == [1.0, 2.0]  # the copy shares no lists
    assert copy.probes["weight_norm"][-1] is None and copy.probes["new"] == [None, None, 1.0]


class Killed(Exception):
    pass


def test_probes_survive_a_checkpoint_and_resume(data, tmp_path):
    def kill_at_3(event):
        if isinstance(event, engine.Check) and event.epoch >= 3:
            raise Killed

    kwargs = dict(epochs=4, batch_size=32, val=data["val"], probe=weight_norm, seed=2, log=None)
    optimizer = train.make_optimizer("adam", learning_rate=0.01)
    uninterrupted = engine.fit(MODEL, small_net(), optimizer, data["train"], **kwargs)
    with pytest.raises(Killed):
        engine.fit(MODEL, small_net(), optimizer, data["train"], checkpoint_dir=tmp_path, hooks=[kill_at_3], **kwargs)
    events = []
    resumed = engine.fit(MODEL, small_net(), optimizer, data["train"], checkpoint_dir=tmp_path, resume=True,
                         hooks=[events.append], **kwargs)
    assert events[0] == engine.Resumed(str(tmp_path), 2)  # killed at the check of epoch 3: epoch 2 was saved
    assert [e.epoch for e in events[1:]] == [3.0, 4.0]
    assert resumed.history.probe_epoch == [1.0, 2.0, 3.0, 4.0]
    assert resumed.history.probes == uninterrupted.history.probes
    assert tree_allclose(resumed.params, uninterrupted.params, rtol=0, atol=0)


# --- resuming a checkpoint ahead of the request ----------------------------------------------------


def test_resuming_a_checkpoint_with_more_epochs_than_asked_is_refused(data, tmp_path):
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    kwargs = dict(batch_size=32, checkpoint_dir=tmp_path, log=None)
    engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=3, **kwargs)
    with pytest.raises(engine.CheckpointAheadError) as caught:
        engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=2, resume=True, **kwargs)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert message == (f"checkpoint in {tmp_path} holds 3 epochs but epochs=2 was asked: pass epochs ≥ 3 to "
                       "continue it, or drop resume to start afresh")
    assert checkpoint.latest_epoch(tmp_path) == 3  # refused without touching it
    longer = engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=4, resume=True, **kwargs)
    assert longer.history.epoch == [1.0, 2.0, 3.0, 4.0]
    again = engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=2, **kwargs)  # without resume: afresh
    assert again.history.epoch == [1.0, 2.0]


def test_a_sweep_checkpoint_ahead_is_refused_too(data, tmp_path):
    kwargs = dict(batch_size=32, learning_rate=[0.1, 0.2], checkpoint_dir=tmp_path, log=None)
    engine.sweep(SWEEP_MODEL, train.make_optimizer("sgd"), data["train"], epochs=2, **kwargs)
    with pytest.raises(engine.CheckpointAheadError, match="holds 2 epochs but epochs=1 was asked"):
        engine.sweep(SWEEP_MODEL, train.make_optimizer("sgd"), data["train"], epochs=1, resume=True, **kwargs)


def test_member_results_do_not_depend_on_the_padding(data):
    """Three members padded to the device count give the same members as each run alone."""
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        model = mlp.model([20, 12, 3], activation=mlp.RELU, dtype=jnp.float64)
        result = engine.sweep(model, train.make_optimizer("sgd", learning_rate=0.1), (x, y), epochs=2, batch_size=32,
                              learning_rate=[0.1, 0.05, 0.02], log=None)
        for k, lr in enumerate((0.1, 0.05, 0.02)):
            alone = engine.fit(model, model.init(jax.random.PRNGKey(0)), train.make_optimizer("sgd", learning_rate=lr),
                               (x, y), epochs=2, batch_size=32, log=None)
            assert tree_max_relative_error(result.member(k), alone.params, floor=1e-6) < 1e-9
            for name in METRICS:
                a, b = getattr(result.histories[k], name), getattr(alone.history, name)
                np.testing.assert_allclose(np.array(a, float), np.array(b, float), rtol=1e-9, err_msg=name)
