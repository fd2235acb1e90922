"""Hand-derived backpropagation for the MLP in :mod:`jaxnet.mlp` (derivations:
docs/backprop.md). Every line quotes the equation it implements; the test suite proves the
result equal to ``jax.grad`` and to finite differences in float64."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnet import losses, mlp

Array = jax.Array


def grads(
    params: mlp.Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> mlp.Params:
    """∂/∂params of ``loss(apply(params, x), y) + l2_penalty(params, l2)``, by hand.

    Args and Returns: as :func:`loss_and_grads`, which also gives the loss and logits.
    """
    return loss_and_grads(params, x, y, activation=activation, loss=loss, l2=l2)[2]


class Backward(NamedTuple):
    """What one forward pass and the δ recursion give (see :func:`deltas`)."""

    loss: Array  # the data term of the loss (no penalty), a scalar
    logits: Array  # zᴴ, (batch, outputs)
    inputs: list[Array]  # inputs[l] = aˡ⁻¹, the input of layer l, (batch, nₗ₋₁); inputs[0] = x
    deltas: list[Array]  # deltas[l] = δˡ = ∂L/∂zˡ, (batch, nₗ), 1/B included


def deltas(
    params: mlp.Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
) -> Backward:
    """Every layer's input aˡ⁻¹ and delta δˡ = ∂L/∂zˡ, from one forward pass.

    The batch gradient is ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ (+ 2λWˡ) and ∂L/∂bˡ = Σₙ δˡₙ; row n of the
    outer products gives example n's share, so per-example gradients need nothing more.

    Args:
      params: from :func:`jaxnet.mlp.init`, any depth.
      x: inputs, shape (batch, inputs).
      y: integer labels (batch,) or float targets (batch, outputs).
      activation: the hidden activation (an :class:`jaxnet.mlp.Activation`).
      loss: a :class:`jaxnet.losses.Loss`; its ``delta`` gives δᴴ.
    Returns:
      A :class:`Backward` ``(loss, logits, inputs, deltas)``; ``inputs`` and ``deltas``
      have one entry per layer, ``deltas[l]`` of shape (batch, nₗ) with the 1/B of the
      batch mean inside.
    """
    zs, activations = mlp.forward(params, x, activation=activation)
    logits = zs[-1]
    losses.check_targets(loss, logits.shape, y)
    targets = loss.targets(y, logits.shape[-1], logits.dtype)
    loss_value = loss.fn(logits, targets)
    delta = loss.delta(logits, targets)  # δᴴ = ∂L/∂zᴴ, derived by hand beside the loss
    deltas_reversed = [delta]
    for index in reversed(range(1, len(params))):
        h_prime = activation.derivative(zs[index - 1], activations[index])
        delta = h_prime * (delta @ params[index]["w"].T)  # δˡ⁻¹ = h′(zˡ⁻¹) ⊙ (δˡ Wˡᵀ)
        deltas_reversed.append(delta)
    return Backward(loss_value, logits, activations, deltas_reversed[::-1])


def loss_and_grads(
    params: mlp.Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> tuple[Array, Array, mlp.Params]:
    """The loss (penalty included), the logits and the hand-derived gradients, from one
    forward pass.

    Args:
      params: from :func:`jaxnet.mlp.init`, any depth.
      x: inputs, shape (batch, inputs).
      y: integer labels (batch,) or float targets (batch, outputs); 0/1 labels for
        "binary_cross_entropy".
      activation: the hidden activation (an :class:`jaxnet.mlp.Activation`).
      loss: a :class:`jaxnet.losses.Loss`; its ``delta`` gives δᴴ.
      l2: λ of the penalty λ Σ‖Wˡ‖².
    Returns:
      ``(loss_value, logits, grads)``; ``grads`` is a pytree shaped like ``params``.
    """
    data_loss, logits, inputs, layer_deltas = deltas(params, x, y, activation=activation, loss=loss)
    loss_value = data_loss + losses.l2_penalty(params, l2)
    grads = [
        {
            "w": a.T @ delta + 2.0 * l2 * layer["w"],  # ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ + 2λWˡ
            "b": jnp.sum(delta, axis=0),  # ∂L/∂bˡ = Σₙ δˡₙ
        }
        for layer, a, delta in zip(params, inputs, layer_deltas)
    ]
    return loss_value, logits, grads
