"""The optax train step: one pure function ``(params, opt_state, batch) → (params,
opt_state, metrics)``, jit-compiled, with the gradient source selectable.

Hyperparameters are data: :func:`make_optimizer` wraps the optax optimizer in
``optax.inject_hyperparams``, so the learning rate, λ (``"l2"``) and momentum live in
``opt_state.hyperparams`` as arrays. Changing them never recompiles, and a sweep vmaps over
them.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnet import backprop, losses, metrics, mlp

Array = jax.Array
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
GRAD_SOURCES = ("autodiff", "manual")


class Batch(NamedTuple):
    x: Array  # (batch, inputs)
    y: Array  # (batch,) integer labels, or (batch, outputs) float targets


def _sgd(learning_rate, l2):
    del l2  # λ is read by the train step from the injected hyperparameters
    return optax.sgd(learning_rate)


def _momentum(learning_rate, l2, momentum):
    del l2
    return optax.sgd(learning_rate, momentum)


def _nesterov(learning_rate, l2, momentum):
    del l2
    return optax.sgd(learning_rate, momentum, nesterov=True)


def _adam(learning_rate, l2, b1, b2):
    del l2
    return optax.adam(learning_rate, b1, b2)


@functools.lru_cache(maxsize=256)
def make_optimizer(
    name: str = "sgd",
    *,
    learning_rate: float | Callable[[Array], Array] = 0.01,
    l2: float = 0.0,
    momentum: float = 0.9,
    b1: float = 0.9,
    b2: float = 0.999,
) -> optax.GradientTransformation:
    """An optax optimizer whose hyperparameters are injected (traced) state.

    Args:
      name: "sgd", "momentum" (SGD with heavy-ball momentum), "nesterov" or "adam".
      learning_rate: a float or an optax schedule.
      l2: λ of the penalty λ Σ‖Wˡ‖² that the train step adds to the loss.
      momentum: for "momentum" and "nesterov".
      b1, b2: for "adam".
    Raises:
      ValueError: an unknown name; a hyperparameter that is NaN or inf, a negative learning
      rate or λ, or a momentum, b1 or b2 outside [0, 1).
    Returns:
      ``optax.inject_hyperparams(...)``; its state's ``hyperparams`` dict holds
      ``learning_rate``, ``l2`` and the optimizer's own hyperparameters. The same
      arguments return the same object, so the engine's compiled programs are reused.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
    numbers = {"l2": l2, **({"b1": b1, "b2": b2} if name == "adam" else {}),
               **({"momentum": momentum} if name in ("momentum", "nesterov") else {})}
    if not callable(learning_rate):
        numbers["learning_rate"] = learning_rate
    for key, value in numbers.items():
        try:
            numbers[key] = value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value}")
    if not callable(learning_rate) and learning_rate < 0:
        raise ValueError(f"learning_rate must be non-negative, got {learning_rate}")
    if l2 < 0:
        raise ValueError(f"l2 (λ) must be non-negative, got {l2}")
    for key in ("momentum", "b1", "b2"):
        if key in numbers and not 0 <= numbers[key] < 1:
            raise ValueError(f"{key} must lie in [0, 1), got {numbers[key]}")
    if name == "sgd":
        return optax.inject_hyperparams(_sgd)(learning_rate=learning_rate, l2=l2)
    if name == "adam":
        return optax.inject_hyperparams(_adam)(learning_rate=learning_rate, l2=l2, b1=b1, b2=b2)
    factory = _momentum if name == "momentum" else _nesterov
    return optax.inject_hyperparams(factory)(learning_rate=learning_rate, l2=l2, momentum=momentum)


def hyperparams(opt_state: Any) -> dict[str, Array]:
    """The injected hyperparameters of ``opt_state`` ({} for a plain optax state)."""
    return dict(getattr(opt_state, "hyperparams", {}) or {})


def set_hyperparams(opt_state: Any, **values: float | Array) -> Any:
    """A copy of ``opt_state`` with injected hyperparameters replaced (no recompilation).

    Raises ValueError for a name the optimizer does not have.
    """
    current = hyperparams(opt_state)
    unknown = set(values) - set(current)
    if unknown:
        raise ValueError(f"optimizer has no hyperparameter(s) {sorted(unknown)}; it has {sorted(current)}")
    new = dict(opt_state.hyperparams)
    for key, value in values.items():
        new[key] = jnp.asarray(value, dtype=jnp.asarray(current[key]).dtype)
    return opt_state._replace(hyperparams=new)


