"""Dead units, and the probe that measures curvature, gradient noise and dead units during training."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from jaxnet import losses, mlp
from jaxnet.diagnostics.curvature import top_hessian_eigenvalue
from jaxnet.diagnostics.gradients import gradient_noise_scale
from jaxnet.diagnostics.objective import Array, Params


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
