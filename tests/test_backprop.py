"""The gradient-check suite: the hand-derived backprop in jaxnet/backprop.py against
jax.grad, and jax.grad against finite differences, in float64 (derivations: docs/backprop.md).

The grid is every hidden activation × depth × loss × λ (3 × 3 × 6 × 2 = 108 networks), each
checked three ways:

  * ``backprop.grads`` equals ``jax.grad`` to a relative error ≤ 1e-10;
  * ``jax.grad`` equals central finite differences over *every* parameter to ≤ 1e-6;
  * ``jax.test_util.check_grads`` (JVP and VJP against finite differences, random direction).

Below the grid, the closed forms of docs/backprop.md are asserted one at a time, so a
failure points at the line of the derivation that broke.
"""
from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from helpers import tree_allclose, tree_max_relative_error
from jaxnet import backprop, losses, mlp, train

ACTIVATION_NAMES = ("sigmoid", "relu", "tanh")
DEPTHS = (0, 1, 3)
LOSS_NAMES = (
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "nll",
    "mse",
    "kl_divergence",
    "binary_cross_entropy",
)
LAMBDAS = (0.0, 0.1)
# The grid holds the values the API takes (mlp.Activation, losses.Loss), looked up by name.
ACTIVATIONS = tuple(mlp.activation(name) for name in ACTIVATION_NAMES)
LOSSES = tuple(losses.get(name) for name in LOSS_NAMES)

N_IN, N_HIDDEN, N_OUT, BATCH = 5, 4, 3, 7
# Central-difference step. Its error is truncation ε²|f‴|/6 ≈ 1e-11 plus rounding
# ε_mach·|f|/ε ≈ 1e-11 here, both far below the 1e-6 × 1e-3 (bound × floor) the check allows.
FD_EPS = 1e-5
# relu is not differentiable at z = 0: every hidden pre-activation of a relu network is kept
# at least this far from 0, well beyond what an FD_EPS (or check_grads' 1e-4) step can move it.
KINK_MARGIN = 1e-2

GRID = list(itertools.product(ACTIVATIONS, DEPTHS, LOSSES, LAMBDAS))
GRID_IDS = [f"{h.name}-depth{d}-{loss.name}-l2={lam}" for h, d, loss, lam in GRID]

assert set(LOSS_NAMES) == set(losses.LOSSES), "the grid must cover every loss the library offers"
assert set(ACTIVATION_NAMES) == set(mlp.ACTIVATIONS), "the grid must cover every hidden activation"


@pytest.fixture(autouse=True)
def float64():
    """Every test in this file runs with x64 on (locally, not process-wide)."""
    with jax.enable_x64(True):
        yield


def _targets(loss: losses.Loss, key: jax.Array, outputs: int) -> jax.Array:
    """Natural targets for each loss: integer labels, 0/1 multi-labels, or soft
    distributions (strictly positive, so KL's ln t is defined)."""
    if loss.name in ("softmax_cross_entropy", "nll", "mse"):
        return jax.random.randint(key, (BATCH,), 0, outputs)
    if loss.name == "sigmoid_cross_entropy":
        return jax.random.bernoulli(key, 0.5, (BATCH, outputs)).astype(jnp.float64)
    if loss.name == "kl_divergence":
        return jax.random.dirichlet(key, jnp.ones(outputs, jnp.float64), (BATCH,))
    return jax.random.randint(key, (BATCH,), 0, 2)  # binary_cross_entropy


@functools.lru_cache(maxsize=None)
def problem(activation: mlp.Activation, depth: int, loss: losses.Loss):
    """(params, x, y) in float64 for one grid cell; for relu, resampled until every hidden
    pre-activation is at least KINK_MARGIN away from the kink. Cached: the three checks of a
    cell see the same network. Call with x64 enabled."""
    outputs = 1 if loss.binary else N_OUT
    sizes = [N_IN] + [N_HIDDEN] * depth + [outputs]
    for seed in range(100):
        key_p, key_x, key_y = jax.random.split(jax.random.key(seed), 3)
        # "uniform" draws non-zero biases too, so the bias path is exercised.
        params = mlp.init(key_p, sizes, scheme="uniform", dtype=jnp.float64)
        x = jax.random.normal(key_x, (BATCH, N_IN), jnp.float64)
        y = _targets(loss, key_y, outputs)
        zs, _ = mlp.forward(params, x, activation=activation)
        hidden_zs = zs[:-1]
        if activation.name != "relu" or all(bool(jnp.min(jnp.abs(z)) > KINK_MARGIN) for z in hidden_zs):
            return params, x, y
    raise RuntimeError("no relu network away from the kink in 100 seeds")


