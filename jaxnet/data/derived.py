"""Derived datasets: pure functions of arrays, deterministic under a seed.

Every selection keeps the original order of the examples it keeps; shuffling
for training is the training loop's business. Randomness comes from
``np.random.default_rng(seed)`` only, so the same seed always gives the same
result.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """A train/validation split, from :func:`train_val_split`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"expected N examples and N labels, got x {x.shape} and y {y.shape}")
    return x, y


def _check_count(n: int, available: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= available:
        raise ValueError(f"{what}: n must be an int in [0, {available}], got {n!r}")
    return int(n)


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Splits ``n`` over classes in proportion to ``counts`` (largest remainder)."""
    quota = counts * (n / counts.sum())
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    return take


def _stratified_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    classes, inverse = np.unique(y, return_inverse=True)
    take = _allocate(np.bincount(inverse, minlength=len(classes)), n)
    chosen = [rng.choice(np.flatnonzero(inverse == c), size=k, replace=False) for c, k in enumerate(take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def first_n(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples, as in "train on the first 2000 images".

    Args:
      x: images, shape ``(N, ...)``.
      y: labels, shape ``(N,)``.
      n: how many to keep, ``0 <= n <= N``.

    Returns:
      ``(x[:n], y[:n])``.
    """
    x, y = _check_pair(x, y)
    n = _check_count(n, len(y), "first_n")
    return x[:n], y[:n]


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random subset of ``n`` examples with the class proportions of ``y``.

    Each class gets ``n * (its share of y)`` examples, rounded so that the total
    is exactly ``n`` (largest remainder). Drawn without replacement.

    Args:
      x: images, shape ``(N, ...)``.
      y: integer labels, shape ``(N,)``.
      n: subset size, ``0 <= n <= N``.
      seed: seed for ``np.random.default_rng``.

    Returns:
      ``(x_subset, y_subset)``, in the original order.
    """
    x, y = _check_pair(x, y)
    n = _check_count(n, len(y), "stratified_subset")
    idx = _stratified_indices(y, n, np.random.default_rng(seed))
    return x[idx], y[idx]


def binary_pair(
    x: np.ndarray, y: np.ndarray, positive: int = 2, negative: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The examples of two classes, relabelled ``positive -> 1``, ``negative -> 0``.

    Args:
      x: images, shape ``(N, ...)``.
      y: integer labels, shape ``(N,)``.
      positive: the class that becomes label 1.
      negative: the class that becomes label 0.

    Returns:
      ``(x_pair, y01)``: the selected images (original order) and int32 labels 0/1.
    """
    x, y = _check_pair(x, y)
    if positive == negative:
        raise ValueError(f"binary_pair: positive and negative must differ, both are {positive}")
    for c in (positive, negative):
        if not np.any(y == c):
            raise ValueError(f"binary_pair: class {c} does not occur in y")
    mask = (y == positive) | (y == negative)
    return x[mask], (y[mask] == positive).astype(np.int32)


def train_val_split(
    x: np.ndarray, y: np.ndarray, *, val: float | int = 0.1, stratified: bool = True, seed: int
) -> Split:
    """Holds out a random validation set.

    Args:
      x: images, shape ``(N, ...)``.
      y: integer labels, shape ``(N,)``.
      val: a float in (0, 1) is a fraction of N (rounded); an int is a count.
      stratified: keep each class's share equal in both parts (up to rounding).
      seed: seed for ``np.random.default_rng``.

    Returns:
      ``Split(x_train, y_train, x_val, y_val)``, each part in the original order.
    """
    x, y = _check_pair(x, y)
    if isinstance(val, (float, np.floating)):
        if not 0.0 < val < 1.0:
            raise ValueError(f"train_val_split: a fractional val must lie in (0, 1), got {val}")
        n_val = int(round(val * len(y)))
    else:
        n_val = _check_count(val, len(y), "train_val_split")
    rng = np.random.default_rng(seed)
    if stratified:
        idx = _stratified_indices(y, n_val, rng)
    else:
        idx = np.sort(rng.permutation(len(y))[:n_val])
    is_val = np.zeros(len(y), bool)
    is_val[idx] = True
    return Split(x[~is_val], y[~is_val], x[is_val], y[is_val])


def random_labels(y: np.ndarray, *, num_classes: int, seed: int, fraction: float = 1.0) -> np.ndarray:
    """Labels replaced by uniformly random classes, for the memorization study.

    Exactly ``round(fraction * N)`` positions, chosen at random, get a label drawn
    uniformly from ``[0, num_classes)`` (which may by chance equal the true one, as
    in Zhang et al. 2017); the rest keep their label. Call it once per run and
    keep the result: the same seed always gives the same labels.

    Args:
      y: integer labels, shape ``(N,)``.
      num_classes: number of classes k.
      seed: seed for ``np.random.default_rng``.
      fraction: share of labels to corrupt, in [0, 1].

    Returns:
      New int32 labels, shape ``(N,)``; ``y`` is not modified.
    """
    y = np.asarray(y)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"random_labels: fraction must lie in [0, 1], got {fraction}")
    if num_classes < 1:
        raise ValueError(f"random_labels: num_classes must be positive, got {num_classes}")
    rng = np.random.default_rng(seed)
    out = y.astype(np.int32, copy=True)
    idx = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    out[idx] = rng.integers(0, num_classes, size=len(idx), dtype=np.int32)
    return out


def repeat_to(indices: np.ndarray, length: int) -> np.ndarray:
    """``indices`` repeated end to end until there are ``length`` of them: training subsets
    of different sizes as index lists of one length, so that one sweep trains each member
    on its own subset for the same number of steps.

    Every index appears exactly ``length // len(indices)`` times (``length`` must be a
    multiple of ``len(indices)``, so no example is seen more often than another); the order
    is ``indices, indices, …``. The sampling this gives a training loop that shuffles every
    epoch: an epoch over the repeated list is r = ``length / len(indices)`` passes over the
    subset drawn as *one* random order of the r copies (each example exactly r times per
    epoch, but two copies of one example may fall close together), rather than r separately
    shuffled passes laid end to end. Over a whole run each example is presented equally
    often either way. With ``engine.sweep(..., indices=np.stack([repeat_to(i, L) for i in
    subsets]))``, member k equals ``engine.fit`` on ``(x[repeat_to(subsets[k], L)], …)``.

    Args:
      indices: a non-empty 1-D integer array (e.g. ``np.arange(size)``, the first ``size``
        examples).
      length: the common length, a positive multiple of ``len(indices)`` (for several
        subsets, a common multiple of their sizes, e.g. ``math.lcm(*sizes)``).

    Returns:
      An int64 array of shape ``(length,)``.
    """
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"repeat_to: indices must be a non-empty 1-D integer array, got shape {indices.shape} "
                         f"and dtype {indices.dtype}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1 or length % indices.size:
        raise ValueError(f"repeat_to: length must be a positive multiple of len(indices) = {indices.size} (so that "
                         f"every example is repeated equally often), got {length!r}")
    return np.tile(indices.astype(np.int64), int(length) // indices.size)
