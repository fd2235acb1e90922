"""jaxnet.train: the optimizers, injected hyperparameters, the train step with either
gradient source, λ's optax convention, and compile-once behaviour."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import tree_allclose, tree_max_relative_error
from jaxnet import backprop, losses, mlp, train

SIZES = [5, 4, 3]
BATCH = 8


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
        ("sgd", {"learning_rate", "l2"}),
        ("momentum", {"learning_rate", "l2", "momentum"}),
        ("nesterov", {"learning_rate", "l2", "momentum"}),
        ("adam", {"learning_rate", "l2", "b1", "b2"}),
    ],
)
def test_make_optimizer_injects_hyperparameters(name, expected):
    state = train.make_optimizer(name, learning_rate=0.05, l2=0.01).init(mlp.init(jax.random.key(0), SIZES))
    hyper = train.hyperparams(state)
    assert set(hyper) == expected
    assert float(hyper["learning_rate"]) == pytest.approx(0.05)
    assert float(hyper["l2"]) == pytest.approx(0.01)


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


@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": -0.1}, r"learning_rate must be non-negative, got -0\.1"),
    ({"l2": -1.0}, r"l2 \(λ\) must be non-negative, got -1\.0"),
])
def test_make_optimizer_rejects_negative_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.make_optimizer("sgd", **kwargs)


def test_set_hyperparams_replaces_values():
    state = train.make_optimizer("momentum", learning_rate=0.1).init(mlp.init(jax.random.key(0), SIZES))
    new = train.set_hyperparams(state, learning_rate=0.5, l2=0.2)
    assert float(train.hyperparams(new)["learning_rate"]) == pytest.approx(0.5)
    assert float(train.hyperparams(new)["l2"]) == pytest.approx(0.2)
    assert float(train.hyperparams(state)["learning_rate"]) == pytest.approx(0.1)  # a copy


def test_set_hyperparams_rejects_unknown_names():
    state = train.make_optimizer("sgd").init(mlp.init(jax.random.key(0), SIZES))
    with pytest.raises(ValueError, match=r"optimizer has no hyperparameter\(s\) \['momentum'\]; it has \['l2', 'learning_rate'\]"):
        train.set_hyperparams(state, momentum=0.9)


def test_hyperparams_of_a_plain_optax_state_is_empty():
    assert train.hyperparams(optax.sgd(0.1).init(mlp.init(jax.random.key(0), SIZES))) == {}


# --- the train step -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden, loss, optimizer, lam",
    [
        ("relu", "softmax_cross_entropy", "sgd", 0.1),
        ("tanh", "mse", "momentum", 0.1),
        ("sigmoid", "kl_divergence", "nesterov", 0.0),
        ("tanh", "nll", "adam", 0.01),
    ],
    ids=lambda v: str(v),
)
def test_manual_and_autodiff_training_agree(hidden, loss, optimizer, lam):
    """Several optax steps in float64 from the same start end at the same parameters."""
    with jax.enable_x64(True):
        params = mlp.init(jax.random.key(0), [5, 4, 4, 3], scheme="uniform", dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (BATCH, 5), jnp.float64)
        y = jax.random.randint(jax.random.key(2), (BATCH,), 0, 3)
        if loss == "kl_divergence":
            y = jax.random.dirichlet(jax.random.key(3), jnp.ones(3, jnp.float64), (BATCH,))
        opt = train.make_optimizer(optimizer, learning_rate=0.05, l2=lam)
        finals = {}
        for source in train.GRAD_SOURCES:
            step = train.make_train_step(opt, hidden=hidden, loss=loss, grad_source=source)
            p, state = params, opt.init(params)
            for _ in range(5):
                p, state, _ = step(p, state, train.Batch(x, y))
            finals[source] = p
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(finals["manual"]))
        assert not tree_allclose(finals["autodiff"], params)  # the parameters did move
        error = tree_max_relative_error(finals["manual"], finals["autodiff"], floor=1e-8)
        assert error <= 1e-10, f"max relative error {error:.2e}"


def test_step_adds_the_l2_gradient_as_optax_add_decayed_weights_2_lambda():
    """Our λ‖W‖² penalty in the step equals optax.add_decayed_weights(2λ) on the weights."""
    lam, lr = 0.1, 0.5
    params, batch = mlp.init(jax.random.key(0), SIZES, scheme="uniform"), make_batch()
    step = train.make_train_step(train.make_optimizer("sgd", learning_rate=lr, l2=lam), hidden="tanh")
    ours, _, _ = step(params, train.make_optimizer("sgd", learning_rate=lr, l2=lam).init(params), batch)

    data_grads = backprop.grads(params, batch.x, batch.y, hidden="tanh", l2=0.0)
    weights_only = jax.tree.map(lambda leaf: leaf.ndim >= 2, params)
    reference = optax.chain(optax.add_decayed_weights(2 * lam, mask=weights_only), optax.sgd(lr))
    updates, _ = reference.update(data_grads, reference.init(params), params)
    assert tree_allclose(ours, optax.apply_updates(params, updates), rtol=1e-5, atol=1e-7)


def test_step_reports_the_loss_and_accuracy_before_the_update():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=0.1, l2=0.01)
    _, _, metrics = train.make_train_step(opt, hidden="relu")(params, opt.init(params), batch)
    logits = mlp.apply(params, batch.x, hidden="relu")
    expected_loss = losses.loss_from_logits("softmax_cross_entropy", logits, batch.y) + losses.l2_penalty(params, 0.01)
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], jnp.mean(jnp.argmax(logits, -1) == batch.y))


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_training_lowers_the_loss(grad_source):
    params, batch = mlp.init(jax.random.key(0), [5, 8, 3]), make_batch(batch=32)
    opt = train.make_optimizer("adam", learning_rate=0.05)
    step = train.make_train_step(opt, hidden="tanh", grad_source=grad_source)
    state, history = opt.init(params), []
    for _ in range(30):
        params, state, metrics = step(params, state, batch)
        history.append(float(metrics["loss"]))
    assert history[-1] < 0.5 * history[0]


# --- compile once -------------------------------------------------------------------------
# step._cache_size() is the number of compiled versions the jitted step holds: one per
# distinct input signature (shapes, dtypes, weak types, static structure).


def test_step_compiles_once_across_calls_and_hyperparameter_changes():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("momentum", learning_rate=0.1, l2=0.0)
    step = train.make_train_step(opt, hidden="relu")
    state = opt.init(params)
    for _ in range(3):
        params, state, _ = step(params, state, batch)
    assert step._cache_size() == 1
    state = train.set_hyperparams(state, learning_rate=0.01)
    params, state, _ = step(params, state, batch)
    state = train.set_hyperparams(state, l2=0.3, momentum=0.5)
    params, state, _ = step(params, state, make_batch(seed=9))  # new data, same shapes
    assert step._cache_size() == 1


def test_compile_counter_sees_a_new_batch_shape():
    """The counter above can fail: a batch of another size is a new signature."""
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(opt)
    state = opt.init(params)
    params, state, _ = step(params, state, make_batch(batch=BATCH))
    params, state, _ = step(params, state, make_batch(batch=BATCH + 1))
    assert step._cache_size() == 2


def test_new_hyperparameters_take_effect_without_recompiling():
    params, batch = mlp.init(jax.random.key(0), SIZES), make_batch()
    opt = train.make_optimizer("sgd", learning_rate=0.1)
    step = train.make_train_step(opt)
    state = opt.init(params)
    slow, _, _ = step(params, state, batch)
    fast, _, _ = step(params, train.set_hyperparams(state, learning_rate=0.3), batch)
    moved = lambda new: jax.tree.map(jnp.subtract, new, params)  # noqa: E731
    assert tree_allclose(moved(fast), jax.tree.map(lambda d: 3 * d, moved(slow)), rtol=1e-4, atol=1e-6)
    assert step._cache_size() == 1


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": "gelu"}, r"unknown hidden activation 'gelu'; choose one of \['relu', 'sigmoid', 'tanh'\]"),
    ({"loss": "hinge"}, r"unknown loss 'hinge'; choose one of \['softmax_cross_entropy'"),
    ({"grad_source": "symbolic"}, r"unknown grad_source 'symbolic'; choose one of \['autodiff', 'manual'\]"),
], ids=["activation", "loss", "grad_source"])
def test_make_train_step_rejects_unknown_names(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train.make_train_step(train.make_optimizer("sgd"), **kwargs)


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_jitted_step_rejects_x_that_does_not_fit(grad_source):
    """Shapes are static, so the check fires while tracing, even under jit."""
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(opt, grad_source=grad_source)
    bad = train.Batch(jnp.ones((BATCH, SIZES[0] + 2)), make_batch().y)
    with pytest.raises(ValueError, match=r"x has shape \(8, 7\) but the network expects \(batch, 5\)"):
        step(params, opt.init(params), bad)


@pytest.mark.parametrize("grad_source", train.GRAD_SOURCES)
def test_jitted_step_rejects_y_that_does_not_fit(grad_source):
    params = mlp.init(jax.random.key(0), SIZES)
    opt = train.make_optimizer("sgd")
    step = train.make_train_step(opt, grad_source=grad_source)
    bad = train.Batch(make_batch().x, jnp.zeros(BATCH - 1, jnp.int32))
    with pytest.raises(ValueError, match=r"y has 7 rows but x has 8"):
        step(params, opt.init(params), bad)


@pytest.mark.parametrize("kwargs, named", [
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number, got nan"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number, got inf"),
    (dict(l2=float("nan")), "l2 must be a finite number, got nan"),
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
    assert sorted(train.hyperparams(state)) == ["l2", "learning_rate"]
