"""jaxnet.data.derived.repeat_to: training subsets of different sizes as index lists of one
length, so that one sweep trains each member on its own subset for the same number of steps
(Nielsen's more-data figure); each member equals a fit on its repeated subset."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxnet import engine, mlp, train
from jaxnet.data.derived import repeat_to
from test_engine import teacher
from test_sweep import assert_member_is_its_own_run


def test_repeat_to_tiles_every_index_equally_often():
    tiled = repeat_to(np.array([7, 3, 5]), 12)
    np.testing.assert_array_equal(tiled, [7, 3, 5] * 4)
    assert tiled.dtype == np.int64 and tiled.shape == (12,)
    counts = np.bincount(repeat_to(np.arange(100), 100_000))
    assert counts.min() == counts.max() == 1_000
    np.testing.assert_array_equal(repeat_to(np.arange(4), 4), np.arange(4))  # r = 1: unchanged


@pytest.mark.parametrize("indices, length, match", [
    (np.arange(3), 10, "multiple of len"), (np.arange(3), 0, "multiple of len"), (np.arange(3), 6.0, "multiple"),
    (np.array([], int), 6, "non-empty"), (np.zeros((2, 2), int), 8, "1-D"), (np.array([0.0, 1.0]), 4, "integer"),
])
def test_repeat_to_refuses_what_would_bias_or_break_the_sampling(indices, length, match):
    with pytest.raises(ValueError, match=match):
        repeat_to(indices, length)


def test_members_on_repeated_subsets_of_different_sizes_equal_fits_on_them():
    """Three sizes in one sweep, the same number of steps each; member k is engine.fit on
    (x[repeat_to(subset_k, L)], y[…]) with the same init and data-order seed."""
    with jax.enable_x64(True):
        x, y = teacher(120, seed=0)
        val = teacher(60, seed=1)
        sizes, length = (20, 40, 120), 120  # L = lcm(20, 40, 120)
        subsets = [np.arange(n) for n in sizes]
        indices = np.stack([repeat_to(s, length) for s in subsets])
        model = mlp.model([20, 12, 3], activation=mlp.SIGMOID, scheme="nielsen_large", dtype=x.dtype)
        optimizer = train.make_optimizer("sgd", learning_rate=0.5)
        settings = dict(init_seed=[0, 1, 2], data_seed=[5, 6, 7], l2=[5e-5, 5e-5, 5e-5])
        result = engine.sweep(model, optimizer, (x, y), indices=indices, epochs=2, batch_size=10, val=val, log=None,
                              **settings)
        assert all(h.step[-1] == 2 * length // 10 for h in result.histories)  # the same steps for every size
        for k, subset in enumerate(subsets):
            tiled = repeat_to(subset, length)
            alone = engine.fit(model, model.init(jax.random.PRNGKey(settings["init_seed"][k])), optimizer,
                               (x[tiled], y[tiled]), l2=settings["l2"][k], epochs=2, batch_size=10, val=val,
                               seed=settings["data_seed"][k], log=None)
            assert_member_is_its_own_run(result, k, alone)
        assert len({h.train_loss[-1] for h in result.histories}) == 3  # three subsets, three different runs
