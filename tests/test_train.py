"""jaxnet.train: the optimizers, injected hyperparameters, the train step with either
gradient source, λ's optax convention, and compile-once behaviour."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import tree_allclose, tree_max_relative_error
from jaxnet import backprop, losses, mlp, train

SIZES = [5, 4, 3]
BATCH = 8
MODEL = mlp.model(SIZES)  # the ReLU MLP


def make_batch(seed=1, batch=BATCH, dtype=jnp.float32, classes=SIZES[-1]):
    key_x, key_y = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(key_x, (batch, SIZES[0]), dtype)
    return train.Batch(x, jax.random.randint(key_y, (batch,), 0, classes))


def constant_grads(params, value):
    return jax.tree.map(lambda leaf: jnp.full_like(leaf, value), params)


# --- make_optimizer and its hyperparameters ---------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sgd", {"learning_rate"}),
        ("momentum", {"learning_rate", "momentum"}),
        ("nesterov", {"learning_rate", "momentum"}),
        ("adam", {"learning_rate", "b1", "b2"}),
    ],
)
def test_make_optimizer_injects_hyperparameters(name, expected):
    given = {"momentum": 0.7, "b1": 0.8, "b2": 0.99}
    state = train.make_optimizer(name, learning_rate=0.05, **given).init(mlp.init(jax.random.key(0), SIZES))
    hyper = train.hyperparams(state)
    assert set(hyper) == expected  # λ is not an optimizer setting any more
    assert float(hyper["learning_rate"]) == pytest.approx(0.05)
    for key in expected - {"learning_rate"}:
        assert float(hyper[key]) == pytest.approx(given[key])


@pytest.mark.parametrize("l2", [0.1, 0.0, -1.0, float("nan")])
def test_make_optimizer_refuses_l2_naming_where_it_goes(l2):
    """λ is its own setting now: make_optimizer(l2=…) is a TypeError that names l2 and engine.fit(l2=…)."""
    with pytest.raises(TypeError, match=r"make_optimizer no longer takes l2.*engine\.fit\(\.\.\., l2=λ\)"):
        train.make_optimizer("sgd", l2=l2)


def test_make_optimizer_refuses_unknown_keywords():
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['weight_decay'\]"):
        train.make_optimizer("sgd", weight_decay=0.1)


@pytest.mark.parametrize("name, first, second", [
    ("sgd", dict(learning_rate=0.1), dict(learning_rate=0.3)),
    ("momentum", dict(learning_rate=0.1, momentum=0.9), dict(learning_rate=0.02, momentum=0.5)),
    ("nesterov", dict(learning_rate=0.1, momentum=0.9), dict(learning_rate=0.02, momentum=0.0)),
    ("adam", dict(learning_rate=1e-3, b1=0.9, b2=0.999), dict(learning_rate=0.05, b1=0.5, b2=0.9)),
])
def test_optimizers_of_one_name_share_update_and_keep_their_values_in_the_state(name, first, second):
    """New values are data: both optimizers have the very same ``update`` (so programs compiled
    for one serve the other), and each one's init state holds its own values."""
    a, b = train.make_optimizer(name, **first), train.make_optimizer(name, **second)
    assert a.update is b.update
    params = mlp.init(jax.random.key(0), SIZES)
    for opt, values in ((a, first), (b, second)):
        hyper = train.hyperparams(opt.init(params))
        for key, value in values.items():
            assert float(hyper[key]) == pytest.approx(value)
    assert train.make_optimizer("adam").update is not train.make_optimizer("sgd").update  # another kind


def test_one_step_serves_every_optimizer_of_its_name():
    """A step built with one optimizer, given another's state, does what that other's step does,
    and compiles nothing new."""
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    a = train.make_optimizer("momentum", learning_rate=0.1, momentum=0.9)
    b = train.make_optimizer("momentum", learning_rate=0.02, momentum=0.3)
    step_a, step_b = train.make_train_step(MODEL, a), train.make_train_step(MODEL, b)

    def two_steps(step, state):
        p, state, _ = step(params, state, batch, 0.01)
        return step(p, state, batch, 0.01)[0]

    via_a, via_b = two_steps(step_a, b.init(params)), two_steps(step_b, b.init(params))
    assert tree_allclose(via_a, via_b, rtol=1e-6, atol=1e-7)
    assert not tree_allclose(two_steps(step_a, a.init(params)), via_a)  # the values in the state do matter
    assert step_a._cache_size() == 1


def test_sgd_update_is_minus_learning_rate_times_gradient():
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd", learning_rate=0.1)
    grads = constant_grads(params, 2.0)
    updates, _ = opt.update(grads, opt.init(params), params)
    assert tree_allclose(updates, constant_grads(params, -0.2), rtol=1e-6)