def total_loss(params, x, y, *, activation, loss, lam):
    """The objective both gradient sources differentiate, written with the public API."""
    logits = mlp.apply(params, x, activation=activation)
    return loss(logits, y) + losses.l2_penalty(params, lam)


def finite_difference_grads(f, params, eps: float = FD_EPS):
    """Central differences (f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε for every coordinate i, vmapped."""
    flat, unravel = ravel_pytree(params)
    steps = eps * jnp.eye(flat.size, dtype=flat.dtype)
    f_flat = jax.vmap(lambda theta: f(unravel(theta)))
    return unravel((f_flat(flat + steps) - f_flat(flat - steps)) / (2 * eps))


# --- the grid ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation, depth, loss, lam", GRID, ids=GRID_IDS)
def test_manual_grads_equal_autodiff(activation, depth, loss, lam):
    params, x, y = problem(activation, depth, loss)
    manual = backprop.grads(params, x, y, activation=activation, loss=loss, l2=lam)
    auto = jax.grad(total_loss)(params, x, y, activation=activation, loss=loss, lam=lam)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(manual))
    # Floor 1e-8: an entry that is ~0 because terms of size ~1 cancel carries ~1e-16 of
    # rounding either way; relative to 1e-8 that is still far below the 1e-10 bound.
    error = tree_max_relative_error(manual, auto, floor=1e-8)
    assert error <= 1e-10, f"max relative error {error:.2e}"


@pytest.mark.parametrize("activation, depth, loss, lam", GRID, ids=GRID_IDS)
def test_autodiff_equals_finite_differences(activation, depth, loss, lam):
    params, x, y = problem(activation, depth, loss)
    f = functools.partial(total_loss, x=x, y=y, activation=activation, loss=loss, lam=lam)
    auto = jax.grad(f)(params)
    numeric = finite_difference_grads(f, params)
    # Floor 1e-3: the FD error (~1e-11, see FD_EPS) must not count as relative error on
    # entries that are ~0 (dead relu units, saturated sigmoids).
    error = tree_max_relative_error(auto, numeric, floor=1e-3)
    assert error <= 1e-6, f"max relative error {error:.2e}"


@pytest.mark.parametrize("activation, depth, loss, lam", GRID, ids=GRID_IDS)
def test_jax_check_grads(activation, depth, loss, lam):
    params, x, y = problem(activation, depth, loss)
    f = functools.partial(total_loss, x=x, y=y, activation=activation, loss=loss, lam=lam)
    jax.test_util.check_grads(f, (params,), order=1, modes=("fwd", "rev"))


def test_finite_differences_catch_a_wrong_gradient():
    """The FD check has teeth: one coordinate off by 1e-4 (relative) fails the bound."""
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    f = functools.partial(total_loss, x=x, y=y, activation=mlp.TANH, loss=losses.SOFTMAX_CROSS_ENTROPY, lam=0.1)
    wrong = jax.grad(f)(params)
    largest = jnp.unravel_index(jnp.argmax(jnp.abs(wrong[0]["w"])), wrong[0]["w"].shape)
    wrong[0]["w"] = wrong[0]["w"].at[largest].multiply(1 + 1e-4)
    assert tree_max_relative_error(wrong, finite_difference_grads(f, params), floor=1e-3) > 1e-6


def test_relu_problems_stay_away_from_the_kink():
    params, x, _ = problem(mlp.RELU, 3, losses.MSE)
    zs, _ = mlp.forward(params, x, activation=mlp.RELU)
    assert all(float(jnp.min(jnp.abs(z))) > KINK_MARGIN for z in zs[:-1])


# --- closed forms, one line of docs/backprop.md each ------------------------------------


