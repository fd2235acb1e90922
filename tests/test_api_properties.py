"""Property-based tests of the public API (hypothesis): for random layer sizes, batch sizes,
label ranges and input dtypes, every call either returns a finite, correct result or raises
a one-line ValueError from jaxnet itself, exactly when the input is invalid. Never a NaN,
never an error from inside JAX (TypeError, XlaRuntimeError, a shape error of NumPy...)."""
from __future__ import annotations

import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnet
from helpers import tree_max_relative_error
from jaxnet import backprop, engine, losses, mlp, train

JAXNET = Path(jaxnet.__file__).resolve().parent
FAST = settings(max_examples=25, deadline=None, database=None)


def outcome(call):
    """``(result, None)``, or ``(None, error)`` for a ValueError raised by jaxnet's own code
    with a one-line message; any other exception fails the test."""
    try:
        return call(), None
    except ValueError as error:
        raised_in = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve()
        assert raised_in.is_relative_to(JAXNET), f"ValueError raised outside jaxnet ({raised_in}): {error}"
        assert str(error) and "\n" not in str(error), repr(error)
        return None, error


def inputs(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    x = rng.normal(size=shape) * 2
    return np.round(x).astype(dtype) if dtype.startswith("int") else x.astype(dtype)


DTYPES = st.sampled_from(["float32", "float64", "int32"])


@FAST
@given(sizes=st.lists(st.integers(-1, 6), min_size=0, max_size=4), batch=st.integers(1, 5),
       width_error=st.sampled_from([0, 0, 0, 1]), dtype=DTYPES, x64=st.booleans(), seed=st.integers(0, 2**16),
       hidden=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_mlp_init_and_apply(sizes, batch, width_error, dtype, x64, seed, hidden):
    valid_sizes = len(sizes) >= 2 and min(sizes) >= 1
    with jax.enable_x64(x64):
        params, error = outcome(lambda: mlp.init(jax.random.PRNGKey(seed), sizes, dtype=jnp.zeros(()).dtype))
        assert (error is None) == valid_sizes, (sizes, error)
        if error is not None:
            return
        x = inputs(np.random.default_rng(seed), (batch, sizes[0] + width_error), dtype)
        logits, error = outcome(lambda: mlp.apply(params, jnp.asarray(x), activation=mlp.activation(hidden)))
    assert (error is None) == (width_error == 0), error
    if error is None:
        assert logits.shape == (batch, sizes[-1])
        assert jnp.issubdtype(logits.dtype, jnp.floating) and bool(jnp.all(jnp.isfinite(logits)))


@FAST
@given(name=st.sampled_from(list(losses.LOSSES)), batch=st.sampled_from([1, 4]), outputs=st.sampled_from([1, 2, 5]),
       low=st.integers(-2, 0), high_extra=st.integers(-1, 1), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_losses_are_finite_and_non_negative_or_refuse_bad_labels(name, batch, outputs, low, high_extra, seed, scale):
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(rng.normal(size=(batch, outputs)) * scale, jnp.float32)
    classes = 2 if name == "binary_cross_entropy" else outputs
    labels = jnp.asarray(rng.integers(low, classes + high_extra + 1, size=batch), jnp.int32)
    valid = (outputs == 1 or name != "binary_cross_entropy") and bool(jnp.all((labels >= 0) & (labels < classes)))
    value, error = outcome(lambda: jax.value_and_grad(losses.get(name))(logits, labels))
    assert (error is None) == valid, (labels, outputs, error)
    if error is None:
        loss, grad = value
        assert bool(jnp.isfinite(loss)) and float(loss) >= -1e-6 and bool(jnp.all(jnp.isfinite(grad)))


@FAST
@given(batch=st.sampled_from([1, 4]), classes=st.sampled_from([1, 3, 10]), shift=st.sampled_from([0, 0, 1, -1]),
       seed=st.integers(0, 2**16))
def test_nll_called_directly_refuses_concrete_labels_out_of_range(batch, classes, shift, seed):
    rng = np.random.default_rng(seed)
    log_probs = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(batch, classes)), jnp.float32))
    labels = rng.integers(0, classes, size=batch)
    labels[0] = {0: labels[0], 1: classes, -1: -1}[shift]
    value, error = outcome(lambda: losses.nll(log_probs, jnp.asarray(labels)))
    assert (error is None) == (shift == 0)
    if error is None:
        assert np.isfinite(float(value)) and float(value) >= 0
        np.testing.assert_allclose(value, jax.jit(losses.nll)(log_probs, jnp.asarray(labels)), rtol=1e-6)


