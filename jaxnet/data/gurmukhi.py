"""The Gurmukhi handwritten digits, as the course hands them out, read with Pillow.

Two accepted forms:

* the course's folder: ``<root>/train/<digit>/*`` and ``<root>/val/<digit>/*``,
  32x32 bilevel BMP / TIFF / PNG images;
* ``gurmukhi_digits.npz`` (what this repository ships): arrays ``x_train``
  (1000, 32, 32) uint8, ``y_train``, ``x_val`` (178, 32, 32), ``y_val``.

Pixels are 0 (ink) or 255 (background): black digits on white, the opposite of
MNIST. The set has no test split; its ``val`` split becomes ``x_test``/``y_test``
(``Dataset.test_split == "val"``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from jaxnet.data.dataset import Dataset
from jaxnet.data.errors import CorruptDataError, MissingDataError

IMAGE_SIZE = 32
CLASS_NAMES = tuple(str(d) for d in range(10))
_IGNORED = {"thumbs.db", "desktop.ini"}


def _natural_key(path: Path) -> tuple:
    """Sorts ``7.bmp`` before ``10.bmp``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CorruptDataError(f"{path}: not a readable image ({e}).") from None
    if array.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise CorruptDataError(
            f"{path}: image is {array.shape[1]}x{array.shape[0]} pixels, expected {IMAGE_SIZE}x{IMAGE_SIZE}."
        )
    return array


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``folder/<digit>/*`` into uint8 images (N, 32, 32) and int32 labels.

    Images are ordered by digit, then by the number in the file name.
    """
    if not folder.is_dir():
        raise MissingDataError(f"{folder} does not exist; expected folders {folder}/0 ... {folder}/9.")
    images, labels = [], []
    for digit in range(len(CLASS_NAMES)):
        class_dir = folder / str(digit)
        files = sorted(
            (
                p
                for p in class_dir.glob("*")
                if p.is_file() and not p.name.startswith(".") and p.name.lower() not in _IGNORED
            ),
            key=_natural_key,
        )
        if not files:
            raise MissingDataError(f"{class_dir} is missing or holds no images.")
        images += [_read_image(p) for p in files]
        labels += [digit] * len(files)
    return np.stack(images), np.asarray(labels, np.int32)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_val", "y_val")}
    except KeyError as e:
        raise CorruptDataError(
            f"{path}: missing array {e}; expected x_train, y_train, x_val, y_val."
        ) from None
    except Exception as e:  # pylint: disable=broad-except
        raise CorruptDataError(f"{path}: not a readable .npz file ({e}).") from None
    for split in ("train", "val"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if (
            x.ndim != 3
            or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
            or x.dtype != np.uint8
            or y.shape != x.shape[:1]
        ):
            raise CorruptDataError(
                f"{path}: x_{split}/y_{split} have shapes {x.shape} {x.dtype} / {y.shape}; "
                f"expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}) uint8 and (N,)."
            )
    return arrays


def load_gurmukhi(root: str | os.PathLike | None) -> Dataset:
    """Loads the Gurmukhi digits from the course folder or from the .npz file.

    Args:
      root: the folder holding ``train/`` and ``val/``, or the ``.npz`` file.

    Returns:
      A :class:`Dataset` with ``test_split="val"``: ``x_test``/``y_test`` are the
      validation split. Pixels as in the source: 0 = ink, 255 = background.
    """
    if root is None:
        raise MissingDataError(
            "load('gurmukhi') needs root=: the gurmukhi_digits.npz file, or the folder "
            "holding train/<digit>/* and val/<digit>/*."
        )
    path = Path(root).expanduser()
    if path.is_file():
        a = _read_npz(path)
        x_train, y_train, x_val, y_val = a["x_train"], a["y_train"], a["x_val"], a["y_val"]
    elif path.is_dir():
        x_train, y_train = read_split(path / "train")
        x_val, y_val = read_split(path / "val")
    else:
        raise MissingDataError(
            f"{path} does not exist; pass root= the gurmukhi_digits.npz file "
            "or the folder holding train/ and val/."
        )
    return Dataset(
        name="gurmukhi",
        x_train=x_train,
        y_train=y_train.astype(np.int32),
        x_test=x_val,
        y_test=y_val.astype(np.int32),
        class_names=CLASS_NAMES,
        test_split="val",
    )
