"""jaxnet.engine.fit: compiled epochs, the data order, gradient sources, evaluation,
early stopping, divergence, determinism, progress lines and bad input."""
from __future__ import annotations

import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import tree_allclose, tree_max_relative_error
from jaxnet import engine, evaluate, mlp, train

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


def teacher(n: int, seed: int = 0, features: int = 20, classes: int = 3, noise: float = 0.0):
    """x ~ N(0, 1); y = argmax(x W) for one fixed random W, a fraction ``noise`` relabelled at random."""
    key = jax.random.PRNGKey(seed)
    dtype = jnp.zeros(()).dtype  # float64 inside jax.enable_x64(True)
    x = jax.random.normal(jax.random.fold_in(key, 1), (n, features), dtype)
    w = jax.random.normal(jax.random.PRNGKey(1234), (features, classes), dtype)
    y = jnp.argmax(x @ w, axis=-1)
    flip = jax.random.uniform(jax.random.fold_in(key, 2), (n,)) < noise
    return x, jnp.where(flip, jax.random.randint(jax.random.fold_in(key, 3), (n,), 0, classes), y)


def small_net(seed: int = 0, sizes=(20, 16, 3)):
    """Initial parameters of a ReLU MLP (float64 inside jax.enable_x64(True))."""
    return mlp.init(jax.random.PRNGKey(seed), list(sizes), dtype=jnp.zeros(()).dtype)


def small_model(sizes=(20, 16, 3)):
    """The ReLU MLP as a model value (``small_model(sizes).init(PRNGKey(seed))`` is ``small_net(seed, sizes)``)."""
    return mlp.model(list(sizes), activation=mlp.RELU, dtype=jnp.zeros(()).dtype)


MODEL = small_model()  # fit uses only the model's apply and activation: any ReLU MLP's parameters fit it


def metrics_of(history):
    return {name: getattr(history, name) for name in METRICS}


@pytest.fixture(scope="module")
def data():
    return {"train": teacher(400, seed=0), "val": teacher(200, seed=1), "test": teacher(200, seed=2)}


# --- training and the data order -----------------------------------------------------------


def test_fit_learns_a_linear_teacher(data):
    result = engine.fit(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                        epochs=5, batch_size=32, val=data["val"], test=data["test"], log=None)
    history = result.history
    assert history.epoch == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(None not in getattr(history, name) for name in METRICS)
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] > 0.85  # chance is 1/3
    assert not history.diverged and history.stopped_epoch is None


def test_each_epoch_drops_the_remainder_to_keep_one_batch_shape(data):
    x, y = data["train"]
    history = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), (x[:110], y[:110]),
                         epochs=2, batch_size=32, log=None).history
    assert history.step == [3, 6]  # 110 // 32 = 3 steps per epoch; 14 examples dropped each epoch


def manual_training(params, optimizer, x, y, *, epochs, batch_size, seed, shuffle):
    """The documented schedule, step by step: epoch e visits permutation(fold_in(PRNGKey(seed), e))
    (or the stored order), in full batches."""
    step = train.make_train_step(MODEL, optimizer, penalty=False)  # fit without l2: no penalty term
    opt_state = optimizer.init(params)
    steps = len(x) // batch_size
    for epoch in range(epochs):
        order = (jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(seed), epoch), len(x)) if shuffle
                 else jnp.arange(len(x)))
        for i in range(steps):
            batch = order[i * batch_size:(i + 1) * batch_size]
            params, opt_state, _ = step(params, opt_state, train.Batch(x[batch], y[batch]), 0.0)
    return params


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_equals_the_step_by_step_schedule(data, shuffle):
    x, y = data["train"]
    x, y = x[:150], y[:150]
    optimizer = train.make_optimizer("momentum", learning_rate=0.05)
    with jax.enable_x64(True):
        x, y = jnp.asarray(x, jnp.float64), y
        params = small_net()
        expected = manual_training(params, optimizer, x, y, epochs=3, batch_size=32, seed=4, shuffle=shuffle)
        result = engine.fit(MODEL, params, optimizer, (x, y), epochs=3, batch_size=32, seed=4, shuffle=shuffle,
                            log=None)
    error = tree_max_relative_error(result.params, expected, floor=1e-6)
    assert error < 1e-10, error


