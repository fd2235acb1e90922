"""Shared fixtures: where the real datasets live, and float64 for gradient checks."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))

# Many tests compile the same programs, in this process, in the other xdist worker and in the
# CLI subprocesses they start: JAX's persistent compilation cache (set here, before anything
# imports jax, and inherited by the subprocesses) compiles each of them once. It only skips
# compilations; every program still runs.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".cache" / "jax-tests"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


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
