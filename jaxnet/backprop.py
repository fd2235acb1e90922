"""Hand-derived backpropagation for the MLP in :mod:`jaxnet.mlp` (derivations:
docs/backprop.md). Every line quotes the equation it implements; the test suite proves the
result equal to ``jax.grad`` and to finite differences in float64."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnet import losses, mlp

Array = jax.Array


def output_delta(loss: str, logits: Array, targets: Array) -> Array:
    """δᴴ = ∂L/∂zᴴ, the gradient of the batch-mean loss with respect to the logits.

    Args:
      loss: a name from :data:`jaxnet.losses.LOSSES`.
      logits: zᴴ, shape (batch, outputs).
      targets: as produced by :func:`jaxnet.losses.targets`.
    Returns:
      δᴴ, shape (batch, outputs), already divided by the batch size B.
    """
    batch = logits.shape[0]
    if loss in ("softmax_cross_entropy", "kl_divergence", "nll", "mse"):
        p = jax.nn.softmax(logits)  # ŷ = softmax(z)
    if loss == "softmax_cross_entropy":
        return (p - targets) / batch  # δᴴ = (ŷ − y) / B
    if loss == "sigmoid_cross_entropy":
        return (jax.nn.sigmoid(logits) - targets) / batch  # δᴴ = (σ(z) − y) / B
    if loss == "nll":
        onehot = jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype)
        return (p - onehot) / batch  # δᴴ = (softmax(z) − onehot(y)) / B
    if loss == "kl_divergence":
        return (p * jnp.sum(targets, axis=-1, keepdims=True) - targets) / batch  # δᴴ = (ŷ Σₖtₖ − t) / B
    if loss == "mse":
        g = 2.0 * (p - targets) / batch  # ∂L/∂ŷ = 2(ŷ − y) / B
        return p * (g - jnp.sum(g * p, axis=-1, keepdims=True))  # δᴴ = Jᵀg, J = diag(ŷ) − ŷŷᵀ
    if loss == "binary_cross_entropy":
        return ((jax.nn.sigmoid(logits[:, 0]) - targets) / batch)[:, None]  # δ = −(y − ŷ) / B
    raise ValueError(f"unknown loss {loss!r}; choose one of {list(losses.LOSSES)}")


def grads(
    params: mlp.Params,
    x: Array,
    y: Array,
    *,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    l2: Array | float = 0.0,
) -> mlp.Params:
    """∂/∂params of ``loss(apply(params, x), y) + l2_penalty(params, l2)``, by hand.

    Args and Returns: as :func:`loss_and_grads`, which also gives the loss and logits.
    """
    return loss_and_grads(params, x, y, hidden=hidden, loss=loss, l2=l2)[2]


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
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
) -> Backward:
    """Every layer's input aˡ⁻¹ and delta δˡ = ∂L/∂zˡ, from one forward pass.

    The batch gradient is ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ (+ 2λWˡ) and ∂L/∂bˡ = Σₙ δˡₙ; row n of the
    outer products gives example n's share, so per-example gradients need nothing more.

    Args:
      params: from :func:`jaxnet.mlp.init`, any depth.
      x: inputs, shape (batch, inputs).
      y: integer labels (batch,) or float targets (batch, outputs).
      hidden: the hidden activation.
      loss: a name from :data:`jaxnet.losses.LOSSES`.
    Returns:
      A :class:`Backward` ``(loss, logits, inputs, deltas)``; ``inputs`` and ``deltas``
      have one entry per layer, ``deltas[l]`` of shape (batch, nₗ) with the 1/B of the
      batch mean inside.
    """
    losses.check_loss(loss)
    zs, activations = mlp.forward(params, x, hidden=hidden)
    logits = zs[-1]
    losses.check_targets(loss, logits.shape, y)
    targets = losses.targets(loss, y, logits.shape[-1], logits.dtype)
    loss_value = losses.objective(loss)(logits, targets)
    delta = output_delta(loss, logits, targets)
    deltas_reversed = [delta]
    for index in reversed(range(1, len(params))):
        h_prime = mlp.activation_derivative(hidden, zs[index - 1], activations[index])
        delta = h_prime * (delta @ params[index]["w"].T)  # δˡ⁻¹ = h′(zˡ⁻¹) ⊙ (δˡ Wˡᵀ)
        deltas_reversed.append(delta)
    return Backward(loss_value, logits, activations, deltas_reversed[::-1])


def loss_and_grads(
    params: mlp.Params,
    x: Array,
    y: Array,
    *,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    l2: Array | float = 0.0,
) -> tuple[Array, Array, mlp.Params]:
    """The loss (penalty included), the logits and the hand-derived gradients, from one
    forward pass.

    Args:
      params: from :func:`jaxnet.mlp.init`, any depth.
      x: inputs, shape (batch, inputs).
      y: integer labels (batch,) or float targets (batch, outputs); 0/1 labels for
        "binary_cross_entropy".
      hidden: the hidden activation.
      loss: a name from :data:`jaxnet.losses.LOSSES`.
      l2: λ of the penalty λ Σ‖Wˡ‖².
    Returns:
      ``(loss_value, logits, grads)``; ``grads`` is a pytree shaped like ``params``.
    """
    data_loss, logits, inputs, layer_deltas = deltas(params, x, y, hidden=hidden, loss=loss)
    loss_value = data_loss + losses.l2_penalty(params, l2)
    grads = [
        {
            "w": a.T @ delta + 2.0 * l2 * layer["w"],  # ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ + 2λWˡ
            "b": jnp.sum(delta, axis=0),  # ∂L/∂bˡ = Σₙ δˡₙ
        }
        for layer, a, delta in zip(params, inputs, layer_deltas)
    ]
    return loss_value, logits, grads
