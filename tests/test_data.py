"""Loaders: real MNIST through tfds' manual dir + checksums, the errors, and Gurmukhi."""

import gzip
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxnet import data
from jaxnet.data import mnist as mnist_mod

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """No test may read the user's env vars or write to the home directory."""
    for var in ("JAXNET_DATA_DIR", "JAXNET_MANUAL_DIR", "TFDS_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def offline(monkeypatch):
    """The network is unreachable: every connection attempt fails at once."""

    attempts = []  # the timeout of every connection attempt

    def refuse(*args, timeout=None, **kwargs):
        attempts.append(timeout)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ------------------------------------------------------------------ MNIST, real files


@pytest.fixture(scope="module")
def mnist_loaded(mnist_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    first = data.load("mnist", data_dir=data_dir, manual_dir=mnist_dir)
    cached = data.load("mnist", data_dir=data_dir, manual_dir=mnist_dir)
    return first, cached, data_dir


def test_mnist_real_files(mnist_loaded):
    ds, _, _ = mnist_loaded
    assert ds.name == "mnist" and ds.test_split == "test"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 28, 28) and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int32 and ds.y_test.shape == (10000,)
    assert np.bincount(ds.y_train).tolist() == TRAIN_COUNTS
    assert ds.x_train.mean() == pytest.approx(33.3184, abs=1e-3)
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.class_names == tuple("0123456789") and ds.num_classes == 10
    assert "tensorflow" not in sys.modules  # TF is never needed


def test_mnist_cache(mnist_loaded):
    first, cached, data_dir = mnist_loaded
    assert (data_dir / "jaxnet" / "mnist.npz").is_file()
    for a, b in zip(first[1:5], cached[1:5]):
        np.testing.assert_array_equal(a, b)


def test_mnist_cache_needs_no_source_files(mnist_loaded, tmp_path):
    """The second load reads the cache: it works even with the manual dir gone."""
    first, _, data_dir = mnist_loaded
    again = data.load("mnist", data_dir=data_dir, manual_dir=tmp_path / "nowhere")
    np.testing.assert_array_equal(again.x_test, first.x_test)


def test_manual_dir_from_env(mnist_dir, tmp_path, monkeypatch):
    """JAXNET_MANUAL_DIR is used when no manual_dir is passed (labels only: fast)."""
    monkeypatch.setenv("JAXNET_MANUAL_DIR", str(mnist_dir))
    monkeypatch.setenv("JAXNET_DATA_DIR", str(tmp_path))
    assert data.resolve_manual_dir() == Path(mnist_dir).absolute()
    assert data.resolve_data_dir() == tmp_path.absolute()
    monkeypatch.delenv("JAXNET_MANUAL_DIR")
    assert data.resolve_manual_dir() == tmp_path.absolute() / "downloads" / "manual"
    assert data.resolve_manual_dir(data_dir="/x") == Path("/x/downloads/manual")


def test_files_from_default_manual_dir_are_verified(mnist_dir, tmp_path):
    """Files in <data_dir>/downloads/manual (tfds's convention) are found and checked."""
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    for name in MNIST_FILES:
        (manual / name).symlink_to(Path(mnist_dir).absolute() / name)
    paths = mnist_mod.fetch_files(
        "mnist", data_dir=tmp_path, manual_dir=data.resolve_manual_dir(None, tmp_path)
    )
    assert {p.name for p in paths.values()} == set(MNIST_FILES)


def test_checksum_mismatch(mnist_dir, tmp_path, offline):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in MNIST_FILES:
        (manual / name).symlink_to(Path(mnist_dir).absolute() / name)
    bad = manual / "train-labels-idx1-ubyte.gz"
    bad.unlink()
    raw = bytearray((Path(mnist_dir) / bad.name).read_bytes())
    raw[100] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.ChecksumError) as info:
        data.load("mnist", data_dir=tmp_path / "data", manual_dir=manual)
    msg = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in msg and "not used" in msg
    assert "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c" in msg  # expected
    import hashlib

    assert hashlib.sha256(bytes(raw)).hexdigest() in msg  # got
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "data" / "jaxnet" / "mnist.npz").exists()