def test_momentum_accumulates_velocity():
    """Heavy ball: v₁ = g, v₂ = g + μv₁; after two steps with constant g the total update
    is −η(v₁ + v₂) = −η g (2 + μ)."""
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("momentum", learning_rate=0.1, momentum=0.9)
    state, grads = opt.init(params), constant_grads(params, 1.0)
    first, state = opt.update(grads, state, params)
    second, _ = opt.update(grads, state, params)
    total = jax.tree.map(jnp.add, first, second)
    assert tree_allclose(total, constant_grads(params, -0.1 * (2 + 0.9)), rtol=1e-6)


def test_adam_matches_the_textbook_update():
    """m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², update = −η m̂/(√v̂ + ε), hats bias-corrected."""
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    params = [{"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}]
    opt = train.make_optimizer("adam", learning_rate=lr, b1=b1, b2=b2)
    state = opt.init(params)
    m = v = np.zeros(2)
    for t, g in enumerate([np.array([0.5, -2.0]), np.array([1.5, 0.25])], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        expected = -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        grads = [{"w": jnp.tile(jnp.asarray(g, jnp.float32), (2, 1)), "b": jnp.asarray(g, jnp.float32)}]
        updates, state = opt.update(grads, state, params)
        np.testing.assert_allclose(updates[0]["b"], expected, rtol=1e-5)


def test_make_optimizer_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; choose one of \['sgd', 'momentum', 'nesterov', 'adam'\]"):
        train.make_optimizer("rmsprop")


def test_make_optimizer_rejects_negative_hyperparameters():
    with pytest.raises(ValueError, match=r"learning_rate must be non-negative, got -0\.1"):
        train.make_optimizer("sgd", learning_rate=-0.1)


def test_set_hyperparams_replaces_values():
    state = train.make_optimizer("momentum", learning_rate=0.1).init(mlp.init(jax.random.key(0), SIZES))
    new = train.set_hyperparams(state, learning_rate=0.5, momentum=0.2)
    assert float(train.hyperparams(new)["learning_rate"]) == pytest.approx(0.5)
    assert float(train.hyperparams(new)["momentum"]) == pytest.approx(0.2)
    assert float(train.hyperparams(state)["learning_rate"]) == pytest.approx(0.1)  # a copy
    assert float(train.hyperparams(state)["momentum"]) == pytest.approx(0.9)


@pytest.mark.parametrize("name, values, has", [
    ("sgd", {"momentum": 0.9}, "['learning_rate']"),
    ("momentum", {"l2": 0.1}, "['learning_rate', 'momentum']"),  # λ is not in the optimizer's state
], ids=["sgd-momentum", "momentum-l2"])
def test_set_hyperparams_rejects_unknown_names(name, values, has):
    state = train.make_optimizer(name).init(mlp.init(jax.random.key(0), SIZES))
    with pytest.raises(ValueError, match=rf"optimizer has no hyperparameter\(s\) \{sorted(values)}; it has "
                                         + re.escape(has)):
        train.set_hyperparams(state, **values)


def test_hyperparams_of_a_plain_optax_state_is_empty():
    assert train.hyperparams(optax.sgd(0.1).init(mlp.init(jax.random.key(0), SIZES))) == {}


# --- the train step -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, loss, optimizer, lam",
    [
        ("relu", "softmax_cross_entropy", "sgd", 0.1),
        ("tanh", "mse", "momentum", 0.1),
        ("sigmoid", "kl_divergence", "nesterov", 0.0),
        ("tanh", "nll", "adam", 0.01),
    ],
    ids=lambda v: str(v),
)
def test_manual_and_autodiff_training_agree(activation, loss, optimizer, lam):
    """Several optax steps in float64 from the same start end at the same parameters."""
    with jax.enable_x64(True):
        params = mlp.init(jax.random.key(0), [5, 4, 4, 3], scheme="uniform", dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (BATCH, 5), jnp.float64)
        y = jax.random.randint(jax.random.key(2), (BATCH,), 0, 3)
        if loss == "kl_divergence":
            y = jax.random.dirichlet(jax.random.key(3), jnp.ones(3, jnp.float64), (BATCH,))
        opt = train.make_optimizer(optimizer, learning_rate=0.05)
        model = mlp.model([5, 4, 4, 3], activation=mlp.activation(activation), dtype=jnp.float64)
        finals = {}
        for source in train.GRAD_SOURCES:
            step = train.make_train_step(model, opt, loss=losses.get(loss), grad_source=source)
            p, state = params, opt.init(params)
            for _ in range(5):
                p, state, _ = step(p, state, train.Batch(x, y), lam)
            finals[source] = p
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(finals["manual"]))
        assert not tree_allclose(finals["autodiff"], params)  # the parameters did move
        error = tree_max_relative_error(finals["manual"], finals["autodiff"], floor=1e-8)
        assert error <= 1e-10, f"max relative error {error:.2e}"


def test_step_adds_the_l2_gradient_as_optax_add_decayed_weights_2_lambda():
    """Our λ‖W‖² penalty in the step equals optax.add_decayed_weights(2λ) on the weights."""
    lam, lr = 0.1, 0.5
    params, batch = mlp.init(jax.random.key(0), SIZES, scheme="uniform"), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=lr)
    step = train.make_train_step(mlp.model(SIZES, activation=mlp.TANH), opt)
    ours, _, _ = step(params, opt.init(params), batch, lam)

    data_grads = backprop.grads(params, batch.x, batch.y, activation=mlp.TANH, l2=0.0)
    weights_only = jax.tree.map(lambda leaf: leaf.ndim >= 2, params)
    reference = optax.chain(optax.add_decayed_weights(2 * lam, mask=weights_only), optax.sgd(lr))
    updates, _ = reference.update(data_grads, reference.init(params), params)
    assert tree_allclose(ours, optax.apply_updates(params, updates), rtol=1e-5, atol=1e-7)


