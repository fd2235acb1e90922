"""Classification metrics as pure functions of logits and labels."""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def predict(logits: Array) -> Array:
    """Predicted class: argmax of the logits, or z > 0 for a one-output network."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def labels_of(y: Array) -> Array:
    """Integer labels from labels (batch,) or targets (batch, outputs) (argmax)."""
    if y.ndim == 2 and y.shape[-1] > 1:
        return jnp.argmax(y, axis=-1).astype(jnp.int32)
    return y.reshape(y.shape[0]).astype(jnp.int32)


def accuracy(logits: Array, y: Array) -> Array:
    """Fraction of examples whose predicted class equals the label."""
    return jnp.mean(predict(logits) == labels_of(y))


def confusion_matrix(predictions: Array, labels: Array, num_classes: int) -> Array:
    """counts[true, predicted], shape (num_classes, num_classes)."""
    flat = labels.astype(jnp.int32) * num_classes + predictions.astype(jnp.int32)
    return jnp.bincount(flat, length=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_recall(confusion: Array) -> Array:
    """TPₖ / (examples of class k): how often class k is recognised."""
    confusion = jnp.asarray(confusion)
    return jnp.diag(confusion) / jnp.maximum(confusion.sum(axis=1), 1)


def per_class_one_vs_rest_accuracy(confusion: Array) -> Array:
    """(TPₖ + TNₖ) / N for each class k: the binary "is it k?" accuracy. With every image
    predicted as one class c, class k ≠ c scores 1 − Nₖ/N."""
    confusion = jnp.asarray(confusion)
    total = confusion.sum()
    tp = jnp.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    return (total - fp - fn) / total