@FAST
@given(hidden_sizes=st.sampled_from([(), (4,), (4, 3)]), inputs_=st.just(3), outputs=st.just(3),
       batch=st.just(4), loss=st.sampled_from(list(losses.LOSSES)),
       hidden=st.sampled_from(["relu", "sigmoid", "tanh"]), l2=st.sampled_from([0.0, 0.1]),
       seed=st.integers(0, 2**16))
def test_hand_derived_gradients_equal_autodiff(hidden_sizes, inputs_, outputs, batch, loss, hidden, l2, seed):
    # few shapes (JAX compiles each op once per shape), random values, every loss and activation
    if loss == "binary_cross_entropy":
        outputs = 1
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        params = mlp.init(jax.random.PRNGKey(seed), [inputs_, *hidden_sizes, outputs], dtype=jnp.float64)
        x = jnp.asarray(rng.normal(size=(batch, inputs_)))
        if loss in ("kl_divergence", "sigmoid_cross_entropy"):
            y = jnp.asarray(rng.dirichlet(np.ones(outputs), size=batch) if loss == "kl_divergence"
                            else rng.integers(0, 2, size=(batch, outputs)).astype(float))
        else:
            y = jnp.asarray(rng.integers(0, 2 if loss == "binary_cross_entropy" else outputs, size=batch))
        activation, loss_value = mlp.activation(hidden), losses.get(loss)
        manual = backprop.grads(params, x, y, activation=activation, loss=loss_value, l2=l2)
        model = mlp.model([inputs_, *hidden_sizes, outputs], activation=activation, dtype=jnp.float64)
        value, _, autodiff = train.make_loss_and_grads(model, loss=loss_value)(params, x, y, l2)
    assert np.isfinite(float(value)) and float(value) >= 0
    error = tree_max_relative_error(manual, autodiff, floor=1e-6)
    assert error < 1e-8, error


@FAST
@given(n=st.just(8), batch=st.sampled_from([0, 4, 4, 12]), epochs=st.sampled_from([0, 1, 2]),
       label_shift=st.sampled_from([0, 0, 0, 1, -1]), val_shift=st.sampled_from([0, 0, 0, 1]),
       nan_in=st.sampled_from([None, None, None, "train", "val"]), dtype=st.sampled_from(["float32", "int32"]),
       seed=st.integers(0, 2**16))
def test_fit_on_tiny_data(n, batch, epochs, label_shift, val_shift, nan_in, dtype, seed):
    classes, features = 3, 3
    rng = np.random.default_rng(seed)
    x, val_x = inputs(rng, (n, features), dtype), inputs(rng, (4, features), dtype)
    y, val_y = np.arange(n) % classes, np.arange(4) % classes
    y[0] = {0: y[0], 1: classes, -1: -1}[label_shift]
    val_y[-1] += val_shift * classes
    if nan_in is not None:
        x, val_x = x.astype("float32"), val_x.astype("float32")
        (x if nan_in == "train" else val_x)[1, 0] = np.nan
    expect_error = not 1 <= batch <= n or epochs < 1 or label_shift != 0 or val_shift != 0 or nan_in is not None
    model = mlp.model([features, 4, classes])
    params = model.init(jax.random.PRNGKey(seed))
    result, error = outcome(lambda: engine.fit(model, params, train.make_optimizer("sgd", learning_rate=0.1), (x, y),
                                               epochs=epochs, batch_size=batch, val=(val_x, val_y), seed=seed,
                                               log=None))
    assert (error is not None) == expect_error, error
    if error is None:
        history = result.history
        assert len(history.epoch) == epochs and not history.diverged
        for name in ("train_loss", "val_loss"):
            assert all(np.isfinite(v) and v >= 0 for v in getattr(history, name)), name
        for name in ("train_accuracy", "val_accuracy"):
            assert all(0 <= v <= 1 for v in getattr(history, name)), name
        assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(result.params))