def test_shuffled_and_stored_order_differ(data):
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    runs = [engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=2, batch_size=32, shuffle=s, log=None)
            for s in (True, False)]
    assert not tree_allclose(runs[0].params, runs[1].params)


def test_without_shuffle_the_seed_changes_nothing(data):
    # the seed only draws the data order; with the stored order every epoch it has no say
    optimizer = train.make_optimizer("sgd", learning_rate=0.1)
    a, b = (engine.fit(MODEL, small_net(), optimizer, data["train"], epochs=2, batch_size=32, shuffle=False, seed=s,
                       log=None)
            for s in (1, 2))
    assert tree_allclose(a.params, b.params, rtol=0, atol=0)
    assert metrics_of(a.history) == metrics_of(b.history)


def test_manual_and_autodiff_gradients_give_the_same_run(data):
    with jax.enable_x64(True):
        x, y = teacher(200, seed=0)
        runs = [engine.fit(small_model(), small_net(), train.make_optimizer("momentum", learning_rate=0.05), (x, y),
                           l2=1e-3, epochs=3, batch_size=32, val=teacher(100, seed=1), grad_source=source, log=None)
                for source in ("autodiff", "manual")]
    error = tree_max_relative_error(runs[1].params, runs[0].params, floor=1e-6)
    assert error < 1e-9, error
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(getattr(runs[1].history, name), getattr(runs[0].history, name), rtol=1e-9,
                                   err_msg=name)


def test_the_callers_parameters_survive_the_donated_buffers(data):
    params = small_net()
    before = jax.tree.map(np.array, params)
    engine.fit(MODEL, params, train.make_optimizer("sgd", learning_rate=0.1), data["train"], epochs=2, batch_size=32,
               log=None)
    assert tree_allclose(jax.tree.map(np.asarray, params), before, rtol=0, atol=0)


# --- evaluation and the history --------------------------------------------------------------


def test_evals_per_epoch_checks_every_k_steps(data):
    x, y = data["train"]
    history = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), (x[:320], y[:320]),
                         epochs=2, batch_size=32, val=data["val"], evals_per_epoch=2, log=None).history
    assert history.epoch == [0.5, 1.0, 1.5, 2.0]
    assert history.step == [5, 10, 15, 20]
    assert len(history.val_loss) == len(history.train_accuracy) == 4


def test_history_values_are_the_metrics_of_the_trained_parameters(data):
    result = engine.fit(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                        epochs=2, batch_size=32, val=data["val"], test=data["test"], log=None)
    for split in ("train", "val", "test"):
        report = evaluate.classifier(MODEL, result.params, data[split])
        assert getattr(result.history, f"{split}_loss")[-1] == pytest.approx(report["loss"], rel=1e-5)
        assert getattr(result.history, f"{split}_accuracy")[-1] == pytest.approx(report["accuracy"], abs=1e-6)


def test_without_validation_data_no_validation_metric_is_recorded(data):
    history = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], epochs=2,
                         batch_size=32, log=None).history
    assert history.val_loss == [None, None] and history.test_accuracy == [None, None]
    assert None not in history.train_loss


def test_evaluate_classifier_counts_like_numpy():
    # more examples than one evaluation chunk, so the padded last chunk must carry weight 0
    x, y = teacher(evaluate.CHUNK + 300, seed=5, classes=4)
    params = small_net(seed=2, sizes=(20, 8, 4))
    report = evaluate.classifier(small_model((20, 8, 4)), params, (x, y))
    logits = np.asarray(mlp.apply(params, x), np.float64)
    predicted, labels = logits.argmax(-1), np.asarray(y)
    confusion = np.zeros((4, 4), int)
    np.add.at(confusion, (labels, predicted), 1)
    assert report["confusion_matrix"] == confusion.tolist()
    assert report["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    recall = [np.mean(predicted[labels == k] == k) for k in range(4)]
    np.testing.assert_allclose(report["per_class_recall"], recall, rtol=1e-6)
    one_vs_rest = [np.mean((predicted == k) == (labels == k)) for k in range(4)]
    np.testing.assert_allclose(report["per_class_one_vs_rest_accuracy"], one_vs_rest, rtol=1e-6)
    expected_loss = np.mean(optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(labels)))
    assert report["loss"] == pytest.approx(float(expected_loss), rel=1e-5)


