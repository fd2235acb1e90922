"""``load()``: one entry point for every dataset."""

from __future__ import annotations

import os

import numpy as np

from jaxnet.data import mnist as _mnist
from jaxnet.data.dataset import Dataset
from jaxnet.data.gurmukhi import load_gurmukhi

IDX_DATASETS = ("mnist", "fashion_mnist", "kmnist")
DATASETS = IDX_DATASETS + ("gurmukhi",)


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    invert: bool = False,
) -> Dataset:
    """Loads a dataset as NumPy arrays: uint8 images (N, H, W), int32 labels.

    ``mnist``, ``fashion_mnist`` and ``kmnist``: the official IDX files are taken
    from the manual directory if they are there, else downloaded by tfds; either
    way checked against tfds' registered sha256, decoded with NumPy (TensorFlow is
    never needed) and cached in ``<data_dir>/jaxnet/<name>.npz``, so later loads
    skip all of this. ``gurmukhi`` is read from ``root`` (folder or .npz); its
    ``x_test``/``y_test`` are its val split.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"kmnist"`` or ``"gurmukhi"``.
      data_dir: downloads and cache; default ``$JAXNET_DATA_DIR``, else
        ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``.
      manual_dir: folder holding the four ``.gz`` files; default
        ``$JAXNET_MANUAL_DIR``, else ``<data_dir>/downloads/manual``.
      root: for ``gurmukhi`` only: ``gurmukhi_digits.npz`` or the folder holding
        ``train/<digit>/*`` and ``val/<digit>/*``.
      invert: return ``255 - x``: for Gurmukhi (black ink on white) this gives
        MNIST polarity, a white digit on black.

    Returns:
      A :class:`Dataset`.

    Raises:
      MissingDataError: files absent and not downloadable; the message says which
        files to put where.
      ChecksumError: a file differs from the official one.
      CorruptDataError: a truncated IDX file, an unreadable or wrongly sized image.
    """
    key = name.lower().replace("-", "_")
    if key in IDX_DATASETS:
        if root is not None:
            raise ValueError(
                f"root= is for 'gurmukhi'; for {name!r} use manual_dir= (the folder "
                "holding the four .gz files)"
            )
        ds = _mnist.load_idx_dataset(key, data_dir=data_dir, manual_dir=manual_dir)
    elif key == "gurmukhi":
        ds = load_gurmukhi(root)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if invert:
        ds = ds._replace(x_train=np.uint8(255) - ds.x_train, x_test=np.uint8(255) - ds.x_test)
    return ds
