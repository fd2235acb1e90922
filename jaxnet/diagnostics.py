"""Functional-autodiff diagnostics for the MLP: per-example gradients, the gradient noise
scale, Hessian-vector products and the top of the Hessian spectrum (docs/diagnostics.md).

Every function is pure, takes the same ``params`` pytree as :mod:`jaxnet.mlp` and the same
``(x, y)`` as :mod:`jaxnet.backprop`, and is jit-compiled with its string options and
iteration counts static. The objective is always the one training minimises,

    L(θ) = (1/B) Σᵢ ℓ(f(xᵢ; θ), yᵢ) + λ Σₗ ‖Wˡ‖²,

and "per-example" means gᵢ = ∇θ [ℓ(f(xᵢ; θ), yᵢ) + λ Σₗ ‖Wˡ‖²], so that the batch
gradient is G = (1/B) Σᵢ gᵢ. The tests (tests/test_diagnostics.py) prove each quantity
against an independent reference in float64.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxnet import backprop, losses, mlp

Array = jax.Array
Params = mlp.Params


def _checked(*static: str, data_at: tuple[int, int] = (1, 2)):
    """``jax.jit`` with these static arguments, behind the boundary checks that a traced
    program cannot make: params that are MLP layers fitting x, a non-empty batch, and
    targets valid for the loss (label values too, when y is concrete)."""

    def wrap(fn: Callable) -> Callable:
        compiled = jax.jit(fn, static_argnames=static)

        @functools.wraps(fn)
        def checked(params, *args, **kwargs):
            x, y = args[data_at[0] - 1], args[data_at[1] - 1]
            mlp.check_inputs(params, x)
            if x.shape[0] == 0:
                raise ValueError(f"{fn.__name__} got an empty batch; give at least one example")
            loss = kwargs.get("loss", losses.SOFTMAX_CROSS_ENTROPY)
            losses.check_targets(loss, (x.shape[0], params[-1]["b"].shape[-1]), jnp.asarray(y))
            if data_at[0] == 2 and jax.tree.structure(args[0]) != jax.tree.structure(params):
                raise ValueError(f"{fn.__name__}: the tangent must be shaped like params (a list of {{'w', 'b'}} "
                                 f"layers), got {jax.tree.structure(args[0])}")
            return compiled(params, *args, **kwargs)

        checked.compiled = compiled  # the jitted function itself (its cache, for the tests)
        return checked

    return wrap


def objective(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: Array | float = 0.0,
) -> Array:
    """L(θ) = mean loss of ``apply(params, x)`` against ``y`` + λ Σ‖Wˡ‖², a scalar.

    Args:
      params: from :func:`jaxnet.mlp.init`.
      x: inputs, shape (B, inputs).
      y: integer labels (B,) or float targets (B, outputs).
      activation: the hidden activation (an :class:`jaxnet.mlp.Activation`).
      loss: a :class:`jaxnet.losses.Loss`.
      l2: λ of the penalty.
    Returns:
      The scalar objective that ``jaxnet.train`` minimises.
    """
    logits = mlp.apply(params, x, activation=activation)
    return loss(logits, y) + losses.l2_penalty(params, l2)


# --- per-example gradients ----------------------------------------------------------------


@_checked("activation", "loss")
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


@_checked("activation", "loss")
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


@_checked("activation", "loss")
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


@_checked("activation", "loss")
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


# --- curvature -----------------------------------------------------------------------------


@_checked("activation", "loss", data_at=(2, 3))
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


@_checked("activation", "loss", "iterations")
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


@functools.partial(jax.jit, static_argnames=("activation",))
def dead_unit_fraction(params: Params, x: Array, *, activation: mlp.Activation = mlp.RELU) -> Array:
    """For each hidden layer, the fraction of units whose derivative h′(z) is 0 on every
    example of ``x``: dead ReLUs (z ≤ 0 throughout), which no gradient can revive.

    Args:
      params: from :func:`jaxnet.mlp.init`.
      x: inputs, shape (B, inputs).
      activation: the hidden activation (for sigmoid / tanh only units saturated to an exact
        0 derivative count).
    Returns:
      Shape (number of hidden layers,), each entry in [0, 1].
    """
    zs, activations = mlp.forward(params, x, activation=activation)
    fractions = [
        jnp.mean(jnp.all(activation.derivative(z, a) == 0, axis=0).astype(z.dtype))
        for z, a in zip(zs[:-1], activations[1:])
    ]
    return jnp.stack(fractions) if fractions else jnp.zeros((0,), x.dtype)


def curvature_probe(
    x_batch: Array,
    y_batch: Array,
    *,
    activation: mlp.Activation = mlp.RELU,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    l2: float = 0.0,
    iterations: int = 20,
    key: Array,
) -> Callable[[Params], dict[str, Array]]:
    """A probe for ``engine.fit`` / ``engine.sweep`` (``probe=…, probe_every=K``) that
    measures curvature and gradient noise on one fixed batch.

    The batch, the Lanczos start vector and the iteration count are fixed, so successive
    measurements differ only because the parameters moved. The returned function is
    traceable (the engine jits it once, and vmaps it over a sweep's members).

    Args:
      x_batch: inputs, shape (B, inputs); B ≥ 2.
      y_batch: integer labels (B,) or float targets (B, outputs).
      activation: the hidden activation (an :class:`jaxnet.mlp.Activation`).
      loss: a :class:`jaxnet.losses.Loss`.
      l2: λ of the penalty, as in training.
      iterations: Lanczos steps for λ_max (static).
      key: a ``jax.random`` key for the Lanczos start vector.
    Returns:
      ``probe(params) → {"lambda_max": λ_max(H), "noise_scale": B_simple,
      "dead_1": …, "dead_L": fraction of dead units in each hidden layer}``, scalars.
    """
    x_batch, y_batch = jnp.asarray(x_batch), jnp.asarray(y_batch)
    if x_batch.ndim != 2 or x_batch.shape[0] < 2:
        raise ValueError(
            f"curvature_probe needs a (batch, inputs) array of at least 2 examples, got shape {tuple(x_batch.shape)}"
        )
    if not isinstance(loss, losses.Loss) or not isinstance(activation, mlp.Activation):
        raise TypeError("curvature_probe takes loss=losses.<LOSS> and activation=mlp.<ACTIVATION> values")
    kwargs = dict(activation=activation, loss=loss, l2=l2)

    def probe(params: Params) -> dict[str, Array]:
        dead = dead_unit_fraction(params, x_batch, activation=activation)
        return {
            "lambda_max": top_hessian_eigenvalue(params, x_batch, y_batch, iterations=iterations, key=key, **kwargs),
            "noise_scale": gradient_noise_scale(params, x_batch, y_batch, **kwargs).b_simple,
            **{f"dead_{layer + 1}": dead[layer] for layer in range(dead.shape[0])},
        }

    return probe
