"""Evaluation of a classifier: the mean loss and accuracy over a whole dataset in fixed-size
chunks (one compiled program for any dataset size), and the confusion-matrix summary."""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet import losses, metrics, validate
from jaxnet.mlp import Model

Array = jax.Array
CHUNK = 2048  # examples per evaluation chunk


def chunks(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index chunks of a fixed size, padded with weight-0 entries.

    Args:
      indices: (..., n) integer indices into a dataset.
    Returns:
      ``(chunk_indices, weights)``, both (..., n_chunks, size); padding has weight 0.
    """
    n = indices.shape[-1]
    size = min(CHUNK, n)
    padded = -(-n // size) * size
    pad = [(0, 0)] * (indices.ndim - 1) + [(0, padded - n)]
    weights = np.pad(np.ones(indices.shape, np.float32), pad)
    indices = np.pad(indices, pad)
    shape = indices.shape[:-1] + (padded // size, size)
    return indices.reshape(shape).astype(np.int32), weights.reshape(shape)


def mean_loss_and_accuracy(model: Model, loss: losses.Loss, params: Any, x: Array, y: Array,
                           chunk_indices: Array, weights: Array) -> tuple[Array, Array]:
    """The weighted mean loss and accuracy of ``params`` over the chunks of (x, y); traceable."""

    def chunk_totals(chunk):
        indices, weight = chunk
        logits = model.apply(params, x[indices])
        y_chunk = y[indices]
        per_example = jax.vmap(lambda z, t: loss(z[None], t[None]))(logits, y_chunk)
        correct = metrics.predict(logits) == metrics.labels_of(y_chunk)
        return jnp.sum(per_example * weight), jnp.sum(correct * weight)

    loss_sums, correct_sums = jax.lax.map(chunk_totals, (chunk_indices, weights))
    total = jnp.sum(weights)
    return jnp.sum(loss_sums) / total, jnp.sum(correct_sums) / total


@functools.lru_cache(maxsize=64)
def _classifier_program(apply, activation, loss: losses.Loss):
    """One jitted program per model and loss: mean loss, accuracy, predictions."""
    model = Model(None, apply, activation)

    def program(params, x, y, chunk_indices, weights):
        mean_loss, accuracy = mean_loss_and_accuracy(model, loss, params, x, y, chunk_indices, weights)
        predictions = jax.lax.map(lambda i: metrics.predict(apply(params, x[i])), chunk_indices)
        return mean_loss, accuracy, predictions.reshape(-1)[: x.shape[0]]

    return jax.jit(program)


def classifier(
    model: Model,
    params: Any,
    data: tuple[Array, Array],
    *,
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, confusion matrix, per-class recall and one-vs-rest accuracy.

    Args:
      model: the network (``mlp.model(...)``, ``cnn.model(...)``).
      params: its parameters.
      data: ``(x, y)``; y integer labels (n,) or targets (n, outputs).
      loss: the loss whose mean is reported.
      num_classes: the confusion matrix's size (default: the network's outputs, at least 2).
    Returns:
      A dict of plain Python numbers and nested lists (JSON-ready).
    """
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    validate.eval_data(model, params, loss, x, {"evaluation": (x, y)})
    program = _classifier_program(model.apply, model.activation, loss)
    mean_loss, accuracy, predictions = program(params, x, y, *chunks(np.arange(len(x))))
    labels = metrics.labels_of(y)
    num_classes = num_classes or max(jax.eval_shape(model.apply, params, x[:1]).shape[-1], 2)
    seen = int(max(np.max(np.asarray(labels), initial=0), np.max(np.asarray(predictions), initial=0)))
    if seen >= num_classes:  # the confusion matrix would drop those examples without a word
        raise ValueError(f"num_classes={num_classes} is too small for labels or predictions up to {seen}; pass at "
                         "least the number of classes, or None for the network's outputs")
    confusion = metrics.confusion_matrix(predictions, labels, num_classes)
    return {
        "loss": float(mean_loss),
        "accuracy": float(accuracy),
        "confusion_matrix": np.asarray(confusion).tolist(),
        "per_class_recall": np.asarray(metrics.per_class_recall(confusion)).tolist(),
        "per_class_one_vs_rest_accuracy": np.asarray(metrics.per_class_one_vs_rest_accuracy(confusion)).tolist(),
    }