# --- early stopping ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overfit():
    """64 examples, half of them relabelled at random, a 256-256 net and Adam: it memorises the
    noise within a few epochs, and the loss on clean validation data turns up."""
    x, y = teacher(64, seed=0, noise=0.5)
    events = []
    result = engine.fit(small_model((20, 256, 256, 3)), small_net(0, (20, 256, 256, 3)),
                        train.make_optimizer("adam", learning_rate=0.01), (x, y), epochs=60, batch_size=16,
                        val=teacher(300, seed=1), patience=3, hooks=[events.append], log=None)
    return result, teacher(300, seed=1), events


def test_early_stopping_stops_patience_checks_after_the_best(overfit):
    history = overfit[0].history
    assert history.stopped_epoch is not None and history.stopped_epoch < 60
    assert history.stopped_epoch - history.best_epoch == 3
    assert history.epoch[-1] == history.stopped_epoch  # no check after the stop
    assert all(v >= history.best_val_loss for v in history.val_loss[history.epoch.index(history.best_epoch) + 1:])


def test_early_stopping_keeps_the_best_parameters(overfit):
    result, val, _ = overfit
    history = result.history
    assert history.best_val_loss == min(history.val_loss)
    assert history.at_epoch("val_loss", history.best_epoch) == history.best_val_loss
    model = small_model((20, 256, 256, 3))
    assert evaluate.classifier(model, result.best_params, val)["loss"] == pytest.approx(history.best_val_loss, rel=1e-5)
    assert evaluate.classifier(model, result.params, val)["loss"] > history.best_val_loss


def test_early_stopping_publishes_one_stopped_event_last(overfit):
    result, _, events = overfit
    assert [e for e in events if not isinstance(e, engine.Check)] == [engine.Stopped(result.history.stopped_epoch)]
    assert events[-1] == engine.Stopped(result.history.stopped_epoch)
    assert [e.epoch for e in events[:-1]] == result.history.epoch  # one Check per check, up to the stop


def test_patience_needs_validation_data(data):
    with pytest.raises(ValueError, match="validation"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], epochs=2, batch_size=32, patience=2,
                   log=None)


# --- divergence -------------------------------------------------------------------------------


def test_a_huge_learning_rate_diverges_without_crashing(data):
    result = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=1e8), data["train"], epochs=3,
                        batch_size=32, val=data["val"], log=None)
    assert result.history.diverged and result.history.diverged_epoch == 1.0
    assert result.history.epoch == []  # no finite check was made
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))


def test_divergence_keeps_the_history_and_parameters_up_to_it(data):
    steps = 400 // 32
    blow_up = lambda count: jnp.where(count < 2 * steps, 0.05, 1e8)  # noqa: E731  (from epoch 3 on)
    kwargs = dict(batch_size=32, val=data["val"], seed=3, log=None)
    diverged = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=blow_up), data["train"],
                          epochs=4, **kwargs)
    healthy = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.05), data["train"], epochs=2,
                         **kwargs)
    assert diverged.history.diverged and diverged.history.diverged_epoch == 3.0
    assert metrics_of(diverged.history) == metrics_of(healthy.history)
    assert tree_allclose(diverged.params, healthy.params, rtol=0, atol=0)


# --- determinism ------------------------------------------------------------------------------


def test_the_same_seed_repeats_the_run(data):
    a, b = (engine.fit(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                       epochs=2, batch_size=32, val=data["val"], seed=11, log=None) for _ in range(2))
    assert metrics_of(a.history) == metrics_of(b.history)
    assert tree_allclose(a.params, b.params, rtol=0, atol=0)


