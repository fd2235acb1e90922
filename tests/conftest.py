"""Shared fixtures: where the real datasets live, and float64 for gradient checks."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The four official MNIST .gz files (../shared/data/mnist beside the checkout)."""
    path = SHARED / "data" / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST files not found in {path}; set JAXNET_SHARED to the folder holding data/mnist")
    return path


@pytest.fixture(scope="session")
def gurmukhi_npz() -> Path:
    path = SHARED / "data" / "gurmukhi" / "gurmukhi_digits.npz"
    if not path.exists():
        pytest.fail(f"Gurmukhi digits not found at {path}; set JAXNET_SHARED to the folder holding data/gurmukhi")
    return path
