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


# Nielsen's network2.py: default_weight_initializer draws weights N(0, 1/n_in), large_weight_initializer N(0, 1);
# both draw the biases N(0, 1).
NIELSEN_WEIGHT_STD = {"nielsen_default": 1 / math.sqrt(FAN_IN), "nielsen_large": 1.0}


@pytest.mark.parametrize("scheme", sorted(NIELSEN_WEIGHT_STD))
def test_nielsen_init_weights_and_biases_are_the_books(scheme):
    # one wide layer for the weights; 2·10⁵ biases from a layer with one input and 2·10⁵ outputs
    (layer,) = mlp.init(jax.random.key(3), [FAN_IN, FAN_OUT], scheme=scheme)
    w = np.asarray(layer["w"], np.float64)
    std = NIELSEN_WEIGHT_STD[scheme]
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=STATS_TOL)
    (wide,) = mlp.init(jax.random.key(4), [1, FAN_IN * FAN_OUT], scheme=scheme)
    b = np.asarray(wide["b"], np.float64)
    assert abs(b.mean()) < 5 / math.sqrt(b.size)
    assert b.std() == pytest.approx(1.0, rel=STATS_TOL)  # N(0, 1), whatever the fan-in
    assert abs(np.mean(b ** 4) / b.var() ** 2 - 3.0) < 0.1  # normal, not uniform (kurtosis 3, not 1.8)


def test_nielsen_schemes_share_their_draws():
    """The same key gives the same normal draws: the default scheme's weights are lecun_normal's and the
    large scheme's are those times √n_in, with the same N(0, 1) biases (so a comparison of the two
    initialisations at one seed differs in scale only)."""
    key = jax.random.key(5)
    default, large, lecun = (mlp.init(key, [16, 8, 3], scheme=s) for s in ("nielsen_default", "nielsen_large",
                                                                            "lecun_normal"))
    for d, g, c, fan_in in zip(default, large, lecun, (16, 8)):
        np.testing.assert_allclose(d["w"], c["w"], rtol=1e-6)
        np.testing.assert_allclose(g["w"], d["w"] * math.sqrt(fan_in), rtol=1e-5)
        np.testing.assert_array_equal(g["b"], d["b"])
        assert np.all(np.asarray(d["b"]) != 0)


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
    zs, activations = mlp.forward(params, x, activation=mlp.TANH)
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
    zs, activations = mlp.forward(params, jnp.asarray(x), activation=mlp.activation(hidden))
    np.testing.assert_allclose(zs[0], z1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activations[1], h(z1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(zs[1], h(z1) @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_apply_returns_the_last_pre_activation():
    params = mlp.init(jax.random.key(0), [6, 5, 3])
    x = jax.random.normal(jax.random.key(1), (4, 6))
    zs, _ = mlp.forward(params, x, activation=mlp.SIGMOID)
    np.testing.assert_array_equal(mlp.apply(params, x, activation=mlp.SIGMOID), zs[-1])


# --- activations and models as values ------------------------------------------------------


def test_activations_maps_each_name_to_its_value():
    assert mlp.ACTIVATIONS == {"relu": mlp.RELU, "sigmoid": mlp.SIGMOID, "tanh": mlp.TANH}
    for name, value in mlp.ACTIVATIONS.items():
        assert isinstance(value, mlp.Activation) and value.name == name
        assert mlp.activation(name) is value


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_activation_derivative_equals_autodiff(name):
    """h′(z) given z and a = h(z), against jax.grad of h, away from relu's kink."""
    value = mlp.activation(name)
    z = jnp.concatenate([jnp.linspace(-4.0, -0.05, 20), jnp.linspace(0.05, 4.0, 20)])
    np.testing.assert_allclose(value.derivative(z, value.fn(z)), jax.vmap(jax.grad(value.fn))(z), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_model_is_init_and_apply_with_these_settings(name):
    model = mlp.model([6, 5, 3], activation=mlp.activation(name), scheme="uniform")
    assert isinstance(model, mlp.Model) and model.activation is mlp.activation(name)
    params = model.init(jax.random.key(4))
    reference = mlp.init(jax.random.key(4), [6, 5, 3], scheme="uniform")
    assert jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), params, reference) == jax.tree.map(
        lambda _: True, reference)
    x = jax.random.normal(jax.random.key(5), (4, 6))
    np.testing.assert_array_equal(model.apply(params, x), mlp.apply(params, x, activation=mlp.activation(name)))


def test_model_respects_the_dtype():
    with jax.enable_x64(True):
        params = mlp.model([3, 4, 2], dtype=jnp.float64).init(jax.random.key(0))
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))


