"""The optax train step: one pure function ``(params, opt_state, batch, l2) → (params,
opt_state, metrics)``, jit-compiled, with the gradient source selectable.

Hyperparameters are data. :func:`make_optimizer` wraps the optax optimizer in
``optax.inject_hyperparams``, so the learning rate and momentum live in
``opt_state.hyperparams`` as arrays, and λ is an explicit traced argument of the step. Two
optimizers of the same kind share one ``update`` function, and the engine caches its
programs by that function, never by values: a new learning rate, λ or momentum compiles
nothing, and a sweep vmaps over them.
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


def _nesterov(learning_rate, momentum):
    return optax.sgd(learning_rate, momentum, nesterov=True)


def _adam(learning_rate, b1, b2):
    return optax.adam(learning_rate, b1, b2)  # eps stays a constant, not injected state


_FACTORIES = {"sgd": optax.sgd, "momentum": optax.sgd, "nesterov": _nesterov, "adam": _adam}
_HYPERPARAMS = {"sgd": (), "momentum": ("momentum",), "nesterov": ("momentum",), "adam": ("b1", "b2")}


@functools.lru_cache(maxsize=None)
def _injected(name: str, schedule: Callable | None) -> optax.GradientTransformation:
    """The one injected optimizer of a kind (and schedule): placeholder values, set per run
    by :func:`make_optimizer`'s ``init``. Its ``update`` is what compiled programs are keyed on."""
    placeholders = {key: 0.5 for key in _HYPERPARAMS[name]}
    return optax.inject_hyperparams(_FACTORIES[name])(learning_rate=schedule or 0.0, **placeholders)


def make_optimizer(
    name: str = "sgd",
    *,
    learning_rate: float | Callable[[Array], Array] = 0.01,
    momentum: float = 0.9,
    b1: float = 0.9,
    b2: float = 0.999,
    **renamed: Any,
) -> optax.GradientTransformation:
    """An optax optimizer whose hyperparameters are injected (traced) state.

    Args:
      name: "sgd", "momentum" (SGD with heavy-ball momentum), "nesterov" or "adam".
      learning_rate: a float or an optax schedule.
      momentum: for "momentum" and "nesterov".
      b1, b2: for "adam".
    Raises:
      ValueError: an unknown name; a hyperparameter that is NaN or inf, a negative learning
      rate, or a momentum, b1 or b2 outside [0, 1).
      TypeError: ``l2=`` (λ is not an optimizer setting: pass it to the step or the engine).
    Returns:
      An optax transformation whose state's ``hyperparams`` hold ``learning_rate`` and the
      optimizer's own hyperparameters as arrays. Every optimizer of one name (and schedule)
      shares one ``update``, so programs compiled for one serve all.
    """
    if "l2" in renamed:
        raise TypeError("make_optimizer no longer takes l2: λ is its own setting, engine.fit(..., l2=λ), "
                        "engine.sweep(..., l2=[...]) or the step's l2 argument")
    if renamed:
        raise TypeError(f"make_optimizer() got unexpected keyword argument(s) {sorted(renamed)}")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
    given = {"momentum": momentum, "b1": b1, "b2": b2}
    values = {key: given[key] for key in _HYPERPARAMS[name]}
    if not callable(learning_rate):
        values["learning_rate"] = learning_rate
    for key, value in values.items():
        values[key] = check_number(key, value)
    if values.get("learning_rate", 0.0) < 0:
        raise ValueError(f"learning_rate must be non-negative, got {learning_rate}")
    for key in _HYPERPARAMS[name]:
        if not 0 <= values[key] < 1:
            raise ValueError(f"{key} must lie in [0, 1), got {values[key]}")
    base = _injected(name, learning_rate if callable(learning_rate) else None)
    return optax.GradientTransformation(lambda params: set_hyperparams(base.init(params), **values), base.update)


def check_number(name: str, value: Any) -> float:
    """``value`` as a finite float; ValueError naming ``name`` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, (str, bytes)) or not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


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


def make_loss_and_grads(
    model: mlp.Model,
    *,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    grad_source: str = "autodiff",
    penalty: bool = True,
) -> Callable[[Any, Array, Array, Array], tuple[Array, Array, Any]]:
    """``(params, x, y, l2) → (loss, logits, grads)`` from autodiff or from
    :func:`jaxnet.backprop.loss_and_grads`; the loss includes λ Σ‖W‖².

    ``penalty=False`` leaves the λ term out of the program altogether (``l2`` is ignored):
    the structural choice of a run without a penalty (the hand-derived gradients then add 0·W).
    ``grad_source="manual"`` needs an MLP (``model.activation`` set).
    """
    if not isinstance(loss, losses.Loss):
        raise TypeError(f"loss must be a losses.Loss such as losses.SOFTMAX_CROSS_ENTROPY, got {loss!r}")
    if grad_source not in GRAD_SOURCES:
        raise ValueError(f"unknown grad_source {grad_source!r}; choose one of {list(GRAD_SOURCES)}")
    if grad_source == "manual":
        if model.activation is None:
            raise ValueError("grad_source='manual' derives gradients for jaxnet.mlp models only; use 'autodiff'")
        return lambda params, x, y, l2: backprop.loss_and_grads(params, x, y, activation=model.activation,
                                                                loss=loss, l2=l2 if penalty else 0.0)

    def total_loss(params, x, y, l2):
        logits = model.apply(params, x)
        losses.check_targets(loss, logits.shape, y)
        value = loss.fn(logits, loss.targets(y, logits.shape[-1], logits.dtype))
        return (value + losses.l2_penalty(params, l2) if penalty else value), logits

    def loss_and_grads(params, x, y, l2):
        (value, logits), grads = jax.value_and_grad(total_loss, has_aux=True)(params, x, y, l2)
        return value, logits, grads

    return loss_and_grads


def make_train_step(
    model: mlp.Model,
    optimizer: optax.GradientTransformation,
    *,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    grad_source: str = "autodiff",
    penalty: bool = True,
    jit: bool = True,
) -> Callable[[Any, Any, Batch, Array | float], tuple[Any, Any, dict[str, Array]]]:
    """One optimisation step.

    Args:
      model: a :class:`jaxnet.mlp.Model` (``mlp.model(...)``, ``cnn.model(...)``).
      optimizer: an optax transformation, ideally from :func:`make_optimizer`.
      loss: a :class:`jaxnet.losses.Loss`.
      grad_source: "autodiff" (``jax.grad``) or "manual" (:func:`jaxnet.backprop.grads`).
      penalty: False leaves λ Σ‖W‖² out of the program (as :func:`make_loss_and_grads`).
      jit: compile the step (the engine passes False and compiles a whole epoch instead).
    Returns:
      ``step(params, opt_state, batch, l2) → (params, opt_state, metrics)``; ``l2`` is λ, a
      traced value; ``metrics`` holds the loss (penalty included) and accuracy of the batch
      *before* the update.
    """
    loss_and_grads = make_loss_and_grads(model, loss=loss, grad_source=grad_source, penalty=penalty)

    def step(params, opt_state, batch, l2):
        x, y = batch
        value, logits, grads = loss_and_grads(params, x, y, l2)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": value, "accuracy": metrics.accuracy(logits, y)}

    return jax.jit(step) if jit else step
