"""jaxnet.engine.sweep: K members as one vmapped program, each equal to its own fit."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import tree_max_relative_error
from jaxnet import engine, evaluate, mlp, train
from test_engine import METRICS, teacher

TOLERANCE = 1e-9  # float64: the batched program may sum in another order, nothing more


def net_model():
    """The 20-12-3 ReLU MLP (float64 parameters inside jax.enable_x64(True))."""
    return mlp.model([20, 12, 3], activation=mlp.RELU, dtype=jnp.zeros(()).dtype)


def assert_member_is_its_own_run(sweep_result, k, fit_result):
    member, alone = sweep_result.histories[k], fit_result.history
    assert member.epoch == alone.epoch and member.step == alone.step
    for name in METRICS:
        a, b = getattr(member, name), getattr(alone, name)
        assert (a is None) == (b is None) and [v is None for v in a] == [v is None for v in b], name
        np.testing.assert_allclose([v for v in a if v is not None], [v for v in b if v is not None],
                                   rtol=TOLERANCE, err_msg=f"member {k}: {name}")
    assert (member.diverged, member.diverged_epoch, member.stopped_epoch) == (
        alone.diverged, alone.diverged_epoch, alone.stopped_epoch)
    error = tree_max_relative_error(sweep_result.member(k), fit_result.params, floor=1e-6)
    assert error < TOLERANCE, f"member {k}: parameters differ by {error}"


def test_members_differing_in_hyperparameters_and_seeds_equal_their_own_runs():
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        val = teacher(80, seed=1)
        model = net_model()
        optimizer = train.make_optimizer("momentum", learning_rate=0.05)
        settings = dict(learning_rate=[0.05, 0.02, 0.05], l2=[0.0, 1e-3, 1e-2], init_seed=[0, 1, 0],
                        data_seed=[5, 5, 6])
        result = engine.sweep(model, optimizer, (x, y), epochs=3, batch_size=32, val=val, log=None, **settings)
        for k in range(3):
            params = model.init(jax.random.PRNGKey(settings["init_seed"][k]))
            optimizer_k = train.make_optimizer("momentum", learning_rate=settings["learning_rate"][k])
            alone = engine.fit(model, params, optimizer_k, (x, y), l2=settings["l2"][k], epochs=3, batch_size=32,
                               val=val, seed=settings["data_seed"][k], log=None)
            assert_member_is_its_own_run(result, k, alone)


def test_members_with_their_own_labels_equal_runs_on_the_relabelled_data():
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        noisy = jnp.where(jax.random.uniform(jax.random.PRNGKey(9), y.shape) < 0.3, (y + 1) % 3, y)
        labels = jnp.stack([y, noisy])
        model = net_model()
        optimizer = train.make_optimizer("sgd", learning_rate=0.1)
        result = engine.sweep(model, optimizer, (x, y), epochs=2, batch_size=32, labels=labels, init_seed=[0, 0],
                              data_seed=[3, 3], val=teacher(80, seed=1), log=None)
        for k in range(2):
            alone = engine.fit(model, model.init(jax.random.PRNGKey(0)), optimizer, (x, labels[k]), epochs=2,
                               batch_size=32, seed=3, val=teacher(80, seed=1), log=None)
            assert_member_is_its_own_run(result, k, alone)
        assert result.histories[0].train_loss != result.histories[1].train_loss


def test_members_on_training_subsets_equal_runs_on_those_subsets():
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        indices = np.stack([np.arange(0, 100), np.random.default_rng(0).permutation(160)[:100]])
        model = net_model()
        optimizer = train.make_optimizer("sgd", learning_rate=0.1)
        result = engine.sweep(model, optimizer, (x, y), epochs=2, batch_size=25, indices=indices, data_seed=[4, 8],
                              log=None)
        for k in range(2):
            alone = engine.fit(model, model.init(jax.random.PRNGKey(0)), optimizer, (x[indices[k]], y[indices[k]]),
                               epochs=2, batch_size=25, seed=[4, 8][k], log=None)
            assert_member_is_its_own_run(result, k, alone)


def test_a_diverging_member_leaves_the_others_alone():
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        val = teacher(80, seed=1)
        model = net_model()
        optimizer = train.make_optimizer("sgd", learning_rate=0.1)
        result = engine.sweep(model, optimizer, (x, y), epochs=3, batch_size=32, val=val,
                              learning_rate=[0.1, 1e12, 0.05], log=None)
        wild = result.histories[1]
        assert wild.diverged and wild.diverged_epoch is not None
        assert wild.epoch == [float(e) for e in range(1, int(wild.diverged_epoch))]  # the checks before it
        assert all(np.isfinite(v) for v in wild.train_loss)
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.member(1)))
        for k, lr in ((0, 0.1), (2, 0.05)):
            alone = engine.fit(model, model.init(jax.random.PRNGKey(0)), train.make_optimizer("sgd", learning_rate=lr),
                               (x, y), epochs=3, batch_size=32, val=val, log=None)
            assert_member_is_its_own_run(result, k, alone)


def test_members_stop_early_on_their_own():
    x, y = teacher(64, seed=0, noise=0.5)
    val = teacher(300, seed=1)
    model = mlp.model([20, 128, 128, 3], activation=mlp.RELU)
    result = engine.sweep(model, train.make_optimizer("adam", learning_rate=0.01), (x, y), epochs=40, batch_size=16,
                          val=val, learning_rate=[0.01, 0.001], patience=2, log=None)
    fast = result.histories[0]
    assert fast.stopped_epoch is not None and fast.stopped_epoch - fast.best_epoch == 2
    assert fast.epoch[-1] == fast.stopped_epoch
    # the slower member went on training after the faster one stopped
    assert result.histories[1].epoch[-1] > fast.stopped_epoch
    best = evaluate.classifier(model, result.member(0, "best_params"), val)["loss"]
    assert best == pytest.approx(fast.best_val_loss, rel=1e-5)


def test_one_progress_line_per_check_and_quiet_with_none(capsys):
    x, y = teacher(160, seed=0)
    lines = []
    kwargs = dict(epochs=2, batch_size=32, learning_rate=[0.1, 0.2], evals_per_epoch=2)
    engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), log=lines.append, **kwargs)
    assert len(lines) == 4 and all("2 members" in line for line in lines)
    engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), log=None, **kwargs)
    assert capsys.readouterr().out == ""


def test_settings_of_unequal_length_are_refused():
    x, y = teacher(160, seed=0)
    with pytest.raises(ValueError, match="init_seed has 3 values but other settings have 2 members"):
        engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), epochs=1, batch_size=32,
                     learning_rate=[0.1, 0.2], init_seed=[0, 1, 2], log=None)
    with pytest.raises(ValueError, match="at least one per-member setting"):
        engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), epochs=1, batch_size=32, log=None)


def test_a_negative_member_learning_rate_is_refused():
    x, y = teacher(160, seed=0)
    with pytest.raises(ValueError, match=r"learning_rate \(member 1\) must be non-negative"):
        engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), epochs=1, batch_size=32,
                     learning_rate=[0.1, -0.1], log=None)


def test_a_member_subset_smaller_than_a_batch_is_refused():
    x, y = teacher(160, seed=0)
    with pytest.raises(ValueError, match=r"batch_size 32 is not in \[1, 20\]"):
        engine.sweep(net_model(), train.make_optimizer("sgd"), (x, y), epochs=1, batch_size=32,
                     indices=np.stack([np.arange(20), np.arange(20, 40)]), log=None)


# --- shared initial parameters ---------------------------------------------------------------------


def test_members_from_shared_params_equal_fits_from_those_params():
    with jax.enable_x64(True):
        x, y = teacher(160, seed=0)
        model = net_model()
        shared = model.init(jax.random.PRNGKey(7))
        optimizer = train.make_optimizer("sgd", learning_rate=0.1)
        result = engine.sweep(model, optimizer, (x, y), params=shared, learning_rate=[0.1, 0.03], epochs=2,
                              batch_size=32, log=None)
        for k, lr in enumerate((0.1, 0.03)):
            alone = engine.fit(model, shared, train.make_optimizer("sgd", learning_rate=lr), (x, y), epochs=2,
                               batch_size=32, log=None)
            assert_member_is_its_own_run(result, k, alone)


def test_shared_params_and_init_seeds_are_refused_together():
    x, y = teacher(160, seed=0)
    model = net_model()
    with pytest.raises(ValueError, match="either params .* or init_seed"):
        engine.sweep(model, train.make_optimizer("sgd"), (x, y), params=model.init(jax.random.PRNGKey(0)),
                     init_seed=[0, 1], epochs=1, batch_size=32, log=None)


# --- structured events ------------------------------------------------------------------------------


def test_hooks_get_per_member_checks_and_one_diverged_event_per_real_member():
    """Three members on two devices: the member axis is padded to four with a copy of member 2.
    Member 2 diverges, and so does its padding copy, but only member 2 is announced."""
    devices = jax.devices()[:2]
    if len(devices) < 2:
        pytest.skip("needs two devices (jaxnet makes one CPU device per core)")
    x, y = teacher(160, seed=0)
    events, lines = [], []
    run, state = engine.start_sweep(net_model(), train.make_optimizer("sgd"), (x, y), learning_rate=[0.1, 0.05, 1e12],
                                    val=teacher(80, seed=1), epochs=3, batch_size=32, evals_per_epoch=2,
                                    devices=devices, hooks=[events.append], log=lines.append)
    assert run.members == 4 and run.reported == 3  # one padding member
    while not run.done(state):
        state = engine.run_epoch(run, state)
    result = engine.finish(run, state)
    assert run.histories[3].diverged  # the padding member diverged too ...
    diverged = [e for e in events if isinstance(e, engine.Diverged)]
    assert diverged == [engine.Diverged(member=2, epoch=result.histories[2].diverged_epoch, sweep=True)]  # ... unsaid
    assert [line for line in lines if "diverged" in line] == [
        f"member 2: diverged at epoch {result.histories[2].diverged_epoch:.2f} (the loss became NaN or inf); kept "
        "the parameters of the last finite check. Try a smaller learning rate."]
    assert not any("member 3" in line for line in lines)

    checks = [e for e in events if isinstance(e, engine.Check)]
    assert len(events) == len(checks) + 1 and len(lines) == len(events)
    assert [c.epoch for c in checks] == [0.4, 1.0, 1.4, 2.0, 2.4, 3.0] == result.histories[0].epoch  # 5 steps: 2 + 3
    for i, check in enumerate(checks):
        assert check.sweep is True and check.epochs == 3 and check.probes == {}
        assert len(check.histories) == 3 and all(a is b for a, b in zip(check.histories, result.histories))
        assert set(check.metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        for name, values in check.metrics.items():
            assert isinstance(values, np.ndarray) and values.shape == (3,), name  # the real members only
            for k in (0, 1):
                assert float(values[k]) == getattr(result.histories[k], name)[i], (name, k)