def test_step_reports_the_loss_and_accuracy_before_the_update():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=0.1)
    _, _, metrics = train.make_train_step(mlp.model(SIZES, activation=mlp.RELU), opt)(params, opt.init(params), batch,
                                                                                       0.01)
    logits = mlp.apply(params, batch.x, activation=mlp.RELU)
    expected_loss = losses.SOFTMAX_CROSS_ENTROPY(logits, batch.y) + losses.l2_penalty(params, 0.01)
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], jnp.mean(jnp.argmax(logits, -1) == batch.y))


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_training_lowers_the_loss(grad_source):
    params, batch = mlp.init(jax.random.key(0), [5, 8, 3]), make_batch(batch=32)
    opt = train.make_optimizer("adam", learning_rate=0.05)
    step = train.make_train_step(mlp.model([5, 8, 3], activation=mlp.TANH), opt, grad_source=grad_source)
    state, history = opt.init(params), []
    for _ in range(30):
        params, state, metrics = step(params, state, batch, 0.0)
        history.append(float(metrics["loss"]))
    assert history[-1] < 0.5 * history[0]


# --- compile once -------------------------------------------------------------------------
# step._cache_size() is the number of compiled versions the jitted step holds: one per
# distinct input signature (shapes, dtypes, weak types, static structure).


def test_step_compiles_once_across_calls_and_hyperparameter_changes():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("momentum", learning_rate=0.1)
    step = train.make_train_step(mlp.model(SIZES, activation=mlp.RELU), opt)
    state = opt.init(params)
    for _ in range(3):
        params, state, _ = step(params, state, batch, 0.0)
    assert step._cache_size() == 1
    state = train.set_hyperparams(state, learning_rate=0.01)
    params, state, _ = step(params, state, batch, 0.0)
    state = train.set_hyperparams(state, momentum=0.5)
    params, state, _ = step(params, state, make_batch(seed=9), 0.3)  # new λ, new data, same shapes
    assert step._cache_size() == 1


def test_compile_counter_sees_a_new_batch_shape():
    """The counter above can fail: a batch of another size is a new signature."""
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(MODEL, opt)
    state = opt.init(params)
    params, state, _ = step(params, state, make_batch(batch=BATCH), 0.0)
    params, state, _ = step(params, state, make_batch(batch=BATCH + 1), 0.0)
    assert step._cache_size() == 2


