"""jaxnet.diagnostics against independent references, in float64 (docs/diagnostics.md).

  * per-example gradients: the hand-derived outer products aᵢ ⊗ Bδᵢ (from backprop.deltas)
    equal ``vmap(grad)``, and each row equals ``jax.grad`` of that example alone;
  * per-example norms and B_simple = tr(Σ)/‖G‖² equal NumPy on the materialised gradients;
  * Hessian-vector products (jvp of grad) equal ``jax.hessian`` column by column, and
    central differences of the *hand-derived* gradient;
  * Lanczos Ritz values equal ``numpy.linalg.eigvalsh`` of the full Hessian.

The gradient checks run on the networks of the gradient grid (tests/test_backprop.py).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from helpers import tree_max_relative_error
from jaxnet import backprop, diagnostics, engine, losses, mlp, train
from test_backprop import (  # noqa: F401 (float64: autouse x64)
    ACTIVATIONS, GRID, GRID_IDS, LAMBDAS, LOSSES, float64, problem, total_loss)

# Every grid check runs on all 108 networks of the gradient grid (activation × depth × loss
# × λ) with `pytest -m slow`. Each network compiles its own programs (~1 s of CPU, a Hessian
# ~2 s), so the default suite runs a covering six: every loss once, every activation at
# depths 1 and 3 and at both λ.
COVER = [(ACTIVATIONS[k % 3], 3 if k < 3 else 1, loss, LAMBDAS[k % 2]) for k, loss in enumerate(LOSSES)]

def cells(default):
    return [pytest.param(*cell, id=name, marks=() if cell in default else pytest.mark.slow)
            for cell, name in zip(GRID, GRID_IDS)]

def flat_hessian(params, x, y, *, activation, loss, lam):
    """The full P × P Hessian by ``jax.hessian`` (reverse-over-forward), the reference."""
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda theta: total_loss(unravel(theta), x, y, activation=activation, loss=loss, lam=lam)))(flat)


def flatten_rows(tree):
    """(B, P): a pytree with a leading batch axis, each row ravelled like ``params``."""
    return jax.vmap(lambda t: ravel_pytree(t)[0])(tree)


# --- per-example gradients ----------------------------------------------------------------


@pytest.fixture
def eager():
    """Op-by-op execution: across the grid's small networks XLA's per-op cache is reused,
    where jit would compile a new program for every (activation, loss, depth)."""
    with jax.disable_jit():
        yield


@pytest.mark.usefixtures("eager")
@pytest.mark.parametrize("activation, depth, loss, lam", cells(COVER))
def test_manual_per_example_grads_equal_vmap_of_grad(activation, depth, loss, lam):
    params, x, y = problem(activation, depth, loss)
    kwargs = dict(activation=activation, loss=loss, l2=lam)
    auto = diagnostics.per_example_grads(params, x, y, **kwargs)
    manual = diagnostics.manual_per_example_grads(params, x, y, **kwargs)
    error = tree_max_relative_error(manual, auto, floor=1e-8)
    assert error <= 1e-10, f"max relative error {error:.2e}"
    # Their mean is the batch gradient: the convention G = (1/B) Σᵢ gᵢ.
    mean = jax.tree.map(lambda leaf: leaf.mean(axis=0), manual)
    assert tree_max_relative_error(mean, backprop.grads(params, x, y, **kwargs), floor=1e-8) <= 1e-10
    # ‖gᵢ‖ from the outer-product identity equals the norm of the materialised rows.
    norms = diagnostics.per_example_grad_norms(params, x, y, **kwargs)
    np.testing.assert_allclose(norms, jnp.linalg.norm(flatten_rows(auto), axis=1), rtol=1e-10)


def test_per_example_grad_is_the_gradient_of_that_example_alone():
    activation = mlp.TANH
    params, x, y = problem(activation, 1, losses.SOFTMAX_CROSS_ENTROPY)
    rows = diagnostics.per_example_grads(params, x, y, activation=activation, l2=0.1)
    for i in range(x.shape[0]):
        alone = jax.grad(total_loss)(params, x[i : i + 1], y[i : i + 1], activation=activation,
                                     loss=losses.SOFTMAX_CROSS_ENTROPY, lam=0.1)
        row = jax.tree.map(lambda leaf: leaf[i], rows)
        assert tree_max_relative_error(row, alone, floor=1e-8) <= 1e-12


@pytest.mark.parametrize("activation, loss, lam", [(mlp.RELU, losses.SOFTMAX_CROSS_ENTROPY, 0.0),
                                                   (mlp.TANH, losses.MSE, 0.1), (mlp.SIGMOID, losses.KL_DIVERGENCE, 0.0)],
                         ids=["relu-softmax_cross_entropy-0.0", "tanh-mse-0.1", "sigmoid-kl_divergence-0.0"])
def test_gradient_noise_scale_equals_numpy_covariance(activation, lam, loss):
    params, x, y = problem(activation, 3, loss)
    result = diagnostics.gradient_noise_scale(params, x, y, activation=activation, loss=loss, l2=lam)
    rows = np.asarray(flatten_rows(diagnostics.per_example_grads(params, x, y, activation=activation, loss=loss, l2=lam)))
    trace_sigma = np.trace(np.cov(rows, rowvar=False))  # unbiased, ddof = 1
    grad_norm_sq = np.sum(rows.mean(axis=0) ** 2)
    np.testing.assert_allclose(result.trace_sigma, trace_sigma, rtol=1e-10)
    np.testing.assert_allclose(result.grad_norm_sq, grad_norm_sq, rtol=1e-12)
    np.testing.assert_allclose(result.b_simple, trace_sigma / grad_norm_sq, rtol=1e-10)


def test_gradient_noise_scale_is_zero_for_a_batch_of_copies():
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    copies_x, copies_y = jnp.repeat(x[:1], 6, axis=0), jnp.repeat(y[:1], 6, axis=0)
    result = diagnostics.gradient_noise_scale(params, copies_x, copies_y, activation=mlp.TANH, l2=0.1)
    assert abs(float(result.b_simple)) < 1e-12
    assert float(result.grad_norm_sq) > 1e-3


def test_gradient_noise_scale_rejects_a_batch_of_one():
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    with pytest.raises(ValueError, match="at least 2 examples, got 1"):
        diagnostics.gradient_noise_scale(params, x[:1], y[:1], activation=mlp.TANH)


# --- Hessian-vector products --------------------------------------------------------------


@pytest.mark.parametrize("activation, depth, loss, lam", cells(COVER))
def test_hvp_equals_jax_hessian(activation, depth, loss, lam):
    """Every column: H eⱼ by forward-over-reverse equals jax.hessian's column j."""
    params, x, y = problem(activation, depth, loss)
    flat, unravel = ravel_pytree(params)

    @jax.jit  # one program for both: compiling dominates on networks this small
    def both(theta):
        reference = jax.hessian(lambda t: total_loss(unravel(t), x, y, activation=activation, loss=loss, lam=lam))(theta)
        columns = jax.vmap(lambda e: ravel_pytree(
            diagnostics.hvp(unravel(theta), unravel(e), x, y, activation=activation, loss=loss, l2=lam))[0])(
            jnp.eye(theta.size, dtype=theta.dtype))
        return reference, columns

    reference, columns = both(flat)
    scale = float(jnp.max(jnp.abs(reference)))
    error = float(jnp.max(jnp.abs(columns.T - reference))) / scale
    assert error <= 1e-12, f"max |HVP − jax.hessian| / max|H| = {error:.2e}"


