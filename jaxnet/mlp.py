"""A multilayer perceptron as pure functions over a plain pytree of parameters.

Parameters are a list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dict per
layer. ``layer_sizes=[784, 10]`` (no hidden layer) is logistic / softmax regression.
"""
from __future__ import annotations

import math
import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

Params = list[dict[str, jax.Array]]


class Activation(NamedTuple):
    """A hidden activation h and its derivative, side by side.

    ``derivative(z, a)`` is h′(z) given z and a = h(z) (reused so nothing is computed twice).
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    derivative: Callable[[jax.Array, jax.Array], jax.Array]


RELU = Activation("relu", jax.nn.relu, lambda z, a: (z > 0).astype(z.dtype))  # relu′ = 1[z > 0]
SIGMOID = Activation("sigmoid", jax.nn.sigmoid, lambda z, a: a * (1.0 - a))  # σ′ = σ(1 − σ)
TANH = Activation("tanh", jnp.tanh, lambda z, a: 1.0 - a * a)  # tanh′ = 1 − tanh²
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (RELU, SIGMOID, TANH)}
SCHEMES = ("lecun_normal", "glorot_normal", "he_normal", "uniform", "nielsen_default", "nielsen_large")


def activation(name: str) -> Activation:
    """The activation called ``name`` ("relu", "sigmoid", "tanh"); ValueError otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _check_activation(value: Any) -> Activation:
    if not isinstance(value, Activation):
        raise TypeError(f"activation must be an mlp.Activation such as mlp.RELU (or mlp.activation(name)), "
                        f"got {value!r}")
    return value