def test_another_data_seed_gives_another_run(data):
    a, b = (engine.fit(MODEL, small_net(), train.make_optimizer("momentum", learning_rate=0.05), data["train"],
                       epochs=2, batch_size=32, val=data["val"], seed=s, log=None) for s in (11, 12))
    assert a.history.train_loss != b.history.train_loss
    assert not tree_allclose(a.params, b.params)


# --- progress lines ---------------------------------------------------------------------------


def test_one_progress_line_per_check(data):
    lines = []
    engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], epochs=2,
               batch_size=32, val=data["val"], evals_per_epoch=3, log=lines.append)
    assert len(lines) == 6
    assert all("val loss" in line and "/2" in line for line in lines)


def test_the_default_log_prints_and_none_is_quiet(data, capsys):
    kwargs = dict(epochs=2, batch_size=32, val=data["val"])
    engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], **kwargs)
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], log=None, **kwargs)
    captured = capsys.readouterr()
    assert captured.out == ""


# --- bad input --------------------------------------------------------------------------------


def test_a_batch_larger_than_the_data_is_refused(data):
    x, y = data["train"]
    with pytest.raises(ValueError, match=r"batch_size 500 is not in \[1, 400\]"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), (x, y), epochs=1, batch_size=500, log=None)


def test_zero_epochs_are_refused(data):
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], epochs=0, batch_size=32, log=None)


def test_a_negative_learning_rate_is_refused(data):
    params = small_net()
    optimizer = train.make_optimizer("sgd")
    opt_state = train.set_hyperparams(optimizer.init(params), learning_rate=-0.1)
    with pytest.raises(ValueError, match="learning_rate must be non-negative"):
        engine.fit(MODEL, params, optimizer, data["train"], epochs=1, batch_size=32, opt_state=opt_state, log=None)


def test_labels_of_another_length_are_refused(data):
    x, y = data["train"]
    with pytest.raises(ValueError, match="400 images but 399 labels"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), (x, y[:-1]), epochs=1, batch_size=32, log=None)
    with pytest.raises(ValueError, match="validation set has 200 images but 150 labels"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), (x, y), epochs=1, batch_size=32,
                   val=(data["val"][0], data["val"][1][:150]), log=None)


# --- structured events ------------------------------------------------------------------------


def test_hooks_receive_one_check_per_evaluation_with_per_member_metrics(data):
    events = []
    result = engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=0.1), data["train"], epochs=2,
                        batch_size=32, val=data["val"], evals_per_epoch=2, hooks=[events.append], log=None)
    history = result.history
    assert all(isinstance(e, engine.Check) for e in events)  # nothing diverged or stopped
    assert [e.epoch for e in events] == history.epoch == [0.5, 1.0, 1.5, 2.0]
    for i, check in enumerate(events):
        assert check.epochs == 2 and check.sweep is False and check.probes == {}
        assert set(check.metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        for name, values in check.metrics.items():
            assert isinstance(values, np.ndarray) and values.shape == (1,), name  # one value per member
            assert float(values[0]) == getattr(history, name)[i], name
        assert len(check.histories) == 1 and check.histories[0] is history
    assert [e.seconds for e in events] == sorted(e.seconds for e in events)


def test_every_hook_receives_every_event_and_log_gets_their_lines(data):
    first, second, lines = [], [], []
    engine.fit(MODEL, small_net(), train.make_optimizer("sgd", learning_rate=1e8), data["train"], epochs=3,
               batch_size=32, val=data["val"], hooks=[first.append, second.append], log=lines.append)
    assert first == second and len(lines) == len(first)
    assert [e for e in first if isinstance(e, engine.Diverged)] == [engine.Diverged(member=0, epoch=1.0, sweep=False)]
    assert sum("diverged at epoch 1.00" in line for line in lines) == 1
    assert not any(line.startswith("member") for line in lines)  # fit names no member


# --- the new API's promises: old spellings are refused by name ------------------------------


@pytest.mark.parametrize("old, value, new", [
    ("hidden", "relu", "model"),
    ("apply_fn", mlp.apply, "model"),
    ("callback", lambda epoch, histories: None, "hooks"),
    ("config", {"note": 1}, "checkpoint_config"),
])
@pytest.mark.parametrize("entry", ["fit", "sweep", "start", "start_sweep"])
def test_old_spellings_are_refused_with_the_new_one(data, entry, old, value, new):
    call = {"fit": lambda **kw: engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], **kw),
            "start": lambda **kw: engine.start(MODEL, small_net(), train.make_optimizer(), data["train"], **kw),
            "sweep": lambda **kw: engine.sweep(MODEL, train.make_optimizer(), data["train"], init_seed=[0, 1], **kw),
            "start_sweep": lambda **kw: engine.start_sweep(MODEL, train.make_optimizer(), data["train"],
                                                           init_seed=[0, 1], **kw)}[entry]
    with pytest.raises(TypeError, match=rf"{old}= is no longer an option: .*{new}") as caught:
        call(epochs=1, batch_size=32, log=None, **{old: value})
    assert "\n" not in str(caught.value)