ApplyFn = Callable[[Any, Array], Array]


def resolve_apply(hidden: str = "relu", apply_fn: ApplyFn | None = None) -> ApplyFn:
    """``apply_fn`` if given, else the MLP's ``apply`` with the ``hidden`` activation."""
    if apply_fn is not None:
        return apply_fn
    mlp.activation(hidden)
    return lambda params, x: mlp.apply(params, x, hidden=hidden)


def make_loss_and_grads(
    *,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    grad_source: str = "autodiff",
    apply_fn: ApplyFn | None = None,
    penalty: bool = True,
) -> Callable[[Any, Array, Array, Array], tuple[Array, Array, Any]]:
    """``(params, x, y, l2) → (loss, logits, grads)`` from autodiff or from
    :func:`jaxnet.backprop.loss_and_grads`; the loss includes λ Σ‖W‖².

    ``penalty=False`` leaves the λ term out of the program altogether (``l2`` is ignored):
    for λ = 0 it gives the same numbers without the per-step work of a zero penalty (the
    engine uses it when every λ is 0; the hand-derived gradients still add 0·W).

    ``apply_fn(params, x) → logits`` replaces the MLP (e.g. a flax CNN's ``apply``); its
    gradients come from autodiff, since the hand-derived ones are for the MLP alone.
    """
    losses.check_loss(loss)
    if grad_source not in GRAD_SOURCES:
        raise ValueError(f"unknown grad_source {grad_source!r}; choose one of {list(GRAD_SOURCES)}")
    if apply_fn is not None and grad_source == "manual":
        raise ValueError("grad_source='manual' derives gradients for jaxnet.mlp only; use 'autodiff' with apply_fn")
    apply_fn = resolve_apply(hidden, apply_fn)
    if grad_source == "manual":
        return lambda params, x, y, l2: backprop.loss_and_grads(params, x, y, hidden=hidden, loss=loss,
                                                                l2=l2 if penalty else 0.0)
    objective = losses.objective(loss)

    def total_loss(params, x, y, l2):
        logits = apply_fn(params, x)
        losses.check_targets(loss, logits.shape, y)
        value = objective(logits, losses.targets(loss, y, logits.shape[-1], logits.dtype))
        return (value + losses.l2_penalty(params, l2) if penalty else value), logits

    def loss_and_grads(params, x, y, l2):
        (value, logits), grads = jax.value_and_grad(total_loss, has_aux=True)(params, x, y, l2)
        return value, logits, grads

    return loss_and_grads


def make_train_step(
    optimizer: optax.GradientTransformation,
    *,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    grad_source: str = "autodiff",
    apply_fn: ApplyFn | None = None,
    jit: bool = True,
    penalty: bool = True,
) -> Callable[[mlp.Params, Any, Batch], tuple[mlp.Params, Any, dict[str, Array]]]:
    """One optimisation step.

    Args:
      optimizer: an optax transformation, ideally from :func:`make_optimizer` (then λ is
        read from ``opt_state.hyperparams["l2"]``; otherwise λ = 0).
      hidden: the hidden activation.
      loss: a name from :data:`jaxnet.losses.LOSSES`.
      grad_source: "autodiff" (``jax.grad``) or "manual" (:func:`jaxnet.backprop.grads`).
      apply_fn: another model's ``apply(params, x) → logits`` instead of the MLP.
      jit: compile the step (the engine passes False and compiles a whole epoch instead).
      penalty: False leaves λ Σ‖W‖² out of the program (as :func:`make_loss_and_grads`);
        only for optimizers whose λ is 0.
    Returns:
      ``step(params, opt_state, batch) → (params, opt_state, metrics)``; ``metrics`` holds
      the loss (penalty included) and accuracy of the batch *before* the update.
    """
    loss_and_grads = make_loss_and_grads(hidden=hidden, loss=loss, grad_source=grad_source, apply_fn=apply_fn,
                                         penalty=penalty)

    def step(params, opt_state, batch):
        x, y = batch
        l2 = hyperparams(opt_state).get("l2", 0.0)
        value, logits, grads = loss_and_grads(params, x, y, l2)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": value, "accuracy": metrics.accuracy(logits, y)}

    return jax.jit(step) if jit else step
