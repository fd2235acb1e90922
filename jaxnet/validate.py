"""The checks every input of training and evaluation passes once, at the boundary, before
anything is placed, compiled or trained: each failure is one ValueError that names the
argument and the fix (never a NaN, a silent clamp or a JAX-internal message)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import losses, train
from jaxnet.mlp import Model

Array = jax.Array


def _logits_shape(model: Model, params: Any, x: Array) -> tuple[int, ...]:
    return jax.eval_shape(model.apply, params, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype)).shape


def training(model: Model, params, loss: losses.Loss, x, y, epochs, batch_size, n_train, opt_states) -> None:
    """The training set, the run length and batch, and every member's hyperparameters."""
    if not isinstance(model, Model):
        raise TypeError(f"model must be a jaxnet Model (mlp.model(sizes, activation=...) or cnn.model(...)), "
                        f"got {type(model).__name__}")
    if len(x) != len(y):
        raise ValueError(f"the training set has {len(x)} images but {len(y)} labels; they must match")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(f"epochs must be a whole number, got {epochs!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1 or batch_size > n_train:
        raise ValueError(
            f"batch_size {batch_size} is not in [1, {n_train}] (the number of training examples); "
            "use a smaller batch")
    for k, state in enumerate(opt_states):
        member = f" (member {k})" if len(opt_states) > 1 else ""
        for name, value in train.hyperparams(state).items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
                raise ValueError(f"{name}{member} must be a finite number, got {value}")
            if name == "learning_rate" and np.any(value < 0):
                raise ValueError(f"{name}{member} must be non-negative, got {value}")
    finite("training inputs", x)
    finite("training targets", y)
    losses.check_targets(loss, (len(y), _logits_shape(model, params, x)[-1]), jnp.asarray(y))


def penalties(l2: list[float] | None) -> None:
    """λ values: finite and non-negative."""
    for k, value in enumerate(l2 or []):
        member = f" (member {k})" if len(l2) > 1 else ""
        number = train.check_number(f"l2{member}", value)
        if number < 0:
            raise ValueError(f"l2 (λ){member} must be non-negative, got {number}")


@jax.jit
def _count_nonfinite(values: Array) -> Array:
    return jnp.sum(~jnp.isfinite(values), dtype=jnp.int32)


def finite(name: str, values) -> None:
    """ValueError if float ``values`` hold NaN or inf: bad data, not a divergence."""
    if not jnp.issubdtype(jnp.result_type(values), jnp.inexact) or jnp.size(values) == 0:
        return
    bad = int(_count_nonfinite(jnp.asarray(values)))
    if bad:
        raise ValueError(f"the {name} contain {bad} NaN/inf value(s) (of {jnp.size(values)}); clean the data "
                         "before training, e.g. drop those examples or replace them (np.nan_to_num)")


def split(name: str, data, x) -> tuple[Array, Array] | None:
    """A validation or test set ``(x, y)`` of matching lengths and the training images' shape."""
    if data is None:
        return None
    split_x, split_y = data
    if len(split_x) != len(split_y):
        raise ValueError(f"the {name} set has {len(split_x)} images but {len(split_y)} labels; they must match")
    if tuple(split_x.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"{name} images have shape {tuple(split_x.shape[1:])}, training images {tuple(x.shape[1:])}")
    return jnp.asarray(split_x), jnp.asarray(split_y)


def eval_data(model: Model, params, loss: losses.Loss, x, splits: dict[str, tuple[Array, Array] | None]) -> None:
    """The validation and test sets: matching lengths and shapes, finite inputs, and targets
    valid for the loss (out-of-range labels would quietly score loss 0 and accuracy 0)."""
    splits = {name: data for name, data in splits.items() if data is not None}
    if not splits:
        return
    outputs = _logits_shape(model, params, x)[-1]
    for name, data in splits.items():
        split_x, split_y = split(name, data, x)
        finite(f"{name} inputs", split_x)
        finite(f"{name} targets", split_y)
        try:
            losses.check_targets(loss, (len(split_y), outputs), split_y)
        except ValueError as error:
            raise ValueError(f"the {name} set: {error}") from None


def member_data(labels: list | None, indices: list | None, n: int) -> None:
    """Per-member labels with one row per training image, and per-member indices that are
    integers inside the training set (JAX would clamp an index past the end silently)."""
    if labels is not None:
        first = np.shape(labels[0])
        for k, member_labels in enumerate(labels):
            shape = np.shape(member_labels)
            if not shape or shape[0] != n:
                raise ValueError(f"labels of member {k} have shape {shape}; each member needs one label per "
                                 f"training image ({n},)")
            if shape != first:
                raise ValueError(f"labels of member {k} have shape {shape} but member 0's have {first}; "
                                 "every member's labels must have the same shape")
    if indices is not None:
        first = np.shape(indices[0])
        for k, member_indices in enumerate(indices):
            values = np.asarray(member_indices)
            if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"indices of member {k} must be a non-empty 1-D integer array, got shape "
                                 f"{values.shape} and dtype {values.dtype}")
            if values.shape != first:
                raise ValueError(f"indices of member {k} have shape {values.shape} but member 0's have {first}; "
                                 "every member must train on the same number of examples")
            if values.min() < 0 or values.max() >= n:
                raise ValueError(f"indices of member {k} must lie in [0, {n}) (the training set), found values "
                                 f"from {values.min()} to {values.max()}")


def members(model: Model, member_params, loss: losses.Loss, x, member_labels) -> None:
    """Every member has member 0's parameter structure, shapes and dtypes, and labels valid
    for the loss."""
    def signature(params):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
        return treedef, [(jax.tree_util.keystr(path), tuple(np.shape(leaf)), jnp.result_type(leaf).name)
                         for path, leaf in leaves]

    reference_def, reference = signature(member_params[0])
    for k, params in enumerate(member_params[1:], start=1):
        treedef, leaves = signature(params)
        if treedef != reference_def:
            raise ValueError(f"member {k}'s parameters have a different structure from member 0's; every member "
                             "of a sweep needs the same architecture (run different ones as separate sweeps)")
        for (path, shape, dtype), (_, shape0, dtype0) in zip(leaves, reference):
            if (shape, dtype) != (shape0, dtype0):
                raise ValueError(f"member {k}'s parameter {path} is {dtype}{list(shape)} but member 0's is "
                                 f"{dtype0}{list(shape0)}; every member of a sweep needs the same architecture "
                                 "(run different ones as separate sweeps)")
    outputs = _logits_shape(model, member_params[0], x)[-1]
    for k in range(1, len(member_labels)):
        try:
            finite("training targets", member_labels[k])
            losses.check_targets(loss, (len(member_labels[k]), outputs), member_labels[k])
        except ValueError as error:
            raise ValueError(f"member {k}'s labels: {error}") from None


def stopping(patience, val) -> None:
    if patience is None:
        return
    if patience < 1:
        raise ValueError(f"patience must be at least 1 check, got {patience}")
    if val is None:
        raise ValueError("early stopping (patience) watches the validation loss; pass val=(x, y)")
