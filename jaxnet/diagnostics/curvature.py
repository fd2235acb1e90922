"""Hessian-vector products, Lanczos, and the top of the Hessian spectrum (the sharpness)."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxnet import losses, mlp
from jaxnet.diagnostics.objective import Array, Params, checked_jit, objective


@checked_jit("activation", "loss", data_at=(2, 3))
def hvp(
    params: Params,
    tangent: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> Params:
    """The Hessian-vector product H v by forward-over-reverse (``jvp`` of ``grad``).

        H v = d/dε ∇L(θ + εv) |_{ε=0}

    costs about two gradient evaluations and never forms H (P × P for P parameters).

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
      tangent: v, a pytree shaped like ``params``.
    Returns:
      H v, shaped like ``params``.
    """
    gradient = jax.grad(functools.partial(objective, x=x, y=y, activation=activation, loss=loss, l2=l2))
    return jax.jvp(gradient, (params,), (tangent,))[1]


def lanczos(matvec: Callable[[Array], Array], v0: Array, *, iterations: int, key: Array) -> Array:
    """Ritz values of a symmetric operator from ``iterations`` Lanczos steps.

    Builds an orthonormal Krylov basis V = [v₀ … v_{k−1}] of span{v₀, Av₀, …} and the
    tridiagonal T = VᵀAV (αⱼ = vⱼᵀAvⱼ on the diagonal, βⱼ = ‖wⱼ‖ off it), re-orthogonalising
    every new vector against all earlier ones twice (classical Gram–Schmidt, so no spurious
    copies of converged eigenvalues). The extreme eigenvalues of T converge to those of A
    far faster than power iteration; with k = dim(A) they are all of A's eigenvalues. An
    exhausted Krylov space (β = 0) restarts from a random vector orthogonal to V.

    Args:
      matvec: v ↦ Av for a symmetric A, on flat vectors of shape (n,).
      v0: the start vector, shape (n,), not zero.
      iterations: k, static; clipped to n.
      key: a ``jax.random`` key for restarts.
    Returns:
      The k Ritz values (eigenvalues of T), ascending.
    """
    n = v0.shape[0]
    k = min(int(iterations), n)
    if k < 1:
        raise ValueError(f"lanczos needs at least one iteration, got {iterations}")
    dtype = v0.dtype
    basis = jnp.zeros((k, n), dtype).at[0].set(v0 / jnp.linalg.norm(v0))

    def orthogonalise(w, basis):
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            w = w - basis.T @ (basis @ w)
        return w

    def step(carry, j):
        basis, beta_prev = carry
        v = basis[j]
        w_raw = matvec(v)
        alpha = jnp.dot(w_raw, v)
        w = orthogonalise(w_raw - alpha * v - beta_prev * basis[jnp.maximum(j - 1, 0)], basis)  # β₋₁ = 0
        beta = jnp.linalg.norm(w)
        exhausted = beta <= jnp.finfo(dtype).eps * (jnp.linalg.norm(w_raw) + jnp.finfo(dtype).tiny)
        fresh = orthogonalise(jax.random.normal(jax.random.fold_in(key, j), (n,), dtype), basis)
        fresh = fresh / jnp.maximum(jnp.linalg.norm(fresh), jnp.finfo(dtype).tiny)
        w = jnp.where(exhausted, fresh, w / jnp.where(exhausted, 1.0, beta))
        beta = jnp.where(exhausted, 0.0, beta)
        basis = jnp.where(j + 1 < k, basis.at[jnp.minimum(j + 1, k - 1)].set(w), basis)
        return (basis, beta), (alpha, beta)

    _, (alphas, betas) = jax.lax.scan(step, (basis, jnp.zeros((), dtype)), jnp.arange(k))
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)  # T = VᵀAV
    return jnp.linalg.eigvalsh(tridiagonal)


@checked_jit("activation", "loss", "iterations")
def hessian_ritz_values(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
    iterations: int = 20,
    key: Array,
) -> Array:
    """Lanczos estimates of the Hessian's spectrum, on HVPs, as one compiled program.

    Args:
      params, x, y, activation, loss, l2: as :func:`objective`.
      iterations: Lanczos steps k (static; clipped to the number of parameters P).
      key: a ``jax.random`` key; the start vector is standard normal.
    Returns:
      Shape (min(k, P),), ascending: the last entry estimates λ_max(H), the first λ_min(H).
    """
    flat, unravel = ravel_pytree(params)

    def matvec(v):
        return ravel_pytree(hvp(params, unravel(v), x, y, activation=activation, loss=loss, l2=l2))[0]

    key_start, key_restart = jax.random.split(key)
    v0 = jax.random.normal(key_start, flat.shape, flat.dtype)
    return lanczos(matvec, v0, iterations=iterations, key=key_restart)


def top_hessian_eigenvalue(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
    iterations: int = 20,
    key: Array,
) -> Array:
    """λ_max(H), the sharpness: the largest Ritz value of :func:`hessian_ritz_values`.

    Gradient descent with step η is stable on a quadratic only while λ_max < 2/η (with
    heavy-ball momentum β: λ_max < (2 + 2β)/η), the bound of the edge-of-stability study.

    Args:
      params, x, y, activation, loss, l2, iterations, key: as :func:`hessian_ritz_values`.
    Returns:
      A scalar.
    """
    return hessian_ritz_values(
        params, x, y, activation=activation, loss=loss, l2=l2, iterations=iterations, key=key
    )[-1]
