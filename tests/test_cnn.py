"""jaxnet.cnn: shapes, im2col convolution = flax's Conv, the choice by platform, and training
through the engine."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import cnn, engine, train


def test_shapes_and_parameter_count():
    init_fn, apply_fn = cnn.make(channels=(4, 8), dense=16)
    params = init_fn(jax.random.PRNGKey(0))
    shapes = jax.tree.map(jnp.shape, params)["params"]
    assert shapes["conv0"] == {"kernel": (3, 3, 1, 4), "bias": (4,)}
    assert shapes["conv1"] == {"kernel": (3, 3, 4, 8), "bias": (8,)}
    assert shapes["dense"] == {"kernel": (7 * 7 * 8, 16), "bias": (16,)}  # 28 → 14 → 7 after two pools
    assert shapes["out"] == {"kernel": (16, 10), "bias": (10,)}
    assert cnn.num_params(params) == 9 * 4 + 4 + 9 * 4 * 8 + 8 + 392 * 16 + 16 + 16 * 10 + 10
    logits = apply_fn(params, jnp.zeros((5, 28, 28, 1)))
    assert logits.shape == (5, 10) and logits.dtype == jnp.float32


def test_rejects_flat_images():
    init_fn, apply_fn = cnn.make(channels=(4,), dense=8)
    params = init_fn(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        apply_fn(params, jnp.zeros((5, 784)))


def test_im2col_equals_flax_conv():
    """The same parameters give the same logits with im2col and with nn.Conv, and the same gradients."""
    init_fast, apply_fast = cnn.make(channels=(3, 5), dense=8, input_shape=(12, 10, 2), conv="im2col")
    _, apply_conv = cnn.make(channels=(3, 5), dense=8, input_shape=(12, 10, 2), conv="lax")
    params = init_fast(jax.random.PRNGKey(1))
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 12, 10, 2))
    np.testing.assert_allclose(apply_fast(params, x), apply_conv(params, x), rtol=1e-4, atol=1e-5)
    loss = lambda apply: lambda p: jnp.sum(apply(p, x) ** 2)  # noqa: E731
    g_fast, g_conv = jax.grad(loss(apply_fast))(params), jax.grad(loss(apply_conv))(params)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_conv)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("platform, expected", [
    ("cpu", "im2col"), ("CPU", "im2col"), ("gpu", "lax"), ("cuda", "lax"), ("rocm", "lax"), ("tpu", "lax"),
    ("TPU", "lax"),
])
def test_conv_impl_by_platform(platform, expected):
    assert cnn.conv_impl(platform) == expected


def test_conv_impl_defaults_to_the_default_backend():
    assert cnn.conv_impl() == cnn.conv_impl(jax.default_backend())


@pytest.mark.parametrize("platform", ["", "  ", 3])
def test_conv_impl_rejects_what_is_not_a_platform_name(platform):
    with pytest.raises(ValueError, match="platform must be a JAX platform name"):
        cnn.conv_impl(platform)


def uses_lax_conv(apply_fn, params, x) -> bool:
    return "conv_general_dilated" in str(jax.make_jaxpr(apply_fn)(params, x))


def test_make_picks_the_platform_implementation_unless_told():
    x = jnp.zeros((2, 8, 8, 1))
    init_fn, auto = cnn.make(channels=(2,), dense=4, input_shape=(8, 8, 1))
    params = init_fn(jax.random.PRNGKey(0))
    _, as_im2col = cnn.make(channels=(2,), dense=4, input_shape=(8, 8, 1), conv="im2col")
    _, as_lax = cnn.make(channels=(2,), dense=4, input_shape=(8, 8, 1), conv="lax")
    assert not uses_lax_conv(as_im2col, params, x)
    assert uses_lax_conv(as_lax, params, x)
    assert uses_lax_conv(auto, params, x) == (cnn.conv_impl() == "lax")
    # the older spelling still works
    _, old_false = cnn.make(channels=(2,), dense=4, input_shape=(8, 8, 1), im2col=False)
    _, old_true = cnn.make(channels=(2,), dense=4, input_shape=(8, 8, 1), im2col=True)
    assert uses_lax_conv(old_false, params, x) and not uses_lax_conv(old_true, params, x)


def test_both_implementations_share_parameters_and_outputs():
    """A model initialised with either implementation runs with the other: same tree, same logits."""
    shape = (9, 7, 3)
    init_a, apply_a = cnn.make(channels=(4, 6), dense=8, input_shape=shape, conv="im2col")
    init_b, apply_b = cnn.make(channels=(4, 6), dense=8, input_shape=shape, conv="lax")
    params_a, params_b = init_a(jax.random.PRNGKey(3)), init_b(jax.random.PRNGKey(3))
    assert jax.tree.structure(params_a) == jax.tree.structure(params_b)
    assert jax.tree.map(jnp.shape, params_a) == jax.tree.map(jnp.shape, params_b)
    x = jax.random.normal(jax.random.PRNGKey(4), (3, *shape))
    for params in (params_a, params_b):
        np.testing.assert_allclose(apply_a(params, x), apply_b(params, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(conv="fft"), r"unknown conv 'fft'; choose one of \['im2col', 'lax'\]"),
    (dict(conv="lax", im2col=True), "contradicts"),
])
def test_make_rejects_an_unknown_or_contradictory_conv(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnn.make(channels=(2,), dense=4, **kwargs)


def test_patches_are_the_3x3_neighbourhoods():
    x = jnp.arange(2 * 4 * 5 * 3, dtype=jnp.float32).reshape(2, 4, 5, 3)
    p = cnn.patches3x3(x)
    assert p.shape == (2, 4, 5, 27)
    padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    np.testing.assert_array_equal(p[1, 2, 3], padded[1, 2:5, 3:6, :].reshape(-1))  # (row, column, channel) order


def test_training_through_the_engine_reduces_the_loss():
    """A few Adam steps on a learnable toy task: the class is which image half is brighter."""
    rng = np.random.default_rng(0)
    n = 256
    y = rng.integers(0, 2, n).astype(np.int32)
    x = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    x[y == 1, :4] += 1.0
    x[y == 0, 4:] += 1.0
    init_fn, apply_fn = cnn.make(channels=(4,), dense=8, num_classes=2, input_shape=(8, 8, 1))
    params = init_fn(jax.random.PRNGKey(0))
    before = engine.evaluate_classifier(params, (x, y), apply_fn=apply_fn)
    result = engine.fit(params, train.make_optimizer("adam", learning_rate=1e-2), (x, y), epochs=5, batch_size=32,
                        apply_fn=apply_fn, log=None)
    after = engine.evaluate_classifier(result.params, (x, y), apply_fn=apply_fn)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.95
    assert result.history.train_loss[-1] < result.history.train_loss[0]
