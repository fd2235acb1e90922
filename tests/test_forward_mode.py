"""Forward mode in the gradient suite: for random directions v, the directional derivative
``jax.jvp`` computes by pushing tangents forward equals ⟨hand-derived gradient, v⟩, in
float64, on every activation × depth × loss of the gradient-check grid (× both λ with
``-m slow``).

Reverse mode (``jax.grad``) and the hand-derived backprop both run the chain rule backwards;
``jax.jvp`` runs it forwards and never forms a gradient, so agreement ties the hand
derivation to a second, independently composed derivative.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxnet import backprop, losses, mlp
from test_backprop import (  # noqa: F401 (float64: autouse x64)
    ACTIVATIONS, DEPTHS, GRID, GRID_IDS, LAMBDAS, LOSSES, float64, problem, total_loss)

DIRECTIONS = 3


def _default(activation, depth, loss, lam) -> bool:
    """Every activation × depth × loss runs by default, with one λ chosen in a checkerboard
    (both λ for every activation, depth and loss); the other 54 cells with `-m slow`."""
    parity = ACTIVATIONS.index(activation) + DEPTHS.index(depth) + LOSSES.index(loss)
    return lam == LAMBDAS[parity % 2]


CELLS = [pytest.param(*cell, id=name, marks=() if _default(*cell) else pytest.mark.slow)
         for cell, name in zip(GRID, GRID_IDS)]


@pytest.mark.parametrize("activation, depth, loss, lam", CELLS)
def test_jvp_equals_hand_gradient_dot_direction(activation, depth, loss, lam):
    params, x, y = problem(activation, depth, loss)
    manual = ravel_pytree(backprop.grads(params, x, y, activation=activation, loss=loss, l2=lam))[0]

    def f(p):
        return total_loss(p, x, y, activation=activation, loss=loss, lam=lam)

    flat, unravel = ravel_pytree(params)
    directions = jax.random.normal(jax.random.key(depth), (DIRECTIONS, flat.size), flat.dtype)
    values, directional = jax.vmap(lambda v: jax.jvp(f, (params,), (unravel(v),)))(directions)
    expected = directions @ manual
    # ⟨g, v⟩ sums terms of either sign; its rounding scales with Σ|gᵢvᵢ|, not |⟨g, v⟩|.
    scale = jnp.abs(directions) @ jnp.abs(manual)
    error = float(jnp.max(jnp.abs(directional - expected) / scale))
    assert error <= 1e-12, f"max |jvp − ⟨g, v⟩| / Σ|gᵢvᵢ| = {error:.2e}"
    np.testing.assert_allclose(values, f(params), rtol=1e-14)


def test_forward_mode_catches_a_wrong_gradient():
    """The check has teeth: a hand gradient off by 1e-6 (relative) in one entry fails it."""
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    manual = ravel_pytree(backprop.grads(params, x, y, activation=mlp.TANH))[0]
    wrong = manual.at[jnp.argmax(jnp.abs(manual))].multiply(1 + 1e-6)
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)
    _, directional = jax.jvp(
        lambda p: total_loss(p, x, y, activation=mlp.TANH, loss=losses.SOFTMAX_CROSS_ENTROPY, lam=0.0),
        (params,), (unravel(v),),
    )
    assert abs(float(directional - jnp.dot(wrong, v))) / float(jnp.sum(jnp.abs(wrong * v))) > 1e-12