def test_missing_files_offline_fails_fast(tmp_path, offline):
    manual = tmp_path / "empty_manual"
    manual.mkdir()
    with pytest.raises(data.MissingDataError) as info:
        data.load("mnist", data_dir=tmp_path / "data", manual_dir=manual)
    assert offline == [mnist_mod.NETWORK_TIMEOUT_S]  # one probe, with the timeout; no download was tried
    msg = str(info.value)
    for name in MNIST_FILES:
        assert name in msg
    assert str(manual.absolute()) in msg
    assert "--manual-dir" in msg and "JAXNET_MANUAL_DIR" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_files_default_dir_named(tmp_path, offline):
    with pytest.raises(data.MissingDataError, match=str(tmp_path / "downloads" / "manual")):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_stalled_network_does_not_hang(tmp_path, monkeypatch):
    """A connection (or DNS lookup) that never answers is cut off by the timeout: the load gives up while the
    connection attempt is still blocked."""
    release, answered = threading.Event(), threading.Event()

    def stall(*args, **kwargs):
        release.wait(120)
        answered.set()
        raise OSError("stalled (test)")

    monkeypatch.setattr(socket, "create_connection", stall)
    monkeypatch.setattr(mnist_mod, "NETWORK_TIMEOUT_S", 0.3)
    try:
        with pytest.raises(data.MissingDataError, match="unreachable"):
            data.load("kmnist", data_dir=tmp_path, manual_dir=tmp_path / "nothing_here")
        assert not answered.is_set()  # the attempt never returned, yet the load has
    finally:
        release.set()


def test_another_datasets_files_are_named_as_such(mnist_dir, tmp_path):
    """Fashion-MNIST asked for with --manual-dir at the MNIST folder: the files are valid, only the wrong dataset's,
    so the advice is the folder (or the dataset), not replacing a file."""
    with pytest.raises(data.ChecksumError) as info:
        data.load("fashion_mnist", data_dir=tmp_path / "data", manual_dir=mnist_dir)
    msg = str(info.value)
    assert "It is the official mnist file, not the fashion_mnist one" in msg and "--manual-dir" in msg, msg
    assert "Replace it" not in msg


def test_registered_files_come_from_tfds():
    for name in ("mnist", "fashion_mnist", "kmnist"):
        files = mnist_mod.registered_files(name)
        assert list(files) == list(MNIST_FILES)
        assert all(len(info.checksum) == 64 for _, info in files.values())


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_idx_roundtrip_and_truncation(tmp_path):
    x = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(x)))
    np.testing.assert_array_equal(data.read_idx(path), x)
    path.write_bytes(gzip.compress(_idx_bytes(x)[:-7]))
    with pytest.raises(data.CorruptDataError, match=r"x-idx3-ubyte\.gz is truncated"):
        data.read_idx(path)
    path.write_bytes(gzip.compress(_idx_bytes(x))[:-20])  # gzip stream cut short
    with pytest.raises(data.CorruptDataError, match="truncated"):
        data.read_idx(path)
    with pytest.raises(data.CorruptDataError, match="bad magic"):
        data.parse_idx(b"\x1f\x8b\x08\x00junk", source="junk")


def test_unknown_name_and_misplaced_root():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="root= is for 'gurmukhi'"):
        data.load("mnist", root="x")


# ------------------------------------------------------------------ Gurmukhi


@pytest.fixture(scope="module")
def gurmukhi_arrays(gurmukhi_npz):
    with np.load(gurmukhi_npz) as z:
        return {k: z[k] for k in ("x_train", "y_train", "x_val", "y_val")}