def test_lambda_is_no_optimizer_setting_any_more():
    with pytest.raises(TypeError, match=r"make_optimizer no longer takes l2.*engine\.fit\(\.\.\., l2="):
        train.make_optimizer("sgd", learning_rate=0.1, l2=1e-3)


def test_a_loss_name_is_refused_with_the_way_to_its_value(data):
    with pytest.raises(TypeError, match=r"loss must be a losses\.Loss .*losses\.get\(name\)"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], epochs=1, batch_size=32, loss="nll",
                   log=None)


@pytest.mark.parametrize("name, new", [("evaluate_classifier", "jaxnet.evaluate.classifier"),
                                       ("EVAL_CHUNK", "jaxnet.evaluate.CHUNK")])
def test_moved_engine_names_say_where_they_went(name, new):
    with pytest.raises(AttributeError, match=rf"jaxnet\.engine\.{name} moved: use {new}"):
        getattr(engine, name)


def test_a_name_that_never_existed_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        engine.no_such_thing  # noqa: B018


@pytest.mark.parametrize("epochs", [1.5, "2", 2.0, True])
def test_epochs_must_be_a_whole_number(data, epochs):
    with pytest.raises(TypeError, match=rf"epochs must be a whole number, got {re.escape(repr(epochs))}"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], epochs=epochs, batch_size=32, log=None)
    with pytest.raises(TypeError, match="epochs must be a whole number"):
        engine.sweep(MODEL, train.make_optimizer(), data["train"], learning_rate=[0.1, 0.2], epochs=epochs,
                     batch_size=32, log=None)


def test_epochs_and_batch_size_are_required(data):
    with pytest.raises(TypeError, match="needs batch_size and epochs"):
        engine.fit(MODEL, small_net(), train.make_optimizer(), data["train"], log=None)


# --- the real thing ---------------------------------------------------------------------------


@pytest.mark.slow
def test_mnist_mlp_reaches_97_percent(mnist_dir, tmp_path):
    from jaxnet import data as datasets

    ds = datasets.load("mnist", manual_dir=mnist_dir, data_dir=tmp_path)
    to_inputs = lambda images: np.asarray(images, np.float32).reshape(len(images), -1) / 127.5 - 1.0  # noqa: E731
    x_train, x_test = to_inputs(ds.x_train), to_inputs(ds.x_test)
    assert x_train.min() == -1.0 and x_train.max() == 1.0
    started = time.perf_counter()
    model = mlp.model([784, 128, 64, 10], activation=mlp.RELU)
    result = engine.fit(model, model.init(jax.random.PRNGKey(0)),
                        train.make_optimizer("momentum", learning_rate=0.01, momentum=0.9),
                        (x_train, ds.y_train), epochs=15, batch_size=64, test=(x_test, ds.y_test), eval_train=False,
                        seed=0)
    seconds = time.perf_counter() - started
    report = evaluate.classifier(model, result.params, (x_test, ds.y_test))
    print(f"MNIST 784-128-64-10: test accuracy {report['accuracy']:.4f} after {seconds:.1f} s")
    assert report["accuracy"] >= 0.97
    assert report["accuracy"] == pytest.approx(result.history.test_accuracy[-1], abs=1e-6)