class Model(NamedTuple):
    """A network as a value: what the engine, the evaluation and the diagnostics take.

    ``init(key) → params`` and ``apply(params, x) → logits``; ``activation`` is the MLP's
    hidden activation, which the hand-derived backprop needs (None for other networks,
    e.g. :func:`jaxnet.cnn.model`, whose gradients come from autodiff).
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    activation: Activation | None = None


def _check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, e.g. [784, 10]; got {sizes}"
        )
    if any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"layer_sizes must be positive integers; got {sizes}")
    return [int(s) for s in sizes]


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {list(SCHEMES)}")


def init(
    key: jax.Array,
    layer_sizes: Sequence[int],
    *,
    scheme: str = "lecun_normal",
    dtype: jnp.dtype = jnp.float32,
) -> Params:
    """Initial parameters for an MLP.

    Args:
      key: a ``jax.random`` key.
      layer_sizes: ``[inputs, hidden..., outputs]``; at least two entries.
      scheme: "lecun_normal" (std 1/√fan_in), "glorot_normal" (std √(2/(fan_in+fan_out))),
        "he_normal" (std √(2/fan_in)), "uniform" (U(−1/√fan_in, 1/√fan_in), the classic
        coursework and PyTorch ``nn.Linear`` default), or the two initialisations of Nielsen's
        *Neural Networks and Deep Learning* (``network2.py``): "nielsen_default" (its
        ``default_weight_initializer``: weights N(0, 1/fan_in), biases N(0, 1)) and
        "nielsen_large" (its ``large_weight_initializer``: weights and biases N(0, 1)).
        Biases start at zero, except for "uniform", which draws them from the same range as
        PyTorch does, and the two Nielsen schemes, which draw them from N(0, 1).
      dtype: parameter dtype.
    Returns:
      A list of ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dicts.
    """
    sizes = _check_layer_sizes(layer_sizes)
    _check_scheme(scheme)
    params = []
    for key_l, fan_in, fan_out in zip(jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:]):
        key_w, key_b = jax.random.split(key_l)
        if scheme == "uniform":
            bound = 1.0 / math.sqrt(fan_in)
            w = jax.random.uniform(key_w, (fan_in, fan_out), dtype, -bound, bound)
            b = jax.random.uniform(key_b, (fan_out,), dtype, -bound, bound)
        elif scheme in ("nielsen_default", "nielsen_large"):
            std = math.sqrt(1.0 / fan_in) if scheme == "nielsen_default" else 1.0
            w = std * jax.random.normal(key_w, (fan_in, fan_out), dtype)
            b = jax.random.normal(key_b, (fan_out,), dtype)
        else:
            std = {
                "lecun_normal": math.sqrt(1.0 / fan_in),
                "glorot_normal": math.sqrt(2.0 / (fan_in + fan_out)),
                "he_normal": math.sqrt(2.0 / fan_in),
            }[scheme]
            w = std * jax.random.normal(key_w, (fan_in, fan_out), dtype)
            b = jnp.zeros((fan_out,), dtype)
        params.append({"w": w, "b": b})
    return params


def layer_sizes(params: Params) -> list[int]:
    """The ``[inputs, hidden..., outputs]`` sizes of ``params``."""
    return [params[0]["w"].shape[0]] + [layer["w"].shape[1] for layer in params]


def check_params(params: Params) -> None:
    """ValueError unless ``params`` is a non-empty list of ``{"w": (m, n), "b": (n,)}`` layers
    whose sizes chain (each layer's inputs are the previous layer's outputs)."""
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError(f"params must be a list of layers {{'w', 'b'}} as mlp.init makes them, got "
                         f"{type(params).__name__}")
    for index, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) != {"w", "b"}:
            keys = sorted(layer) if isinstance(layer, dict) else type(layer).__name__
            raise ValueError(f"layer {index} of params must be a dict with keys 'w' and 'b', got {keys}")
        w, b = layer["w"], layer["b"]
        if jnp.ndim(w) != 2 or jnp.shape(b) != (jnp.shape(w)[-1],):
            raise ValueError(f"layer {index}: w must be (inputs, outputs) and b (outputs,), got w "
                             f"{tuple(jnp.shape(w))} and b {tuple(jnp.shape(b))}")
        if index and jnp.shape(w)[0] != jnp.shape(params[index - 1]["w"])[1]:
            raise ValueError(f"layer {index} takes {jnp.shape(w)[0]} inputs but layer {index - 1} gives "
                             f"{jnp.shape(params[index - 1]['w'])[1]} outputs; the layers must chain")


def check_inputs(params: Params, x: jax.Array) -> None:
    """ValueError unless ``params`` are MLP layers and ``x`` a (batch, inputs) array that fits them."""
    check_params(params)
    fan_in = params[0]["w"].shape[0]
    if x.ndim != 2 or x.shape[1] != fan_in:
        raise ValueError(
            f"x has shape {tuple(x.shape)} but the network expects (batch, {fan_in}); "
            "flatten images first (jaxnet.data.flatten) or build the network for this input size"
        )


def forward(params: Params, x: jax.Array, *, activation: Activation = RELU) -> tuple[list[jax.Array], list[jax.Array]]:
    """Every layer's pre-activation and activation.

    Args:
      params: from :func:`init`.
      x: inputs, shape (batch, inputs).
      activation: the hidden activation h.
    Returns:
      ``(zs, activations)``: ``zs[l]`` is layer l's pre-activation zˡ = aˡ⁻¹Wˡ + bˡ;
      ``activations[0]`` is x and ``activations[l + 1]`` = h(zˡ) for hidden layers. The
      last entry of ``zs`` is the logits (the output layer has no activation here: the
      loss applies softmax / sigmoid).
    """
    h = _check_activation(activation).fn
    check_inputs(params, x)
    zs, activations = [], [x]
    for index, layer in enumerate(params):
        z = activations[-1] @ layer["w"] + layer["b"]  # zˡ = aˡ⁻¹Wˡ + bˡ
        zs.append(z)
        if index < len(params) - 1:
            activations.append(h(z))  # aˡ = h(zˡ)
    return zs, activations


def apply(params: Params, x: jax.Array, *, activation: Activation = RELU) -> jax.Array:
    """The output pre-activations (logits), shape (batch, outputs)."""
    zs, _ = forward(params, x, activation=activation)
    return zs[-1]


@functools.lru_cache(maxsize=None)
def _apply_with(activation: Activation) -> Callable[[Params, jax.Array], jax.Array]:
    """One apply function per activation, built once: the engine's compiled programs are
    cached by the model's apply, so two equal models must hand it the same function."""
    return functools.partial(apply, activation=activation)


def model(
    layer_sizes: Sequence[int],
    *,
    activation: Activation = RELU,
    scheme: str = "lecun_normal",
    dtype: jnp.dtype = jnp.float32,
) -> Model:
    """The MLP as a :class:`Model`: ``init`` is :func:`init` with these sizes and scheme,
    ``apply`` is :func:`apply` with this activation.

    Args:
      layer_sizes: ``[inputs, hidden..., outputs]``.
      activation: the hidden activation (:data:`RELU`, :data:`SIGMOID`, :data:`TANH`).
      scheme, dtype: as :func:`init`.
    """
    sizes = _check_layer_sizes(layer_sizes)
    _check_scheme(scheme)
    _check_activation(activation)
    return Model(functools.partial(init, layer_sizes=tuple(sizes), scheme=scheme, dtype=dtype), _apply_with(activation),
                 activation)


def num_params(params: Params) -> int:
    """The number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree.leaves(params))
