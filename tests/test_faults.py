"""Bad data never becomes a wrong number: the engine refuses, before training, inputs that
would otherwise give a quiet loss of 0, a clamped index, or a "divergence" that is really
NaN in the data."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxnet import engine, evaluate, mlp, train

FEATURES, CLASSES, N = 5, 3, 64


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, FEATURES)).astype(np.float32)
    return x, (np.arange(N) % CLASSES).astype(np.int32)


MODEL = mlp.model([FEATURES, 4, CLASSES], activation=mlp.RELU)


OPTIMIZER = train.make_optimizer("sgd", learning_rate=0.1)
QUICK = dict(epochs=1, batch_size=16)


def fit(data, **kwargs):
    lines = []
    try:
        return engine.fit(MODEL, MODEL.init(jax.random.PRNGKey(0)), OPTIMIZER, data, log=lines.append,
                          **(QUICK | kwargs))
    except ValueError:
        assert not lines, "the check must come before any training"
        raise


def sweep(data, **kwargs):
    return engine.sweep(MODEL, OPTIMIZER, data, log=None, **(QUICK | kwargs))


def with_nonfinite(x, count=2):
    bad = x.copy()
    bad.reshape(-1)[:count] = [np.nan, np.inf][:count] if count <= 2 else np.nan
    return bad


# --- validation and test sets ----------------------------------------------------------------


@pytest.mark.parametrize("split, name", [("val", "validation"), ("test", "test")])
@pytest.mark.parametrize("shift", [CLASSES, -1])
def test_out_of_range_evaluation_labels_are_refused(data, split, name, shift):
    """They used to score loss 0 and accuracy 0 without a word."""
    x, y = data
    bad = y + shift if shift > 0 else np.where(y == 0, -1, y)
    with pytest.raises(ValueError, match=rf"the {name} set: labels must lie in \[0, {CLASSES}\)"):
        fit(data, **{split: (x, bad)})


def test_in_range_evaluation_labels_are_accepted(data):
    history = fit(data, val=data, test=data).history
    assert 0 < history.val_loss[0] and 0 < history.test_accuracy[0] <= 1


# --- NaN and inf in the inputs --------------------------------------------------------------------


@pytest.mark.parametrize("where, name", [("train", "training"), ("val", "validation"), ("test", "test")])
def test_nonfinite_inputs_are_refused_before_training(data, where, name):
    x, y = data
    bad = (with_nonfinite(x), y)
    kwargs = {"train": {}, "val": {"val": bad}, "test": {"test": bad}}[where]
    with pytest.raises(ValueError, match=rf"the {name} inputs contain 2 NaN/inf value\(s\) .*clean the data"):
        fit(bad if where == "train" else data, **kwargs)


def test_nonfinite_inputs_are_refused_by_a_sweep_too(data):
    x, y = data
    with pytest.raises(ValueError, match=r"the training inputs contain 1 NaN/inf value\(s\)"):
        sweep((with_nonfinite(x, 1), y), learning_rate=[0.1, 0.2])


def test_nonfinite_float_targets_are_refused(data):
    x, y = data
    onehot = np.eye(CLASSES, dtype=np.float32)[y]
    onehot[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"the training targets contain 1 NaN/inf value\(s\)"):
        fit((x, onehot))


def test_integer_inputs_need_no_finiteness_check(data):
    x, y = data
    result = fit((np.round(x * 10).astype(np.int32), y))
    assert np.isfinite(result.history.train_loss[0])


def test_a_real_divergence_is_still_reported_as_one(data):
    """Finite data with a huge learning rate: a divergence, not a data error."""
    history = engine.fit(MODEL, MODEL.init(jax.random.PRNGKey(0)), train.make_optimizer("sgd", learning_rate=1e30),
                         data, log=None, epochs=2, batch_size=16).history
    assert history.diverged


# --- every sweep member -------------------------------------------------------------------------


def test_every_members_labels_are_range_checked(data):
    x, y = data
    with pytest.raises(ValueError, match=rf"member 2's labels: labels must lie in \[0, {CLASSES}\)"):
        sweep(data, labels=[y, y, np.where(y == 1, CLASSES, y)])


def test_member_labels_need_one_row_per_image(data):
    x, y = data
    with pytest.raises(ValueError, match=rf"labels of member 1 have shape \({N - 1},\); each member needs one label "
                                         rf"per training image \({N},\)"):
        sweep(data, labels=[y, y[:-1]])


@pytest.mark.parametrize("bad, found", [(np.arange(40, 72), "from 40 to 71"), (np.arange(-1, 31), "from -1 to 30")])
def test_sweep_indices_outside_the_training_set_are_refused(data, bad, found):
    """JAX would clamp them to the last example without a word."""
    with pytest.raises(ValueError, match=rf"indices of member 1 must lie in \[0, {N}\) \(the training set\), found "
                                         rf"values {found}"):
        sweep(data, indices=[np.arange(32), bad])


def test_sweep_indices_must_be_integers_of_one_length(data):
    with pytest.raises(ValueError, match="indices of member 0 must be a non-empty 1-D integer array"):
        sweep(data, indices=[np.arange(32.0), np.arange(32.0)])
    with pytest.raises(ValueError, match=r"indices of member 1 have shape \(20,\) but member 0's have \(32,\)"):
        sweep(data, indices=[np.arange(32), np.arange(20)])


def test_members_of_different_shapes_get_a_clear_message(data):
    def mixed(key):  # the hidden width follows the seed
        return mlp.init(key, [FEATURES, 4 + int(key[1]) % 2, CLASSES])

    with pytest.raises(ValueError, match=r"member 1's parameter \[0\]\['b'\] is float32\[5\] but member 0's is "
                                         r"float32\[4\]; every member of a sweep needs the same architecture"):
        engine.sweep(MODEL._replace(init=mixed), OPTIMIZER, data, init_seed=[0, 1], log=None, **QUICK)

    def deeper(key):
        return mlp.init(key, [FEATURES] + [4] * (1 + int(key[1]) % 2) + [CLASSES])

    with pytest.raises(ValueError, match="member 1's parameters have a different structure from member 0's"):
        engine.sweep(MODEL._replace(init=deeper), OPTIMIZER, data, init_seed=[0, 1], log=None, **QUICK)


# --- hyperparameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_nonfinite_member_learning_rate_is_refused(data, value):
    with pytest.raises(ValueError, match=r"learning_rate \(member 1\) must be a finite number"):
        sweep(data, learning_rate=[0.1, value])


def test_a_nonfinite_injected_hyperparameter_is_refused_by_fit(data):
    params = MODEL.init(jax.random.PRNGKey(0))
    state = train.set_hyperparams(OPTIMIZER.init(params), learning_rate=float("nan"))
    with pytest.raises(ValueError, match="learning_rate must be a finite number, got nan"):
        engine.fit(MODEL, params, OPTIMIZER, data, opt_state=state, log=None, **QUICK)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_nonfinite_lambda_is_refused(data, value):
    # λ is its own setting now (no longer in the optimizer state): fit(l2=…) and sweep(l2=[…]) check it
    with pytest.raises(ValueError, match=rf"l2 must be a finite number, got {value}"):
        fit(data, l2=value)
    with pytest.raises(ValueError, match=rf"l2 \(member 1\) must be a finite number, got {value}"):
        sweep(data, l2=[0.1, value])


def test_a_negative_lambda_is_refused(data):
    with pytest.raises(ValueError, match=r"l2 \(λ\) must be non-negative, got -0.1"):
        fit(data, l2=-0.1)
    with pytest.raises(ValueError, match=r"l2 \(λ\) \(member 0\) must be non-negative"):
        sweep(data, l2=[-0.1, 0.1])


def test_evaluate_classifier_refuses_out_of_range_labels(data):
    x, y = data
    params = MODEL.init(jax.random.PRNGKey(0))
    assert 0 <= evaluate.classifier(MODEL, params, data)["accuracy"] <= 1
    with pytest.raises(ValueError, match=rf"the evaluation set: labels must lie in \[0, {CLASSES}\)"):
        evaluate.classifier(MODEL, params, (x, y + 1))
