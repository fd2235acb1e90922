"""The container every loader returns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """A labelled image dataset held as plain NumPy arrays.

    Attributes:
      name: the name passed to :func:`jaxnet.data.load`, e.g. ``"mnist"``.
      x_train: uint8 training images, shape ``(N, H, W)``.
      y_train: int32 training labels in ``[0, len(class_names))``, shape ``(N,)``.
      x_test: uint8 held-out images, shape ``(M, H, W)``.
      y_test: int32 held-out labels, shape ``(M,)``.
      class_names: human-readable name of each label, indexed by label.
      test_split: which split of the source ``x_test`` comes from: ``"test"`` for
        MNIST-like datasets; ``"val"`` for Gurmukhi, which ships no test split.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    test_split: str = "test"

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)