def _logits_and_labels(seed=0, batch=BATCH, classes=N_OUT):
    key_z, key_y = jax.random.split(jax.random.key(seed))
    logits = 2.0 * jax.random.normal(key_z, (batch, classes), jnp.float64)
    labels = jax.random.randint(key_y, (batch,), 0, classes)
    return logits, labels


def test_softmax_jacobian_is_diag_p_minus_p_pT():
    z = jnp.array([0.3, -1.2, 2.0, 0.1], jnp.float64)
    p = jax.nn.softmax(z)
    expected = jnp.diag(p) - jnp.outer(p, p)
    np.testing.assert_allclose(jax.jacobian(jax.nn.softmax)(z), expected, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_output_delta_is_p_minus_y():
    logits, labels = _logits_and_labels()
    onehot = jax.nn.one_hot(labels, N_OUT, dtype=jnp.float64)
    expected = jax.nn.softmax(logits) - onehot  # ŷ − y, per example
    autodiff = jax.grad(losses.softmax_cross_entropy)(logits, onehot) * BATCH
    manual = losses.SOFTMAX_CROSS_ENTROPY.delta(logits, onehot) * BATCH
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(manual, expected, rtol=1e-12, atol=1e-15)


def test_sigmoid_cross_entropy_output_delta_is_p_minus_y():
    logits, _ = _logits_and_labels()
    y = jax.random.bernoulli(jax.random.key(3), 0.5, logits.shape).astype(jnp.float64)
    expected = jax.nn.sigmoid(logits) - y  # ŷ − y with ŷ = σ(z), per example
    autodiff = jax.grad(losses.sigmoid_cross_entropy)(logits, y) * BATCH
    manual = losses.SIGMOID_CROSS_ENTROPY.delta(logits, y) * BATCH
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(manual, expected, rtol=1e-12, atol=1e-15)


def test_nll_on_log_softmax_output_delta_is_p_minus_onehot():
    logits, labels = _logits_and_labels()
    expected = (jax.nn.softmax(logits) - jax.nn.one_hot(labels, N_OUT, dtype=jnp.float64)) / BATCH
    autodiff = jax.grad(lambda z: losses.nll(jax.nn.log_softmax(z), labels))(logits)
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(losses.NLL.delta(logits, labels), expected, rtol=1e-12, atol=1e-15)


def test_mse_on_softmax_output_delta_is_jacobian_transpose_times_2_p_minus_y():
    logits, labels = _logits_and_labels()
    y = jax.nn.one_hot(labels, N_OUT, dtype=jnp.float64)
    p = jax.nn.softmax(logits)
    jacobians = jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)  # J per example
    expected = jnp.einsum("nij,ni->nj", jacobians, 2.0 * (p - y) / BATCH)  # Jᵀ·2(ŷ − y)/B
    autodiff = jax.grad(lambda z: losses.mse(jax.nn.softmax(z), y))(logits)
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(losses.MSE.delta(logits, y), expected, rtol=1e-12, atol=1e-15)