@pytest.mark.usefixtures("eager")
@pytest.mark.parametrize("activation, depth, loss, lam", cells(COVER))
def test_hvp_equals_finite_differences_of_hand_gradients(activation, depth, loss, lam):
    """Hv ≈ (g(θ + εv) − g(θ − εv)) / 2ε with g the hand-derived gradient: no autodiff in
    the reference. Error: truncation ε²‖g‴‖/6 + rounding ε_mach‖g‖/ε, both ≈ 1e-11."""
    params, x, y = problem(activation, depth, loss)
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(7), flat.shape, flat.dtype)
    eps = 1e-5

    def hand_grad(theta):
        return ravel_pytree(backprop.grads(unravel(theta), x, y, activation=activation, loss=loss, l2=lam))[0]

    numeric = (hand_grad(flat + eps * v) - hand_grad(flat - eps * v)) / (2 * eps)
    product = ravel_pytree(diagnostics.hvp(params, unravel(v), x, y, activation=activation, loss=loss, l2=lam))[0]
    error = float(jnp.max(jnp.abs(product - numeric) / jnp.maximum(jnp.abs(numeric), 1e-3)))
    assert error <= 1e-6, f"max relative error {error:.2e}"


# --- the top of the spectrum --------------------------------------------------------------


@pytest.mark.parametrize("activation, loss", [(mlp.RELU, losses.SOFTMAX_CROSS_ENTROPY), (mlp.TANH, losses.MSE)],
                         ids=["relu-softmax_cross_entropy", "tanh-mse"])
