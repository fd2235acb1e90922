"""The objective every diagnostic differentiates, and the boundary checks in front of each
compiled diagnostic (a traced program cannot make them)."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from jaxnet import losses, mlp

Array = jax.Array
Params = mlp.Params


def checked_jit(*static: str, data_at: tuple[int, int] = (1, 2)):
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