def test_kl_output_delta_is_p_times_target_mass_minus_t():
    """δ = (ŷ Σₖtₖ − t)/B; unnormalised targets make the Σₖtₖ factor visible."""
    logits, _ = _logits_and_labels()
    t = jax.random.uniform(jax.random.key(4), logits.shape, jnp.float64, 0.1, 2.0)
    expected = (jax.nn.softmax(logits) * t.sum(axis=1, keepdims=True) - t) / BATCH
    autodiff = jax.grad(lambda z: losses.kl_divergence(jax.nn.log_softmax(z), t))(logits)
    np.testing.assert_allclose(autodiff, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(losses.KL_DIVERGENCE.delta(logits, t), expected, rtol=1e-12, atol=1e-15)


def test_logistic_regression_gradient_is_minus_y_minus_p_times_x():
    """[n, 1] network = logistic regression: ∂L/∂w = −Σₙ (yₙ − ŷₙ) xₙ / B."""
    params = mlp.init(jax.random.key(0), [N_IN, 1], scheme="uniform", dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(1), (BATCH, N_IN), jnp.float64)
    y = jax.random.randint(jax.random.key(2), (BATCH,), 0, 2)
    p = jax.nn.sigmoid(x @ params[0]["w"][:, 0] + params[0]["b"][0])
    grads = backprop.grads(params, x, y, loss=losses.BINARY_CROSS_ENTROPY)
    np.testing.assert_allclose(grads[0]["w"][:, 0], -(y - p) @ x / BATCH, rtol=1e-12)
    np.testing.assert_allclose(grads[0]["b"][0], -jnp.sum(y - p) / BATCH, rtol=1e-12)


def test_l2_penalty_gradient_is_2_lambda_w():
    params = mlp.init(jax.random.key(0), [N_IN, N_HIDDEN, N_OUT], scheme="uniform", dtype=jnp.float64)
    lam = 0.1
    grads = jax.grad(losses.l2_penalty)(params, lam)
    for layer, grad in zip(params, grads):
        np.testing.assert_allclose(grad["w"], 2 * lam * layer["w"], rtol=1e-14)
        np.testing.assert_array_equal(grad["b"], jnp.zeros_like(layer["b"]))  # biases unpenalised


def test_manual_l2_term_is_2_lambda_w():
    """backprop.grads(λ) − backprop.grads(0) is exactly the penalty's gradient 2λW (0 for b)."""
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    lam = 0.1
    with_l2 = backprop.grads(params, x, y, activation=mlp.TANH, l2=lam)
    without = backprop.grads(params, x, y, activation=mlp.TANH, l2=0.0)
    for layer, g1, g0 in zip(params, with_l2, without):
        np.testing.assert_allclose(g1["w"] - g0["w"], 2 * lam * layer["w"], rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(g1["b"], g0["b"])


def test_sigmoid_derivative_is_sigma_times_one_minus_sigma():
    z = jnp.linspace(-6.0, 6.0, 25, dtype=jnp.float64)
    s = jax.nn.sigmoid(z)
    autodiff = jax.vmap(jax.grad(jax.nn.sigmoid))(z)
    np.testing.assert_allclose(autodiff, s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(mlp.activation("sigmoid").derivative(z, s), s * (1 - s), rtol=1e-12)


def test_tanh_derivative_is_one_minus_tanh_squared():
    z = jnp.linspace(-3.0, 3.0, 25, dtype=jnp.float64)
    a = jnp.tanh(z)
    np.testing.assert_allclose(mlp.activation("tanh").derivative(z, a), 1 - a * a, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(jnp.tanh))(z), 1 - a * a, rtol=1e-12)


def test_relu_derivative_is_step_function():
    z = jnp.array([-2.0, -1e-9, 1e-9, 0.5, 3.0], jnp.float64)
    expected = jnp.array([0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(mlp.activation("relu").derivative(z, jax.nn.relu(z)), expected)
    np.testing.assert_array_equal(jax.vmap(jax.grad(jax.nn.relu))(z), expected)


def test_hidden_delta_recursion_by_hand():
    """One hidden layer written out: δ² = (ŷ − y)/B, δ¹ = h′(z¹) ⊙ (δ² W²ᵀ), ∂W¹ = xᵀδ¹."""
    params, x, labels = problem(mlp.SIGMOID, 1, losses.SOFTMAX_CROSS_ENTROPY)
    (w1, b1), (w2, b2) = (params[0]["w"], params[0]["b"]), (params[1]["w"], params[1]["b"])
    z1 = x @ w1 + b1
    a1 = 1 / (1 + jnp.exp(-z1))
    p = jax.nn.softmax(a1 @ w2 + b2)
    delta2 = (p - jax.nn.one_hot(labels, N_OUT, dtype=jnp.float64)) / BATCH
    delta1 = a1 * (1 - a1) * (delta2 @ w2.T)
    expected = [{"w": x.T @ delta1, "b": delta1.sum(0)}, {"w": a1.T @ delta2, "b": delta2.sum(0)}]
    manual = backprop.grads(params, x, labels, activation=mlp.SIGMOID)
    assert tree_allclose(manual, expected, rtol=1e-12, atol=1e-15)


def test_loss_and_grads_returns_the_penalised_loss_and_logits():
    params, x, y = problem(mlp.TANH, 1, losses.MSE)
    value, logits, grads = backprop.loss_and_grads(params, x, y, activation=mlp.TANH, loss=losses.MSE, l2=0.1)
    np.testing.assert_allclose(value, total_loss(params, x, y, activation=mlp.TANH, loss=losses.MSE, lam=0.1),
                               rtol=1e-14)
    np.testing.assert_allclose(logits, mlp.apply(params, x, activation=mlp.TANH), rtol=1e-14)
    assert tree_allclose(grads, backprop.grads(params, x, y, activation=mlp.TANH, loss=losses.MSE, l2=0.1), rtol=0,
                         atol=0)


# --- bad input reaches the user as a clear ValueError, from both gradient sources -------

BAD_INPUTS = {
    # name: (names changed, x, y, message pattern); the activation and the loss are given by
    # name and looked up (mlp.activation, losses.get) inside the call under test.
    "unknown-activation": ({"activation": "gelu"}, None, None, r"unknown activation 'gelu'.*\['relu', 'sigmoid', 'tanh'\]"),
    "unknown-loss": ({"loss": "hinge"}, None, None, r"unknown loss 'hinge'.*'softmax_cross_entropy'"),
    "x-width": ({}, "wide", None, r"x has shape \(7, 6\) but the network expects \(batch, 5\)"),
    "y-rows": ({}, None, "short", r"y has 6 rows but x has 7"),
    "label-too-big": ({}, None, "big", r"labels must lie in \[0, 3\).*from 0 to 3"),
    "label-negative": ({}, None, "negative", r"labels must lie in \[0, 3\).*from -1"),
    "target-width": ({}, None, "wide", r"float targets must have shape \(7, 3\).*got \(7, 4\)"),
}


def _bad_call_args(case):
    changes, x_kind, y_kind, _ = BAD_INPUTS[case]
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    names = {"activation": "tanh", "loss": "softmax_cross_entropy", **changes}
    if x_kind == "wide":
        x = jnp.ones((BATCH, N_IN + 1), jnp.float64)
    y = {
        None: y,
        "short": y[:-1],
        "big": y.at[0].set(0).at[1].set(N_OUT),
        "negative": y.at[0].set(-1),
        "wide": jnp.full((BATCH, N_OUT + 1), 0.25, jnp.float64),
    }[y_kind]
    return params, x, y, names


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_manual_grads_reject_bad_input(case):
    params, x, y, names = _bad_call_args(case)
    with pytest.raises(ValueError, match=BAD_INPUTS[case][3]):
        backprop.grads(params, x, y, activation=mlp.activation(names["activation"]), loss=losses.get(names["loss"]))


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_autodiff_grads_reject_bad_input(case):
    params, x, y, names = _bad_call_args(case)
    with pytest.raises(ValueError, match=BAD_INPUTS[case][3]):
        model = mlp.model([N_IN, N_HIDDEN, N_OUT], activation=mlp.activation(names["activation"]))
        train.make_loss_and_grads(model, loss=losses.get(names["loss"]))(params, x, y, 0.0)


# A name where a value belongs is a TypeError (the string dispatch is gone), from both sources.
WRONG_TYPES = {
    "activation-name": ({"activation": "tanh"}, r"activation must be an mlp\.Activation such as mlp\.RELU"),
    "loss-name": ({"loss": "softmax_cross_entropy"}, r"loss must be a losses\.Loss such as losses\.SOFTMAX_CROSS_ENTROPY"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_manual_grads_refuse_names_for_values(case):
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    kwargs = {"activation": mlp.TANH, "loss": losses.SOFTMAX_CROSS_ENTROPY, **WRONG_TYPES[case][0]}
    with pytest.raises(TypeError, match=WRONG_TYPES[case][1]):
        backprop.grads(params, x, y, **kwargs)


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_autodiff_grads_refuse_names_for_values(case):
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    kwargs = {"activation": mlp.TANH, "loss": losses.SOFTMAX_CROSS_ENTROPY, **WRONG_TYPES[case][0]}
    with pytest.raises(TypeError, match=WRONG_TYPES[case][1]):
        model = mlp.model([N_IN, N_HIDDEN, N_OUT], activation=kwargs["activation"])
        train.make_loss_and_grads(model, loss=kwargs["loss"])(params, x, y, 0.0)


def test_output_delta_is_the_loss_values_delta_now():
    """backprop.output_delta(name, …) is gone: each losses.Loss carries its δᴴ as ``delta``."""
    assert not hasattr(backprop, "output_delta")
    assert all(callable(loss.delta) for loss in losses.LOSSES.values())