def test_lanczos_with_p_steps_gives_the_whole_spectrum(activation, loss):
    """With k = P steps the Ritz values are every eigenvalue of H (numpy.linalg.eigvalsh),
    repeated ones included (dead relu units give a block of exact zeros)."""
    params, x, y = problem(activation, 3, loss)
    reference = np.linalg.eigvalsh(np.asarray(flat_hessian(params, x, y, activation=activation, loss=loss, lam=0.0)))
    ritz = diagnostics.hessian_ritz_values(params, x, y, activation=activation, loss=loss,
                                           iterations=reference.size, key=jax.random.key(0))
    scale = np.max(np.abs(reference))
    assert np.max(np.abs(np.asarray(ritz) - reference)) / scale <= 1e-10


@functools.lru_cache(maxsize=None)
def wider_problem(activation: mlp.Activation):
    """A 12-10-8-4 network (P = 254) on 32 examples: big enough that 20 Lanczos steps
    see only a corner of the spectrum."""
    key_p, key_x, key_y = jax.random.split(jax.random.key(3), 3)
    params = mlp.init(key_p, [12, 10, 8, 4], scheme="uniform", dtype=jnp.float64)
    x = jax.random.normal(key_x, (32, 12), jnp.float64)
    y = jax.random.randint(key_y, (32,), 0, 4)
    return params, x, y


def test_top_eigenvalue_after_20_steps_matches_eigvalsh():
    activation = mlp.RELU
    params, x, y = wider_problem(activation)
    reference = np.linalg.eigvalsh(np.asarray(
        flat_hessian(params, x, y, activation=activation, loss=losses.SOFTMAX_CROSS_ENTROPY, lam=0.0)))
    top = diagnostics.top_hessian_eigenvalue(params, x, y, activation=activation, iterations=20, key=jax.random.key(1))
    assert abs(float(top) - reference[-1]) / reference[-1] <= 1e-8, (float(top), reference[-1])


def test_lanczos_finds_the_largest_eigenvalue_not_the_largest_magnitude():
    """Power iteration would return −5 here; the sharpness is the algebraic maximum 3."""
    spectrum = jnp.array([-5.0, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0], jnp.float64)
    rotation, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (7, 7), jnp.float64))
    matrix = rotation @ jnp.diag(spectrum) @ rotation.T
    v0 = jnp.ones(7, jnp.float64)
    ritz = diagnostics.lanczos(lambda v: matrix @ v, v0, iterations=7, key=jax.random.key(1))
    np.testing.assert_allclose(ritz, spectrum, atol=1e-12)
    five = diagnostics.lanczos(lambda v: matrix @ v, v0, iterations=5, key=jax.random.key(1))  # 5 distinct values
    np.testing.assert_allclose(np.asarray(five)[[0, -1]], [-5.0, 3.0], atol=1e-12)


def test_lanczos_rejects_zero_iterations():
    with pytest.raises(ValueError, match="at least one iteration, got 0"):
        diagnostics.lanczos(lambda v: v, jnp.ones(3), iterations=0, key=jax.random.key(0))


TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # one per jit cache miss (a new signature traced)
_traces = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: _traces.append(event) if event == TRACE_EVENT else None)


def traces_during(run) -> int:
    before = len(_traces)
    run()
    return len(_traces) - before


def test_ritz_values_compile_once_across_params_and_keys():
    """The first call traces (and compiles) the program; other parameters and keys reuse it.
    (Counted by jax.monitoring's trace events: the checked wrapper around the jitted function
    does not expose its ``_cache_size``; tracing is counted even on a persistent-cache hit.)"""
    params, x, y = wider_problem(mlp.TANH)
    moved = [jax.tree.map(lambda leaf: leaf * (1 + 0.1 * seed), params) for seed in range(3)]
    keys = [jax.random.key(seed) for seed in range(3)]

    def ritz(seed):
        return diagnostics.hessian_ritz_values(moved[seed], x, y, activation=mlp.TANH, iterations=20, key=keys[seed])

    assert traces_during(lambda: ritz(0)) > 0  # the counter sees a new program
    assert traces_during(lambda: [ritz(1), ritz(2)]) == 0


# --- dead units -----------------------------------------------------------------------------


def test_dead_unit_fraction_counts_units_off_on_every_example():
    params, x, _ = wider_problem(mlp.RELU)

    def reference(p):  # z ≤ 0 on every row, counted in NumPy
        zs, _ = mlp.forward(p, x, activation=mlp.RELU)
        return [float(np.mean(np.all(np.asarray(z) <= 0, axis=0))) for z in zs[:-1]]

    before = diagnostics.dead_unit_fraction(params, x)
    np.testing.assert_allclose(before, reference(params))
    killed = [dict(layer) for layer in params]
    killed[0]["b"] = killed[0]["b"].at[jnp.array([0, 3, 7])].set(-1e3)  # 3 of 10 units never fire
    alive = int(jnp.flatnonzero(jnp.any(mlp.forward(params, x)[0][1] > 0, axis=0))[0])
    killed[1]["b"] = killed[1]["b"].at[alive].set(-1e3)  # 1 more of 8
    after = diagnostics.dead_unit_fraction(killed, x)
    np.testing.assert_allclose(after, reference(killed))
    assert float(before[0]) == 0.0 and float(after[0]) == pytest.approx(0.3)
    assert float(after[1]) == pytest.approx(float(before[1]) + 1 / 8)
    assert diagnostics.dead_unit_fraction(params, x, activation=mlp.TANH).tolist() == [0.0, 0.0]