@pytest.fixture(scope="module")
def gurmukhi_folder(gurmukhi_arrays, tmp_path_factory):
    """The course's layout: train/<digit>/<n>.bmp (1-bit), val/<digit>/<n>.tiff or .png."""
    root = tmp_path_factory.mktemp("gurmukhi")
    for split in ("train", "val"):
        x, y = gurmukhi_arrays[f"x_{split}"], gurmukhi_arrays[f"y_{split}"]
        counters = {}
        for i, (image, label) in enumerate(zip(x, y)):
            counters[label] = counters.get(label, 0) + 1  # 1, 2, ..., 10: tests natural order
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            ext = "bmp" if split == "train" else ("tiff" if i % 2 else "png")
            Image.fromarray(image).convert("1").save(folder / f"{counters[label]}.{ext}")
    (root / "train" / "3" / ".DS_Store").write_bytes(b"junk")  # hidden files are skipped
    return root


def test_gurmukhi_folder_matches_npz(gurmukhi_folder, gurmukhi_arrays):
    ds = data.load("gurmukhi", root=gurmukhi_folder)
    assert ds.test_split == "val" and ds.name == "gurmukhi"
    assert ds.x_train.shape == (1000, 32, 32) and ds.x_test.shape == (178, 32, 32)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.x_train, gurmukhi_arrays["x_train"])
    np.testing.assert_array_equal(ds.y_train, gurmukhi_arrays["y_train"])
    np.testing.assert_array_equal(ds.x_test, gurmukhi_arrays["x_val"])
    np.testing.assert_array_equal(ds.y_test, gurmukhi_arrays["y_val"])
    assert np.bincount(ds.y_train).tolist() == [100] * 10
    assert set(np.unique(ds.x_train).tolist()) == {0, 255}


def test_gurmukhi_npz_and_invert(gurmukhi_npz, gurmukhi_arrays):
    ds = data.load("gurmukhi", root=gurmukhi_npz)
    np.testing.assert_array_equal(ds.x_train, gurmukhi_arrays["x_train"])
    assert ds.x_train.mean() == pytest.approx(184.41, abs=0.01)  # mostly white background
    inv = data.load("gurmukhi", root=gurmukhi_npz, invert=True)
    np.testing.assert_array_equal(inv.x_train, 255 - gurmukhi_arrays["x_train"])
    np.testing.assert_array_equal(inv.x_test, 255 - gurmukhi_arrays["x_val"])
    assert inv.x_train.dtype == np.uint8 and inv.x_train.mean() < 128  # white digit on black


def _copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_gurmukhi_wrong_size_image(gurmukhi_folder, tmp_path):
    root = _copy_tree(gurmukhi_folder, tmp_path / "g")
    bad = sorted((root / "val" / "4").glob("*.png"))[0]
    Image.new("L", (28, 28), 255).save(bad)
    with pytest.raises(
        data.CorruptDataError, match=f"{bad.name}: image is 28x28 pixels, expected 32x32".replace(".", r"\.")
    ):
        data.load("gurmukhi", root=root)


def test_gurmukhi_unreadable_image(gurmukhi_folder, tmp_path):
    root = _copy_tree(gurmukhi_folder, tmp_path / "g")
    bad = root / "train" / "7" / "5.bmp"
    bad.write_bytes(b"BM this is not a bitmap")
    with pytest.raises(data.CorruptDataError, match=str(bad).replace(".", r"\.") + ": not a readable image"):
        data.load("gurmukhi", root=root)


def test_gurmukhi_missing(tmp_path):
    with pytest.raises(data.MissingDataError, match="needs root="):
        data.load("gurmukhi")
    with pytest.raises(data.MissingDataError, match="does not exist"):
        data.load("gurmukhi", root=tmp_path / "nope")
    (tmp_path / "train" / "0").mkdir(parents=True)
    with pytest.raises(data.MissingDataError, match="holds no images"):
        data.load("gurmukhi", root=tmp_path)
