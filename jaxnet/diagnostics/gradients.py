"""Per-example gradients (by autodiff and from the hand-derived deltas), their norms, and the
gradient noise scale."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnet import backprop, losses, mlp
from jaxnet.diagnostics.objective import Array, Params, checked_jit, objective


@checked_jit("activation", "loss")
def per_example_grads(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> Params:
    """Per-example gradients by autodiff: ``vmap`` of ``grad`` over the batch.

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
    Returns:
      A pytree shaped like ``params`` with a leading batch axis: leaf (B, *leaf.shape),
      row i = gᵢ = ∇θ[ℓ(f(xᵢ; θ), yᵢ) + λΣ‖Wˡ‖²]; the batch gradient is the mean over rows.
    """

    def one(x_i, y_i):
        return jax.grad(objective)(params, x_i[None], y_i[None], activation=activation, loss=loss, l2=l2)

    return jax.vmap(one)(x, y)


@checked_jit("activation", "loss")
def manual_per_example_grads(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> Params:
    """Per-example gradients from the hand-derived backprop (:func:`jaxnet.backprop.deltas`).

    The batch gradient ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ is a sum of outer products, one per example; the
    deltas carry the batch mean's 1/B, so example i's own gradient is

        gᵢ(Wˡ) = aˡ⁻¹ᵢ ⊗ (B δˡᵢ) + 2λWˡ,    gᵢ(bˡ) = B δˡᵢ.

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
    Returns:
      As :func:`per_example_grads`: leaf (B, *leaf.shape).
    """
    backward = backprop.deltas(params, x, y, activation=activation, loss=loss)
    batch = x.shape[0]
    grads = []
    for layer, a, delta in zip(params, backward.inputs, backward.deltas):
        delta_i = batch * delta  # B δᵢ: example i's own ∂ℓᵢ/∂zˡ
        grads.append({
            "w": jnp.einsum("ni,nj->nij", a, delta_i) + 2.0 * l2 * layer["w"],  # aᵢ ⊗ Bδᵢ + 2λW
            "b": delta_i,
        })
    return grads


@checked_jit("activation", "loss")
def per_example_grad_norms(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> Array:
    """‖gᵢ‖ for every example without forming the B per-example gradients.

    An outer product has ‖a ⊗ d‖_F = ‖a‖ ‖d‖, so with dᵢ = Bδᵢ and the penalty term 2λW,

        ‖gᵢ‖² = Σₗ ‖aᵢ‖²‖dᵢ‖² + 4λ aᵢᵀWˡdᵢ + 4λ²‖Wˡ‖² + ‖dᵢ‖²

    costs O(B · Σₗ nₗ₋₁nₗ) like one backward pass, and no (B, nₗ₋₁, nₗ) array.

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
    Returns:
      Shape (B,): the Euclidean norm of each example's full-parameter gradient.
    """
    backward = backprop.deltas(params, x, y, activation=activation, loss=loss)
    batch = x.shape[0]
    squared = jnp.zeros((batch,), backward.logits.dtype)
    for layer, a, delta in zip(params, backward.inputs, backward.deltas):
        d = batch * delta
        d_sq = jnp.sum(d * d, axis=1)
        cross = jnp.sum((a @ layer["w"]) * d, axis=1)  # aᵢᵀ W dᵢ
        squared = squared + jnp.sum(a * a, axis=1) * d_sq + 4.0 * l2 * cross
        squared = squared + 4.0 * l2 * l2 * jnp.sum(layer["w"] ** 2) + d_sq
    return jnp.sqrt(jnp.maximum(squared, 0.0))


class NoiseScale(NamedTuple):
    """The simple gradient noise scale of one batch (McCandlish et al. 2018, eq. 2.8)."""

    b_simple: Array  # tr(Σ) / ‖G‖²
    trace_sigma: Array  # tr(Σ), the unbiased per-example covariance trace
    grad_norm_sq: Array  # ‖G‖², G the batch-mean gradient


@checked_jit("activation", "loss")
def gradient_noise_scale(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> NoiseScale:
    """B_simple = tr(Σ) / ‖G‖² on one batch, from per-example gradient norms.

    G = (1/B) Σᵢ gᵢ and Σ is the covariance of the gᵢ; with the unbiased estimator

        tr(Σ) = (Σᵢ ‖gᵢ‖² − B ‖G‖²) / (B − 1).

    B_simple is the batch size at which the gradient's noise equals its signal: far below
    it, doubling the batch nearly halves the steps needed. ‖G‖² here is the plain batch
    estimate, which exceeds ‖E[g]‖² by tr(Σ)/B on average, so B_simple is biased low for
    batches much smaller than itself. The λ term is the same for every example and cancels
    in Σ. Needs B ≥ 2 (ValueError otherwise).

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
    Returns:
      A :class:`NoiseScale` ``(b_simple, trace_sigma, grad_norm_sq)`` of scalars.
    """
    batch = x.shape[0]
    if batch < 2:
        raise ValueError(f"the gradient noise scale needs a batch of at least 2 examples, got {batch}")
    norms = per_example_grad_norms(params, x, y, activation=activation, loss=loss, l2=l2)
    g = backprop.grads(params, x, y, activation=activation, loss=loss, l2=l2)
    grad_norm_sq = sum(jnp.sum(leaf * leaf) for leaf in jax.tree.leaves(g))
    trace_sigma = (jnp.sum(norms**2) - batch * grad_norm_sq) / (batch - 1)  # tr(Σ), unbiased
    return NoiseScale(trace_sigma / grad_norm_sq, trace_sigma, grad_norm_sq)  # B_simple = tr(Σ) / ‖G‖²