def test_new_hyperparameters_take_effect_without_recompiling():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=0.1)
    step = train.make_train_step(MODEL, opt)
    state = opt.init(params)
    slow, _, _ = step(params, state, batch, 0.0)
    fast, _, _ = step(params, train.set_hyperparams(state, learning_rate=0.3), batch, 0.0)
    moved = lambda new: jax.tree.map(jnp.subtract, new, params)  # noqa: E731
    assert tree_allclose(moved(fast), jax.tree.map(lambda d: 3 * d, moved(slow)), rtol=1e-4, atol=1e-6)
    # λ is a traced argument too: a new λ takes effect (its gradient 2λW) without recompiling
    penalised, _, _ = step(params, state, batch, 0.25)
    decay = jax.tree.map(lambda p, q, w: (p - q) / (-0.1 * 2 * 0.25), penalised, slow, params)
    for layer, d in zip(params, decay):
        np.testing.assert_allclose(d["w"], layer["w"], rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(d["b"], 0.0, atol=1e-5)  # biases are not penalised
    assert step._cache_size() == 1


def test_penalty_false_leaves_lambda_out_of_the_step():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=0.1)
    for grad_source in train.GRAD_SOURCES:
        plain = train.make_train_step(MODEL, opt, penalty=False, grad_source=grad_source)
        penalised = train.make_train_step(MODEL, opt, grad_source=grad_source)
        ignored, _, metrics = plain(params, opt.init(params), batch, 0.5)  # l2 is ignored
        zero, _, zero_metrics = penalised(params, opt.init(params), batch, 0.0)
        assert tree_allclose(ignored, zero, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(metrics["loss"], zero_metrics["loss"], rtol=1e-6)
        assert not tree_allclose(ignored, penalised(params, opt.init(params), batch, 0.5)[0])


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("build, message", [
    (lambda: train.make_train_step(mlp.model(SIZES, activation=mlp.activation("gelu")), train.make_optimizer("sgd")),
     r"unknown activation 'gelu'; choose one of \['relu', 'sigmoid', 'tanh'\]"),
    (lambda: train.make_train_step(MODEL, train.make_optimizer("sgd"), loss=losses.get("hinge")),
     r"unknown loss 'hinge'; choose one of \['softmax_cross_entropy'"),
    (lambda: train.make_train_step(MODEL, train.make_optimizer("sgd"), grad_source="symbolic"),
     r"unknown grad_source 'symbolic'; choose one of \['autodiff', 'manual'\]"),
], ids=["activation", "loss", "grad_source"])
def test_make_train_step_rejects_unknown_names(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("build, message", [
    (lambda: train.make_train_step(mlp.model(SIZES, activation="relu"), train.make_optimizer("sgd")),
     r"activation must be an mlp\.Activation"),
    (lambda: train.make_train_step(MODEL, train.make_optimizer("sgd"), loss="softmax_cross_entropy"),
     r"loss must be a losses\.Loss"),
    (lambda: train.make_train_step(train.make_optimizer("sgd"), hidden="relu"), r"hidden"),
], ids=["activation-name", "loss-name", "old-signature"])
def test_make_train_step_refuses_names_where_values_belong(build, message):
    with pytest.raises(TypeError, match=message):
        build()


def test_manual_gradients_need_an_mlp_model():
    not_an_mlp = mlp.Model(MODEL.init, MODEL.apply, None)  # e.g. cnn.model(...): no activation to derive with
    with pytest.raises(ValueError, match=r"grad_source='manual' derives gradients for jaxnet\.mlp models only"):
        train.make_train_step(not_an_mlp, train.make_optimizer("sgd"), grad_source="manual")


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_jitted_step_rejects_x_that_does_not_fit(grad_source):
    """Shapes are static, so the check fires while tracing, even under jit."""
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(MODEL, opt, grad_source=grad_source)
    bad = train.Batch(jnp.ones((BATCH, SIZES[0] + 2)), make_batch().y)
    with pytest.raises(ValueError, match=r"x has shape \(8, 7\) but the network expects \(batch, 5\)"):
        step(params, opt.init(params), bad, 0.0)


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_jitted_step_rejects_y_that_does_not_fit(grad_source):
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(MODEL, opt, grad_source=grad_source)
    bad = train.Batch(make_batch().x, jnp.zeros(BATCH - 1, jnp.int32))
    with pytest.raises(ValueError, match=r"y has 7 rows but x has 8"):
        step(params, opt.init(params), bad, 0.0)


@pytest.mark.parametrize("kwargs, named", [
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number, got nan"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number, got inf"),
    (dict(name="momentum", momentum=float("nan")), "momentum must be a finite number, got nan"),
    (dict(name="nesterov", momentum=1.0), r"momentum must lie in \[0, 1\), got 1.0"),
    (dict(name="adam", b1=float("-inf")), "b1 must be a finite number, got -inf"),
    (dict(name="adam", b2=1.5), r"b2 must lie in \[0, 1\), got 1.5"),
    (dict(learning_rate="fast"), "learning_rate must be a number, got 'fast'"),
])
def test_make_optimizer_rejects_nonfinite_and_out_of_range_hyperparameters(kwargs, named):
    name = kwargs.pop("name", "sgd")
    with pytest.raises(ValueError, match=named):
        train.make_optimizer(name, **kwargs)


def test_make_optimizer_ignores_hyperparameters_its_optimizer_does_not_use():
    """sgd has no momentum and no b1/b2: they are not validated (or used) there."""
    state = train.make_optimizer("sgd", momentum=float("nan"), b2=2.0).init({"w": jnp.zeros(2)})
    assert sorted(train.hyperparams(state)) == ["learning_rate"]
