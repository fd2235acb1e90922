"""A multilayer perceptron as pure functions over a plain pytree of parameters.

Parameters are a list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dict per
layer. ``layer_sizes=[784, 10]`` (no hidden layer) is logistic / softmax regression.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Params = list[dict[str, jax.Array]]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
}
SCHEMES = ("lecun_normal", "glorot_normal", "he_normal", "uniform")


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the hidden activation called ``name``; ValueError for an unknown name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def activation_derivative(name: str, z: jax.Array, a: jax.Array) -> jax.Array:
    """h′(z) for the hidden activation ``name``, given z and a = h(z).

    Args:
      name: "relu", "sigmoid" or "tanh".
      z: pre-activations.
      a: the activations h(z) (reused so nothing is computed twice).
    Returns:
      h′(z), elementwise.
    """
    activation(name)
    if name == "sigmoid":
        return a * (1.0 - a)  # σ′ = σ(1 − σ)
    if name == "tanh":
        return 1.0 - a * a  # tanh′ = 1 − tanh²
    return (z > 0).astype(z.dtype)  # relu′ = 1[z > 0]


def _check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, e.g. [784, 10]; got {sizes}"
        )
    if any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"layer_sizes must be positive integers; got {sizes}")
    return [int(s) for s in sizes]


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
        "he_normal" (std √(2/fan_in)), or "uniform" (U(−1/√fan_in, 1/√fan_in), the classic
        coursework and PyTorch ``nn.Linear`` default). Biases start at zero, except for
        "uniform", which draws them from the same range as PyTorch does.
      dtype: parameter dtype.
    Returns:
      A list of ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dicts.
    """
    sizes = _check_layer_sizes(layer_sizes)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {list(SCHEMES)}")
    params = []
    for key_l, fan_in, fan_out in zip(jax.random.split(key, len(sizes) - 1), sizes[:-1], sizes[1:]):
        key_w, key_b = jax.random.split(key_l)
        if scheme == "uniform":
            bound = 1.0 / math.sqrt(fan_in)
            w = jax.random.uniform(key_w, (fan_in, fan_out), dtype, -bound, bound)
            b = jax.random.uniform(key_b, (fan_out,), dtype, -bound, bound)
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


def check_inputs(params: Params, x: jax.Array) -> None:
    """ValueError unless ``x`` is a (batch, inputs) array that fits ``params``."""
    fan_in = params[0]["w"].shape[0]
    if x.ndim != 2 or x.shape[1] != fan_in:
        raise ValueError(
            f"x has shape {tuple(x.shape)} but the network expects (batch, {fan_in}); "
            "flatten images first (jaxnet.data.flatten) or build the network for this input size"
        )


def forward(params: Params, x: jax.Array, *, hidden: str = "relu") -> tuple[list[jax.Array], list[jax.Array]]:
    """Every layer's pre-activation and activation.

    Args:
      params: from :func:`init`.
      x: inputs, shape (batch, inputs).
      hidden: the hidden activation.
    Returns:
      ``(zs, activations)``: ``zs[l]`` is layer l's pre-activation zˡ = aˡ⁻¹Wˡ + bˡ;
      ``activations[0]`` is x and ``activations[l + 1]`` = h(zˡ) for hidden layers. The
      last entry of ``zs`` is the logits (the output layer has no activation here: the
      loss applies softmax / sigmoid).
    """
    h = activation(hidden)
    check_inputs(params, x)
    zs, activations = [], [x]
    for index, layer in enumerate(params):
        z = activations[-1] @ layer["w"] + layer["b"]  # zˡ = aˡ⁻¹Wˡ + bˡ
        zs.append(z)
        if index < len(params) - 1:
            activations.append(h(z))  # aˡ = h(zˡ)
    return zs, activations


def apply(params: Params, x: jax.Array, *, hidden: str = "relu") -> jax.Array:
    """The output pre-activations (logits), shape (batch, outputs)."""
    zs, _ = forward(params, x, hidden=hidden)
    return zs[-1]


def num_params(params: Params) -> int:
    """The number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree.leaves(params))