def test_equal_models_share_their_apply():
    """The engine caches compiled programs by the model's apply: equal arguments must give the
    same function (and so the same programs), whatever the sizes, scheme or dtype."""
    a = mlp.model([6, 5, 3], activation=mlp.TANH)
    b = mlp.model((6, 5, 3), activation=mlp.activation("tanh"))
    assert a.apply is b.apply and a.activation is b.activation
    assert mlp.model([6, 9, 9, 3], activation=mlp.TANH, scheme="he_normal").apply is a.apply
    assert mlp.model([6, 5, 3], activation=mlp.RELU).apply is not a.apply  # another activation, another program
    assert mlp.model([6, 5, 3]).apply is mlp.model([6, 5, 3], activation=mlp.RELU).apply  # RELU by default


def test_a_custom_activation_is_a_value_like_the_built_in_ones():
    """Activation is a public value: the forward pass, the model and its shared apply take any."""
    softplus = mlp.Activation("softplus", jax.nn.softplus, lambda z, a: jax.nn.sigmoid(z))
    model = mlp.model([6, 5, 3], activation=softplus)
    assert model.activation is softplus and mlp.model([6, 4, 3], activation=softplus).apply is model.apply
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 6))
    w1, b1, w2, b2 = params[0]["w"], params[0]["b"], params[1]["w"], params[1]["b"]
    np.testing.assert_allclose(model.apply(params, x), jax.nn.softplus(x @ w1 + b1) @ w2 + b2, rtol=1e-5, atol=1e-6)


def test_model_checks_its_arguments_when_made():
    with pytest.raises(ValueError, match=r"layer_sizes needs at least an input and an output size"):
        mlp.model([784])
    with pytest.raises(ValueError, match=r"unknown init scheme 'xavier'"):
        mlp.model([4, 2], scheme="xavier")


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
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; choose one of \['relu', 'sigmoid', 'tanh'\]"):
        mlp.activation("gelu")


@pytest.mark.parametrize("value", ["relu", "gelu", None, jax.nn.relu], ids=["known-name", "unknown-name", "none",
                                                                            "plain-function"])
def test_forward_and_apply_refuse_what_is_not_an_activation_value(value):
    """The string dispatch is gone: ``activation="relu"`` is a TypeError naming the value to pass."""
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    message = r"activation must be an mlp\.Activation such as mlp\.RELU \(or mlp\.activation\(name\)\)"
    with pytest.raises(TypeError, match=message):
        mlp.forward(params, jnp.ones((2, 4)), activation=value)
    with pytest.raises(TypeError, match=message):
        mlp.apply(params, jnp.ones((2, 4)), activation=value)
    with pytest.raises(TypeError, match=message):
        mlp.model([4, 3, 2], activation=value)


def test_the_string_activation_helpers_are_gone():
    """activation_derivative(name, z, a) is mlp.activation(name).derivative(z, a) now."""
    assert not hasattr(mlp, "activation_derivative")


def test_the_hidden_keyword_is_gone():
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    with pytest.raises(TypeError, match="hidden"):
        mlp.forward(params, jnp.ones((2, 4)), hidden="relu")
    with pytest.raises(TypeError, match="hidden"):
        mlp.model([4, 3, 2], hidden="relu")


@pytest.mark.parametrize("shape", [(2, 5), (8,), (2, 2, 2)], ids=["wrong-width", "1d", "unflattened-3d"])
def test_forward_rejects_x_that_does_not_fit(shape):
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    with pytest.raises(ValueError, match=r"x has shape " + re.escape(str(shape)) + r" but the network expects \(batch, 4\); flatten"):
        mlp.forward(params, jnp.ones(shape))
