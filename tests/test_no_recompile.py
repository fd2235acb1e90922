"""Hyperparameters are data: a second fit or sweep that changes only the learning rate, λ or
momentum compiles nothing (counted with jax.monitoring's backend-compile events), while a
structural change (another batch size, a penalty where there was none) does compile."""
import jax
import numpy as np
import pytest

from jaxnet import engine, mlp, train

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: _compiles.append(event) if event == COMPILE_EVENT else None)


def compiles_during(run) -> int:
    before = len(_compiles)
    run()
    return len(_compiles) - before


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(256, 12)).astype(np.float32), rng.integers(0, 3, 256)


MODEL = mlp.model([12, 8, 3])


def fit(data, *, optimizer="momentum", learning_rate=0.1, momentum=0.9, l2=0.01, batch_size=32):
    params = MODEL.init(jax.random.PRNGKey(0))
    opt = train.make_optimizer(optimizer, learning_rate=learning_rate, momentum=momentum)
    return engine.fit(MODEL, params, opt, data, val=data, epochs=2, batch_size=batch_size, l2=l2, log=None)


def test_new_learning_rate_lambda_and_momentum_compile_nothing(data):
    first = fit(data)
    assert compiles_during(lambda: fit(data)) == 0
    changed = {}
    assert compiles_during(lambda: changed.setdefault("r", fit(data, learning_rate=0.05, momentum=0.5, l2=0.3))) == 0
    # the new values were used: the run differs from the first
    assert changed["r"].history.train_loss != first.history.train_loss


def test_a_new_sweep_grid_compiles_nothing(data):
    def sweep(rates, lams):
        return engine.sweep(MODEL, train.make_optimizer("sgd", learning_rate=0.1), data, learning_rate=rates,
                            l2=lams, epochs=2, batch_size=32, log=None)

    first = sweep([0.1, 0.2], [0.0, 0.01])
    other = {}
    assert compiles_during(lambda: other.setdefault("r", sweep([0.3, 0.05], [0.1, 0.2]))) == 0
    assert other["r"].histories[0].train_loss != first.histories[0].train_loss


def test_structure_still_selects_a_program(data):
    # the counter can fail: a new batch size and a run without the penalty term both compile
    fit(data)
    assert compiles_during(lambda: fit(data, batch_size=64)) > 0
    assert compiles_during(lambda: fit(data, l2=None)) > 0
