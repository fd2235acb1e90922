"""Preprocessing and derived datasets: pure, deterministic under a seed."""

import numpy as np
import pytest

from jaxnet import data


@pytest.fixture(scope="module")
def toy():
    """300 images, imbalanced classes 0..4 (counts 100, 80, 60, 40, 20), x[i] encodes i."""
    y = np.repeat(np.arange(5), [100, 80, 60, 40, 20]).astype(np.int32)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    x = np.arange(len(y))[:, None, None] * np.ones((1, 4, 4), np.int64)
    return x, y


def test_scale_normalize_flatten_one_hot():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    s = data.scale(x)
    assert s.dtype == np.float32 and s.min() == 0.0 and s.max() == 1.0
    n = data.normalize(s, (0.5,), (0.5,))  # torchvision Normalize((0.5,), (0.5,))
    assert n.dtype == np.float32 and n.min() == -1.0 and n.max() == 1.0
    np.testing.assert_allclose(data.normalize(s, 0.5, 0.5), n)
    with pytest.raises(TypeError, match="scaled already"):
        data.scale(s)
    assert data.flatten(np.zeros((3, 28, 28))).shape == (3, 784)
    oh = data.one_hot(np.array([2, 0]), 3)
    np.testing.assert_array_equal(oh, [[0, 0, 1], [1, 0, 0]])
    assert oh.dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        data.one_hot(np.array([3]), 3)


def test_first_n(toy):
    x, y = toy
    xs, ys = data.first_n(x, y, 7)
    np.testing.assert_array_equal(xs, x[:7])
    np.testing.assert_array_equal(ys, y[:7])
    with pytest.raises(ValueError):
        data.first_n(x, y, 301)


def test_stratified_subset(toy):
    x, y = toy
    xs, ys = data.stratified_subset(x, y, 30, seed=1)
    assert len(xs) == 30
    assert np.bincount(ys).tolist() == [10, 8, 6, 4, 2]  # same proportions as y
    np.testing.assert_array_equal(y[xs[:, 0, 0]], ys)  # images stay with their labels
    assert np.all(np.diff(xs[:, 0, 0]) > 0)  # original order, no duplicates
    xs2, ys2 = data.stratified_subset(x, y, 30, seed=1)
    np.testing.assert_array_equal(xs, xs2)
    np.testing.assert_array_equal(ys, ys2)
    xs3, _ = data.stratified_subset(x, y, 30, seed=2)
    assert not np.array_equal(xs, xs3)
    _, y_odd = data.stratified_subset(x, y, 33, seed=0)
    assert len(y_odd) == 33 and np.all(np.abs(np.bincount(y_odd) - 33 * np.bincount(y) / 300) < 1)


def test_binary_pair(toy):
    x, y = toy
    xb, yb = data.binary_pair(x, y, positive=2, negative=3)
    assert len(xb) == 100 and yb.dtype == np.int32
    assert set(yb.tolist()) == {0, 1}
    np.testing.assert_array_equal(yb, (y[xb[:, 0, 0]] == 2).astype(np.int32))
    assert yb.sum() == 60  # class 2 -> 1, class 3 -> 0
    with pytest.raises(ValueError, match="does not occur"):
        data.binary_pair(x, y, positive=2, negative=9)


@pytest.mark.parametrize("val, n_val", [(0.1, 30), (45, 45)])
def test_train_val_split(toy, val, n_val):
    x, y = toy
    split = data.train_val_split(x, y, val=val, seed=3)
    assert len(split.x_val) == n_val and len(split.x_train) == 300 - n_val
    ids = np.concatenate([split.x_train[:, 0, 0], split.x_val[:, 0, 0]])
    assert sorted(ids.tolist()) == list(range(300))  # a partition
    np.testing.assert_array_equal(split.y_val, y[split.x_val[:, 0, 0]])
    assert np.all(np.abs(np.bincount(split.y_val, minlength=5) - n_val * np.bincount(y) / 300) < 1)
    again = data.train_val_split(x, y, val=val, seed=3)
    np.testing.assert_array_equal(split.x_val, again.x_val)
    x_tr, y_tr, x_v, y_v = data.train_val_split(x, y, val=val, stratified=False, seed=3)
    assert len(x_v) == n_val and len(x_tr) == 300 - n_val
    with pytest.raises(ValueError):
        data.train_val_split(x, y, val=1.5, seed=0)


def test_random_labels(toy):
    _, y = toy
    r = data.random_labels(y, num_classes=5, seed=0)
    assert r.dtype == np.int32 and r.shape == y.shape and r.min() >= 0 and r.max() < 5
    np.testing.assert_array_equal(r, data.random_labels(y, num_classes=5, seed=0))  # fixed
    assert not np.array_equal(r, data.random_labels(y, num_classes=5, seed=1))
    assert np.mean(r == y) < 0.4  # about 1/5 agree by chance
    half = data.random_labels(y, num_classes=5, seed=0, fraction=0.5)
    assert np.mean(half == y) >= 0.5  # the untouched half keeps its labels
    np.testing.assert_array_equal(data.random_labels(y, num_classes=5, seed=0, fraction=0.0), y)
    y_before = y.copy()
    data.random_labels(y, num_classes=5, seed=0)
    np.testing.assert_array_equal(y, y_before)  # pure


def test_derived_on_real_mnist_shapes(mnist_dir, tmp_path_factory):
    """The 2000-image overfitting subset and the 2-vs-3 pair on the real labels."""
    ds = data.load("mnist", data_dir=tmp_path_factory.mktemp("d"), manual_dir=mnist_dir)
    xs, ys = data.stratified_subset(ds.x_train, ds.y_train, 2000, seed=0)
    counts = np.bincount(ys, minlength=10)
    assert counts.sum() == 2000
    assert np.all(np.abs(counts - 2000 * np.bincount(ds.y_train) / 60000) < 1)
    xb, yb = data.binary_pair(ds.x_train, ds.y_train, positive=2, negative=3)
    assert len(xb) == 5958 + 6131 and yb.sum() == 5958
