"""Forward mode in the gradient suite: for random directions v, the directional derivative
``jax.jvp`` computes by pushing tangents forward equals ⟨hand-derived gradient, v⟩, in
float64, on every network of the gradient-check grid (activation × depth × loss × λ).

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

from jaxnet import backprop
from test_backprop import GRID, GRID_IDS, float64, problem, total_loss  # noqa: F401 (float64: autouse x64)

DIRECTIONS = 3


def random_directions(params, key, count=DIRECTIONS):
    """``count`` standard-normal pytrees shaped like ``params``."""
    flat, unravel = ravel_pytree(params)
    return [unravel(v) for v in jax.random.normal(key, (count, flat.size), flat.dtype)]


@pytest.mark.parametrize("hidden, depth, loss, lam", GRID, ids=GRID_IDS)
def test_jvp_equals_hand_gradient_dot_direction(hidden, depth, loss, lam):
    params, x, y = problem(hidden, depth, loss)
    manual = ravel_pytree(backprop.grads(params, x, y, hidden=hidden, loss=loss, l2=lam))[0]

    def f(p):
        return total_loss(p, x, y, hidden=hidden, loss=loss, lam=lam)

    for v in random_directions(params, jax.random.key(depth)):
        value, directional = jax.jvp(f, (params,), (v,))
        flat_v = ravel_pytree(v)[0]
        expected = jnp.dot(manual, flat_v)
        # ⟨g, v⟩ sums terms of either sign; its rounding scales with Σ|gᵢvᵢ|, not |⟨g, v⟩|.
        scale = float(jnp.sum(jnp.abs(manual * flat_v)))
        error = abs(float(directional - expected)) / scale
        assert error <= 1e-12, f"|jvp − ⟨g, v⟩| / Σ|gᵢvᵢ| = {error:.2e}"
        np.testing.assert_allclose(value, f(params), rtol=1e-14)


def test_forward_mode_catches_a_wrong_gradient():
    """The check has teeth: a hand gradient off by 1e-6 (relative) in one entry fails it."""
    params, x, y = problem("tanh", 1, "softmax_cross_entropy")
    manual = ravel_pytree(backprop.grads(params, x, y, hidden="tanh"))[0]
    wrong = manual.at[jnp.argmax(jnp.abs(manual))].multiply(1 + 1e-6)
    v = ravel_pytree(random_directions(params, jax.random.key(0), 1)[0])[0]
    _, unravel = ravel_pytree(params)
    _, directional = jax.jvp(
        lambda p: total_loss(p, x, y, hidden="tanh", loss="softmax_cross_entropy", lam=0.0),
        (params,), (unravel(v),),
    )
    assert abs(float(directional - jnp.dot(wrong, v))) / float(jnp.sum(jnp.abs(wrong * v))) > 1e-12
