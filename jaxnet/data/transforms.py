"""Preprocessing as pure NumPy functions (host-side; pass the result to ``jnp.asarray``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Mean and std of the MNIST training pixels after scale(): 33.3184/255, 78.5675/255.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def scale(x: np.ndarray) -> np.ndarray:
    """Maps integer pixels 0..255 to float32 in [0, 1].

    Args:
      x: uint8 (or other integer) images.

    Returns:
      ``x / 255`` as float32.

    Raises:
      TypeError: ``x`` is already floating point (scaling twice is a common bug).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"scale() expects integer pixels 0..255, got {x.dtype}; is it scaled already?")
    return x.astype(np.float32) / np.float32(255.0)


def normalize(x: np.ndarray, mean: float | Sequence[float], std: float | Sequence[float]) -> np.ndarray:
    """Returns ``(x - mean) / std`` as float32.

    PyTorch's ``Normalize((0.5,), (0.5,))`` (pixels to [-1, 1]) is
    ``normalize(scale(x), 0.5, 0.5)``; per-channel sequences broadcast over the
    last axis.

    Args:
      x: float images, usually ``scale(x)``.
      mean: scalar or per-channel mean.
      std: scalar or per-channel standard deviation (nonzero).

    Returns:
      The normalized float32 array.
    """
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if np.any(std == 0):
        raise ValueError("normalize(): std must be nonzero")
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)


def flatten(x: np.ndarray) -> np.ndarray:
    """Reshapes ``(N, H, W, ...)`` to ``(N, H*W*...)``."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """Returns float32 one-hot rows, shape ``(N, k)``.

    Raises:
      ValueError: a label is outside ``[0, k)``.
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"one_hot(): labels must lie in [0, {k}), got {labels.min()}..{labels.max()}")
    return (labels[..., None] == np.arange(k)).astype(np.float32)