# --- the training probe -------------------------------------------------------------------


def small_classification(seed=0, n=96, inputs=12, classes=4):
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (n, inputs)), jax.random.randint(ky, (n,), 0, classes)


def test_curvature_probe_measures_what_the_functions_measure():
    with jax.enable_x64(False):  # float32, as in training
        x, y = small_classification()
        params = mlp.init(jax.random.key(1), [12, 10, 8, 4])
        probe = diagnostics.curvature_probe(x[:32], y[:32], iterations=12, key=jax.random.key(2))
        values = jax.jit(probe)(params)
        assert sorted(values) == ["dead_1", "dead_2", "lambda_max", "noise_scale"]
        np.testing.assert_allclose(values["lambda_max"], diagnostics.top_hessian_eigenvalue(
            params, x[:32], y[:32], iterations=12, key=jax.random.key(2)), rtol=1e-5)
        np.testing.assert_allclose(values["noise_scale"],
                                   diagnostics.gradient_noise_scale(params, x[:32], y[:32]).b_simple, rtol=1e-5)
        np.testing.assert_allclose([values["dead_1"], values["dead_2"]], diagnostics.dead_unit_fraction(params, x[:32]))


def test_fit_records_the_probe_every_k_epochs():
    with jax.enable_x64(False):
        x, y = small_classification()
        model = mlp.model([12, 10, 8, 4])
        params = model.init(jax.random.key(1))
        probe = diagnostics.curvature_probe(x[:32], y[:32], iterations=12, key=jax.random.key(2))
        result = engine.fit(model, params, train.make_optimizer("momentum", learning_rate=0.05), (x, y), epochs=5,
                            batch_size=16, probe=probe, probe_every=2, log=None)
        history = result.history
        assert history.probe_epoch == [2.0, 4.0, 5.0]  # every 2nd epoch and after the last
        assert set(history.probes) == {"lambda_max", "noise_scale", "dead_1", "dead_2"}
        final = jax.jit(probe)(result.params)
        assert history.probes["lambda_max"][-1] == pytest.approx(float(final["lambda_max"]), rel=1e-5)
        assert all(v > 0 for v in history.probes["lambda_max"])


def test_curvature_probe_rejects_a_batch_of_one():
    x, y = small_classification()
    with pytest.raises(ValueError, match="at least 2 examples, got shape \\(1, 12\\)"):
        diagnostics.curvature_probe(x[:1], y[:1], key=jax.random.key(0))


# --- the options are values ---------------------------------------------------------------


@pytest.mark.parametrize("function", ["per_example_grads", "manual_per_example_grads", "per_example_grad_norms",
                                      "gradient_noise_scale"])
def test_diagnostics_refuse_names_where_values_belong(function):
    """``activation=`` takes an mlp.Activation and ``loss=`` a losses.Loss (static jit arguments);
    the old names are a TypeError, not a silently new program."""
    params, x, y = problem(mlp.TANH, 1, losses.SOFTMAX_CROSS_ENTROPY)
    with pytest.raises(TypeError, match=r"activation must be an mlp\.Activation"):
        getattr(diagnostics, function)(params, x, y, activation="tanh")
    with pytest.raises(TypeError, match=r"loss must be a losses\.Loss"):
        getattr(diagnostics, function)(params, x, y, activation=mlp.TANH, loss="softmax_cross_entropy")
    with pytest.raises(TypeError, match="hidden"):
        getattr(diagnostics, function)(params, x, y, hidden="tanh")


def test_curvature_probe_and_dead_units_refuse_names():
    x, y = small_classification()
    with pytest.raises(TypeError, match=r"loss=losses\.<LOSS> and activation=mlp\.<ACTIVATION> values"):
        diagnostics.curvature_probe(x[:8], y[:8], loss="mse", key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"loss=losses\.<LOSS> and activation=mlp\.<ACTIVATION> values"):
        diagnostics.curvature_probe(x[:8], y[:8], activation="relu", key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"activation must be an mlp\.Activation"):
        diagnostics.dead_unit_fraction(mlp.init(jax.random.key(0), [12, 4, 4]), x, activation="relu")
