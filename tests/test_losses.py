"""jaxnet.losses: each loss against its textbook formula (written naively in NumPy, float64),
the conventions relative to optax, numerical stability, and the input checks."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import losses

B, K = 4, 3
# Small, hand-picked float64 inputs: moderate logits, so the naive formulas are accurate.
LOGITS = np.array([[1.0, -0.5, 0.2], [0.3, 0.3, -1.0], [-2.0, 1.5, 0.0], [0.7, -0.1, 2.2]])
LABELS = np.array([0, 2, 1, 2])
ONEHOT = np.eye(K)[LABELS]
SOFT = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.05, 0.05, 0.9]])
MULTI = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])


def np_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def f64(a):
    return jnp.asarray(a, jnp.float64)


# --- textbook formulas ------------------------------------------------------------------


def test_softmax_cross_entropy_formula(x64):
    expected = np.mean(-np.sum(ONEHOT * np.log(np_softmax(LOGITS)), axis=1))
    np.testing.assert_allclose(losses.softmax_cross_entropy(f64(LOGITS), f64(ONEHOT)), expected, rtol=1e-12)


def test_softmax_cross_entropy_with_soft_targets(x64):
    expected = np.mean(-np.sum(SOFT * np.log(np_softmax(LOGITS)), axis=1))
    np.testing.assert_allclose(losses.softmax_cross_entropy(f64(LOGITS), f64(SOFT)), expected, rtol=1e-12)


def test_sigmoid_cross_entropy_formula(x64):
    s = np_sigmoid(LOGITS)
    expected = np.mean(-np.sum(MULTI * np.log(s) + (1 - MULTI) * np.log(1 - s), axis=1))
    np.testing.assert_allclose(losses.sigmoid_cross_entropy(f64(LOGITS), f64(MULTI)), expected, rtol=1e-12)


def test_nll_formula(x64):
    log_probs = np.log(np_softmax(LOGITS))
    expected = -np.mean(log_probs[np.arange(B), LABELS])
    np.testing.assert_allclose(losses.nll(f64(log_probs), jnp.asarray(LABELS)), expected, rtol=1e-12)


def test_mse_formula(x64):
    outputs = np_softmax(LOGITS)
    expected = np.mean(np.sum((outputs - ONEHOT) ** 2, axis=1))  # summed over outputs, no ½
    np.testing.assert_allclose(losses.mse(f64(outputs), f64(ONEHOT)), expected, rtol=1e-12)


def test_kl_divergence_formula(x64):
    log_probs = np.log(np_softmax(LOGITS))
    expected = np.mean(np.sum(SOFT * (np.log(SOFT) - log_probs), axis=1))
    np.testing.assert_allclose(losses.kl_divergence(f64(log_probs), f64(SOFT)), expected, rtol=1e-12)


def test_binary_cross_entropy_formula(x64):
    z = LOGITS[:, 0]
    y = np.array([1, 0, 0, 1])
    s = np_sigmoid(z)
    expected = np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)))
    np.testing.assert_allclose(losses.binary_cross_entropy(f64(z), jnp.asarray(y)), expected, rtol=1e-12)
    # the (batch, 1) output of a one-output network gives the same value
    np.testing.assert_allclose(losses.binary_cross_entropy(f64(z[:, None]), jnp.asarray(y)), expected, rtol=1e-12)


def test_l2_penalty_sums_squared_weights_only(x64):
    params = [{"w": f64([[1.0, -2.0], [0.5, 0.0]]), "b": f64([3.0, 4.0])}, {"w": f64([[2.0], [1.0]]), "b": f64([9.0])}]
    expected = 0.1 * (1 + 4 + 0.25 + 4 + 1)  # λ Σ‖W‖², biases left out
    np.testing.assert_allclose(losses.l2_penalty(params, 0.1), expected, rtol=1e-14)


# --- identities and conventions ---------------------------------------------------------


def test_kl_divergence_equals_cross_entropy_for_one_hot_targets(x64):
    z = f64(LOGITS)
    kl = losses.kl_divergence(jax.nn.log_softmax(z), f64(ONEHOT))
    np.testing.assert_allclose(kl, losses.softmax_cross_entropy(z, f64(ONEHOT)), rtol=1e-12)


def test_nll_on_log_softmax_equals_softmax_cross_entropy(x64):
    z = f64(LOGITS)
    np.testing.assert_allclose(
        losses.nll(jax.nn.log_softmax(z), jnp.asarray(LABELS)),
        losses.softmax_cross_entropy(z, f64(ONEHOT)),
        rtol=1e-12,
    )


def test_mse_is_twice_optax_l2_loss(x64):
    import optax

    outputs = f64(np_softmax(LOGITS))
    expected = 2 * jnp.mean(jnp.sum(optax.l2_loss(outputs, f64(ONEHOT)), axis=1))
    np.testing.assert_allclose(losses.mse(outputs, f64(ONEHOT)), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "sigmoid_cross_entropy", "nll", "mse", "kl_divergence"])
def test_integer_labels_and_one_hot_targets_give_the_same_loss(x64, name):
    z = f64(LOGITS)
    loss = losses.get(name)
    by_labels = loss(z, jnp.asarray(LABELS))
    by_onehot = loss(z, f64(ONEHOT))
    np.testing.assert_allclose(by_labels, by_onehot, rtol=1e-12)


def test_the_mse_value_puts_mse_on_the_softmax_probabilities(x64):
    z = f64(LOGITS)
    expected = np.mean(np.sum((np_softmax(LOGITS) - ONEHOT) ** 2, axis=1))
    np.testing.assert_allclose(losses.MSE(z, jnp.asarray(LABELS)), expected, rtol=1e-12)
    np.testing.assert_allclose(losses.MSE.fn(z, f64(ONEHOT)), expected, rtol=1e-12)


def test_a_loss_value_works_under_jit_with_closed_over_labels():
    """Regression: the label-range check used to call int() on a traced jnp.min."""
    z, labels = jnp.asarray(LOGITS, jnp.float32), jnp.asarray(LABELS)
    jitted = jax.jit(lambda logits: losses.NLL(logits, labels))
    np.testing.assert_allclose(jitted(z), losses.NLL(z, labels), rtol=1e-6)


# --- the Loss values: fn, delta and targets side by side --------------------------------

LOSS_NAMES = ["softmax_cross_entropy", "sigmoid_cross_entropy", "nll", "mse", "kl_divergence",
              "binary_cross_entropy"]
BINARY_LABELS = np.array([1, 0, 0, 1])
BINARY_PROBABILITIES = np.array([0.9, 0.25, 0.0, 1.0])


def test_losses_maps_each_name_to_its_value():
    assert list(losses.LOSSES) == LOSS_NAMES
    for name, loss in losses.LOSSES.items():
        assert isinstance(loss, losses.Loss) and loss.name == name
        assert losses.get(name) is loss
        assert loss.binary == (name == "binary_cross_entropy")
    assert [losses.SOFTMAX_CROSS_ENTROPY, losses.SIGMOID_CROSS_ENTROPY, losses.NLL, losses.MSE,
            losses.KL_DIVERGENCE, losses.BINARY_CROSS_ENTROPY] == list(losses.LOSSES.values())


def _delta_cases(name):
    """(logits, targets as fn takes them) pairs for one loss: from integer labels and from
    float targets (soft, multi-label, unnormalised or probabilities), in float64."""
    loss = losses.get(name)
    if name == "binary_cross_entropy":
        z = f64(LOGITS[:, :1])
        return [(z, loss.targets(jnp.asarray(BINARY_LABELS), 1, jnp.float64)),
                (z, loss.targets(f64(BINARY_PROBABILITIES), 1, jnp.float64))]
    z = f64(LOGITS)
    cases = [(z, loss.targets(jnp.asarray(LABELS), K, jnp.float64))]
    if name != "nll":  # nll takes integer labels only
        floats = {"softmax_cross_entropy": SOFT, "mse": SOFT, "sigmoid_cross_entropy": MULTI,
                  "kl_divergence": 2.0 * SOFT}[name]  # KL: unnormalised targets show the Σₖtₖ factor
        cases.append((z, loss.targets(f64(floats), K, jnp.float64)))
    return cases


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_each_loss_delta_equals_jax_grad_of_its_fn(x64, name):
    """The hand-derived δᴴ = ∂fn/∂logits (1/B included) that backprop uses is the gradient of
    the very function the loss value applies, for every loss, in float64."""
    loss = losses.get(name)
    for z, t in _delta_cases(name):
        assert jnp.issubdtype(t.dtype, jnp.integer) if name == "nll" else t.dtype == jnp.float64
        autodiff = jax.grad(loss.fn)(z, t)
        manual = loss.delta(z, t)
        assert manual.shape == z.shape and manual.dtype == jnp.float64
        np.testing.assert_allclose(manual, autodiff, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_calling_a_loss_applies_fn_to_its_targets(x64, name):
    loss = losses.get(name)
    if name == "binary_cross_entropy":
        z, y = f64(LOGITS[:, :1]), jnp.asarray(BINARY_LABELS)
    else:
        z, y = f64(LOGITS), jnp.asarray(LABELS)
    np.testing.assert_allclose(loss(z, y), loss.fn(z, loss.targets(y, z.shape[-1], z.dtype)), rtol=1e-14)


def test_targets_of_each_kind():
    labels = jnp.asarray(LABELS)
    onehot = losses.SOFTMAX_CROSS_ENTROPY.targets(labels, K, jnp.float32)
    np.testing.assert_array_equal(onehot, ONEHOT)
    assert onehot.dtype == jnp.float32
    np.testing.assert_array_equal(losses.SOFTMAX_CROSS_ENTROPY.targets(jnp.asarray(SOFT, jnp.float32), K,
                                                                       jnp.float32), np.float32(SOFT))
    np.testing.assert_array_equal(losses.NLL.targets(labels, K, jnp.float32), LABELS)
    np.testing.assert_array_equal(losses.NLL.targets(jnp.asarray(ONEHOT, jnp.float32), K, jnp.float32), LABELS)
    binary = losses.BINARY_CROSS_ENTROPY.targets(jnp.asarray(BINARY_LABELS)[:, None], 1, jnp.float32)
    assert binary.shape == (B,) and binary.dtype == jnp.float32
    np.testing.assert_array_equal(binary, BINARY_LABELS)


# --- stability --------------------------------------------------------------------------

# Logits of ±1e4, with targets on the *wrong* side (the worst case for exp/log overflow).
HUGE = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, -1e4, 1e4]], jnp.float32)
HUGE_TARGETS = {
    "softmax_cross_entropy": jnp.array([1, 0, 1]),
    "nll": jnp.array([1, 0, 1]),
    "mse": jnp.array([1, 0, 1]),
    "kl_divergence": jnp.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]], jnp.float32),
    "sigmoid_cross_entropy": jnp.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], jnp.float32),
}


@pytest.mark.parametrize("name", sorted(HUGE_TARGETS))
def test_huge_logits_give_finite_loss_and_gradients(name):
    y = HUGE_TARGETS[name]
    loss = losses.get(name)
    value, grad = jax.value_and_grad(lambda z: loss(z, y))(HUGE)
    assert jnp.isfinite(value) and value > 1.0  # confidently wrong: a large (mse ≤ 2), finite loss
    assert jnp.all(jnp.isfinite(grad))
    targets = loss.targets(y, HUGE.shape[-1], HUGE.dtype)
    assert jnp.all(jnp.isfinite(loss.delta(HUGE, targets)))


def test_huge_logits_binary_cross_entropy_is_finite():
    z = jnp.array([[1e4], [-1e4]], jnp.float32)
    y = jnp.array([0, 1])
    value, grad = jax.value_and_grad(lambda z: losses.BINARY_CROSS_ENTROPY(z, y))(z)
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)  # each example costs |z| = 1e4
    assert jnp.all(jnp.isfinite(grad))
    assert jnp.all(jnp.isfinite(losses.BINARY_CROSS_ENTROPY.delta(z, y.astype(jnp.float32))))


def test_huge_logits_cross_entropy_value_is_exact():
    """z = (1e4, −1e4), true class 1: −ln softmax(z)₁ = 2e4 (log-sum-exp, no overflow)."""
    z = jnp.array([[1e4, -1e4]], jnp.float32)
    np.testing.assert_allclose(losses.SOFTMAX_CROSS_ENTROPY(z, jnp.array([1])), 2e4, rtol=1e-6)


# --- bad input ----------------------------------------------------------------------------


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; choose one of \['softmax_cross_entropy', 'sigmoid_cross_entropy', 'nll', 'mse', 'kl_divergence', 'binary_cross_entropy'\]"):
        losses.get("hinge")


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", None, losses.softmax_cross_entropy],
                         ids=["name", "none", "plain-function"])
def test_check_targets_refuses_what_is_not_a_loss_value(loss):
    """The old string dispatch is gone: a name must go through losses.get first."""
    with pytest.raises(TypeError, match=r"loss must be a losses\.Loss such as losses\.SOFTMAX_CROSS_ENTROPY"):
        losses.check_targets(loss, (B, K), jnp.asarray(LABELS))


@pytest.mark.parametrize("name", ["objective", "targets", "loss_from_logits", "check_loss"])
def test_the_string_dispatch_functions_are_gone(name):
    assert not hasattr(losses, name)


@pytest.mark.parametrize("bad", [-1, K], ids=["negative", "equal-to-classes"])
def test_labels_outside_the_classes_are_rejected(bad):
    labels = jnp.asarray(LABELS).at[0].set(bad)
    with pytest.raises(ValueError, match=rf"labels must lie in \[0, {K}\) for a network with {K} output"):
        losses.SOFTMAX_CROSS_ENTROPY(jnp.asarray(LOGITS, jnp.float32), labels)


def test_binary_labels_outside_0_1_are_rejected():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        losses.BINARY_CROSS_ENTROPY(jnp.zeros((3, 1)), jnp.array([0, 1, 2]))


def test_target_rows_must_match_the_batch():
    with pytest.raises(ValueError, match=rf"y has {B - 1} rows but x has {B}"):
        losses.NLL(jnp.asarray(LOGITS, jnp.float32), jnp.asarray(LABELS[:-1]))


def test_float_targets_must_match_the_logits():
    with pytest.raises(ValueError, match=rf"float targets must have shape \({B}, {K}\).*got \({B}, {K + 1}\)"):
        losses.MSE(jnp.asarray(LOGITS, jnp.float32), jnp.zeros((B, K + 1)))


def test_integer_labels_must_be_one_dimensional():
    with pytest.raises(ValueError, match=rf"integer labels must have shape \({B},\)"):
        losses.NLL(jnp.asarray(LOGITS, jnp.float32), jnp.zeros((B, 2), jnp.int32))


def test_binary_cross_entropy_needs_one_output():
    with pytest.raises(ValueError, match=r"binary_cross_entropy needs a network with 1 output, this one has 3"):
        losses.BINARY_CROSS_ENTROPY(jnp.asarray(LOGITS, jnp.float32), jnp.asarray([0, 1, 1, 0]))


# --- the losses called directly ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 10], ids=["minus-one", "equal-to-classes"])
def test_nll_refuses_concrete_labels_out_of_range(bad):
    """−1 would pick the last class, 10 a fill value: both quietly wrong numbers."""
    log_probs = jax.nn.log_softmax(jnp.zeros((3, 10)))
    with pytest.raises(ValueError, match=rf"nll: labels must lie in \[0, 10\); found values from {min(bad, 0)} to "
                                         rf"{max(bad, 2)}"):
        losses.nll(log_probs, jnp.array([0, 2, bad]))


def test_nll_stays_jittable_and_checks_only_concrete_labels():
    log_probs = jax.nn.log_softmax(jnp.asarray(LOGITS, jnp.float32))
    labels = jnp.asarray(LABELS)
    np.testing.assert_allclose(jax.jit(losses.nll)(log_probs, labels), losses.nll(log_probs, labels), rtol=1e-6)
    grads = jax.grad(losses.nll)(log_probs, labels)  # concrete labels under grad: checked, and fine
    assert grads.shape == log_probs.shape
    per_example = jax.vmap(lambda lp, t: losses.nll(lp[None], t[None]))(log_probs, labels)  # traced labels
    np.testing.assert_allclose(jnp.mean(per_example), losses.nll(log_probs, labels), rtol=1e-6)


def test_nll_needs_integer_labels_of_the_batch_length():
    log_probs = jnp.zeros((B, K))
    with pytest.raises(ValueError, match="nll takes integer class labels, got float32"):
        losses.nll(log_probs, jnp.zeros(B, jnp.float32))
    with pytest.raises(ValueError, match=rf"nll takes log_probs of shape \(batch, classes\) and labels of shape "
                                         rf"\(batch,\), got \({B}, {K}\) and \({B - 1},\)"):
        losses.nll(log_probs, jnp.zeros(B - 1, jnp.int32))


@pytest.mark.parametrize("labels, found", [([0, 1, 2], "from 0 to 2"), ([-1, 0, 1], "from -1 to 1"),
                                           ([0.0, 1.5, 1.0], "from 0.0 to 1.5")])
def test_binary_cross_entropy_refuses_concrete_labels_outside_0_1(labels, found):
    with pytest.raises(ValueError, match=rf"binary_cross_entropy: labels must lie in \[0, 1\]; found values {found}"):
        losses.binary_cross_entropy(jnp.zeros(3), jnp.asarray(labels))


def test_binary_cross_entropy_accepts_probabilities_and_stays_jittable():
    z, y = jnp.array([0.3, -1.0, 2.0]), jnp.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(jax.jit(losses.binary_cross_entropy)(z, y), losses.binary_cross_entropy(z, y),
                               rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "sigmoid_cross_entropy", "mse", "kl_divergence"])
def test_one_hot_losses_refuse_integer_labels_instead_of_broadcasting(name):
    """With as many classes as examples, (B,) labels would broadcast against (B, B) logits."""
    square = jnp.zeros((3, 3))
    with pytest.raises(ValueError, match=rf"{name} takes targets of shape \(3, 3\) like its input, got \(3,\)"):
        getattr(losses, name)(square, jnp.array([0, 1, 2]))
