"""jaxnet.mlp: initialisation schemes, the forward pass, and its input checks."""
from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import mlp

# One wide layer gives 2·10⁵ samples per weight matrix: the sample std is then within
# ~0.2% of the true one (relative s.e. 1/√(2N)), so a 2% tolerance never flakes yet
# catches any wrong formula (the schemes differ by factors of √2 or more).
FAN_IN, FAN_OUT = 400, 500
STATS_TOL = 0.02

EXPECTED_STD = {
    "lecun_normal": math.sqrt(1 / FAN_IN),
    "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_normal": math.sqrt(2 / FAN_IN),
}


def test_init_shapes_follow_layer_sizes():
    params = mlp.init(jax.random.key(0), [6, 5, 4, 3])
    assert [(layer["w"].shape, layer["b"].shape) for layer in params] == [
        ((6, 5), (5,)), ((5, 4), (4,)), ((4, 3), (3,))
    ]
    assert mlp.layer_sizes(params) == [6, 5, 4, 3]


def test_zero_hidden_layers_is_softmax_regression():
    params = mlp.init(jax.random.key(0), [784, 10])
    assert len(params) == 1
    assert params[0]["w"].shape == (784, 10) and params[0]["b"].shape == (10,)
    assert mlp.num_params(params) == 784 * 10 + 10
    x = jnp.ones((2, 784))
    zs, activations = mlp.forward(params, x)
    assert len(zs) == 1 and len(activations) == 1  # logits only; activations[0] is x
    np.testing.assert_allclose(zs[0], x @ params[0]["w"] + params[0]["b"], rtol=1e-6)


def test_init_default_dtype_is_float32():
    params = mlp.init(jax.random.key(0), [3, 2])
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("scheme", mlp.SCHEMES)
def test_init_respects_float64_dtype(scheme):
    with jax.enable_x64(True):
        params = mlp.init(jax.random.key(0), [3, 4, 2], scheme=scheme, dtype=jnp.float64)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("scheme", sorted(EXPECTED_STD))
def test_normal_init_std(scheme):
    (layer,) = mlp.init(jax.random.key(1), [FAN_IN, FAN_OUT], scheme=scheme)
    w = np.asarray(layer["w"], np.float64)
    assert abs(w.mean()) < 5 * EXPECTED_STD[scheme] / math.sqrt(w.size)
    assert w.std() == pytest.approx(EXPECTED_STD[scheme], rel=STATS_TOL)
    np.testing.assert_array_equal(layer["b"], 0.0)


def test_uniform_init_bounds_and_std():
    (layer,) = mlp.init(jax.random.key(2), [FAN_IN, FAN_OUT], scheme="uniform")
    bound = 1 / math.sqrt(FAN_IN)
    w, b = np.asarray(layer["w"], np.float64), np.asarray(layer["b"], np.float64)
    limit = bound * (1 + 1e-6)  # float32 rounding of the bound
    assert np.all(np.abs(w) <= limit) and np.all(np.abs(b) <= limit)
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound  # fills the whole range
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=STATS_TOL)  # std of U(−a, a) is a/√3
    assert np.any(b != 0)  # PyTorch-style: biases are drawn too


def test_init_layers_get_independent_keys():
    params = mlp.init(jax.random.key(0), [4, 4, 4])
    assert not np.allclose(params[0]["w"], params[1]["w"])


def test_init_is_deterministic_in_the_key():
    a = mlp.init(jax.random.key(7), [5, 3])
    b = mlp.init(jax.random.key(7), [5, 3])
    np.testing.assert_array_equal(a[0]["w"], b[0]["w"])


def test_forward_shapes():
    params = mlp.init(jax.random.key(0), [6, 5, 4, 3])
    x = jnp.ones((7, 6))
    zs, activations = mlp.forward(params, x, hidden="tanh")
    assert [z.shape for z in zs] == [(7, 5), (7, 4), (7, 3)]
    assert [a.shape for a in activations] == [(7, 6), (7, 5), (7, 4)]
    assert activations[0] is x


@pytest.mark.parametrize("hidden", sorted(mlp.ACTIVATIONS))
def test_forward_matches_numpy(hidden):
    params = mlp.init(jax.random.key(0), [6, 5, 3], scheme="uniform")
    x = np.asarray(jax.random.normal(jax.random.key(1), (4, 6)))
    h = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[hidden]
    w1, b1, w2, b2 = (np.asarray(v, np.float64) for v in (params[0]["w"], params[0]["b"], params[1]["w"], params[1]["b"]))
    z1 = x @ w1 + b1
    zs, activations = mlp.forward(params, jnp.asarray(x), hidden=hidden)
    np.testing.assert_allclose(zs[0], z1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activations[1], h(z1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(zs[1], h(z1) @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_apply_returns_the_last_pre_activation():
    params = mlp.init(jax.random.key(0), [6, 5, 3])
    x = jax.random.normal(jax.random.key(1), (4, 6))
    zs, _ = mlp.forward(params, x, hidden="sigmoid")
    np.testing.assert_array_equal(mlp.apply(params, x, hidden="sigmoid"), zs[-1])


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [784]], ids=["empty", "one-element"])
def test_init_rejects_too_few_layer_sizes(sizes):
    with pytest.raises(ValueError, match=r"layer_sizes needs at least an input and an output size, e\.g\. \[784, 10\]"):
        mlp.init(jax.random.key(0), sizes)


@pytest.mark.parametrize("sizes", [[784, 0, 10], [784, -3], [784, 2.5]], ids=["zero", "negative", "fraction"])
def test_init_rejects_non_positive_integer_sizes(sizes):
    with pytest.raises(ValueError, match=r"layer_sizes must be positive integers"):
        mlp.init(jax.random.key(0), sizes)


def test_init_rejects_unknown_scheme():
    with pytest.raises(ValueError, match=r"unknown init scheme 'xavier'.*'lecun_normal', 'glorot_normal', 'he_normal', 'uniform'"):
        mlp.init(jax.random.key(0), [4, 2], scheme="xavier")


def test_unknown_activation_names_the_choices():
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    with pytest.raises(ValueError, match=r"unknown hidden activation 'gelu'; choose one of \['relu', 'sigmoid', 'tanh'\]"):
        mlp.forward(params, jnp.ones((2, 4)), hidden="gelu")


@pytest.mark.parametrize("shape", [(2, 5), (8,), (2, 2, 2)], ids=["wrong-width", "1d", "unflattened-3d"])
def test_forward_rejects_x_that_does_not_fit(shape):
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    with pytest.raises(ValueError, match=r"x has shape " + re.escape(str(shape)) + r" but the network expects \(batch, 4\); flatten"):
        mlp.forward(params, jnp.ones(shape))
