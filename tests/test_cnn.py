"""jaxnet.cnn: shapes, im2col convolution = flax's Conv, the choice by platform, and training
through the engine."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnet import cnn, engine, evaluate, mlp, train


def test_shapes_and_parameter_count():
    model = cnn.model(channels=(4, 8), dense=16)
    assert isinstance(model, mlp.Model) and model.activation is None  # autodiff gradients only
    params = model.init(jax.random.PRNGKey(0))
    shapes = jax.tree.map(jnp.shape, params)["params"]
    assert shapes["conv0"] == {"kernel": (3, 3, 1, 4), "bias": (4,)}
    assert shapes["conv1"] == {"kernel": (3, 3, 4, 8), "bias": (8,)}
    assert shapes["dense"] == {"kernel": (7 * 7 * 8, 16), "bias": (16,)}  # 28 → 14 → 7 after two pools
    assert shapes["out"] == {"kernel": (16, 10), "bias": (10,)}
    assert cnn.num_params(params) == 9 * 4 + 4 + 9 * 4 * 8 + 8 + 392 * 16 + 16 + 16 * 10 + 10
    logits = model.apply(params, jnp.zeros((5, 28, 28, 1)))
    assert logits.shape == (5, 10) and logits.dtype == jnp.float32


def test_rejects_flat_images():
    model = cnn.model(channels=(4,), dense=8)
    params = model.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        model.apply(params, jnp.zeros((5, 784)))


def test_im2col_equals_flax_conv():
    """The same parameters give the same logits with im2col and with nn.Conv, and the same gradients."""
    fast = cnn.model(channels=(3, 5), dense=8, input_shape=(12, 10, 2), conv="im2col")
    apply_fast, apply_conv = fast.apply, cnn.model(channels=(3, 5), dense=8, input_shape=(12, 10, 2), conv="lax").apply
    params = fast.init(jax.random.PRNGKey(1))
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


def test_model_picks_the_platform_implementation_unless_told():
    x = jnp.zeros((2, 8, 8, 1))
    auto = cnn.model(channels=(2,), dense=4, input_shape=(8, 8, 1))
    params = auto.init(jax.random.PRNGKey(0))
    as_im2col = cnn.model(channels=(2,), dense=4, input_shape=(8, 8, 1), conv="im2col")
    as_lax = cnn.model(channels=(2,), dense=4, input_shape=(8, 8, 1), conv="lax")
    assert not uses_lax_conv(as_im2col.apply, params, x)
    assert uses_lax_conv(as_lax.apply, params, x)
    assert uses_lax_conv(auto.apply, params, x) == (cnn.conv_impl() == "lax")
    # conv=None is the platform's choice, the same value as asking for it by name
    assert auto is cnn.model(channels=(2,), dense=4, input_shape=(8, 8, 1), conv=cnn.conv_impl())


def test_equal_arguments_give_the_same_model():
    """The engine caches compiled programs by the model's apply: equal CNNs must share it."""
    a = cnn.model(channels=(3, 5), dense=8, num_classes=4, input_shape=(12, 10, 2), conv="im2col")
    b = cnn.model(channels=[3, 5], dense=8, num_classes=4, input_shape=[12, 10, 2], conv="im2col")
    assert a is b and a.apply is b.apply
    assert cnn.model(channels=(3, 5), dense=9, num_classes=4, input_shape=(12, 10, 2), conv="im2col").apply \
        is not a.apply
    assert cnn.model(channels=(3, 5), dense=8, num_classes=4, input_shape=(12, 10, 2), conv="lax").apply \
        is not a.apply


def test_the_old_constructor_and_its_spelling_are_gone():
    """cnn.make's ``(init_fn, apply_fn)`` pair is cnn.model's Model; its ``im2col=`` is ``conv=``."""
    assert not hasattr(cnn, "make")
    with pytest.raises(TypeError, match="im2col"):
        cnn.model(channels=(2,), dense=4, im2col=True)


def test_both_implementations_share_parameters_and_outputs():
    """A model initialised with either implementation runs with the other: same tree, same logits."""
    shape = (9, 7, 3)
    model_a = cnn.model(channels=(4, 6), dense=8, input_shape=shape, conv="im2col")
    model_b = cnn.model(channels=(4, 6), dense=8, input_shape=shape, conv="lax")
    apply_a, apply_b = model_a.apply, model_b.apply
    params_a, params_b = model_a.init(jax.random.PRNGKey(3)), model_b.init(jax.random.PRNGKey(3))
    assert jax.tree.structure(params_a) == jax.tree.structure(params_b)
    assert jax.tree.map(jnp.shape, params_a) == jax.tree.map(jnp.shape, params_b)
    x = jax.random.normal(jax.random.PRNGKey(4), (3, *shape))
    for params in (params_a, params_b):
        np.testing.assert_allclose(apply_a(params, x), apply_b(params, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv", ["fft", "IM2COL", ""])
def test_model_rejects_an_unknown_conv(conv):
    with pytest.raises(ValueError, match=rf"unknown conv '{conv}'; choose one of \['im2col', 'lax'\]"):
        cnn.model(channels=(2,), dense=4, conv=conv)


def test_manual_gradients_are_refused_for_the_cnn():
    """The hand-derived backprop is for the MLP only: a CNN model (activation None) trains by autodiff."""
    model = cnn.model(channels=(2,), dense=4, num_classes=2, input_shape=(8, 8, 1), conv="im2col")
    with pytest.raises(ValueError, match=r"grad_source='manual' derives gradients for jaxnet\.mlp models only"):
        train.make_train_step(model, train.make_optimizer("sgd"), grad_source="manual")


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
    model = cnn.model(channels=(4,), dense=8, num_classes=2, input_shape=(8, 8, 1))
    params = model.init(jax.random.PRNGKey(0))
    before = evaluate.classifier(model, params, (x, y))
    result = engine.fit(model, params, train.make_optimizer("adam", learning_rate=1e-2), (x, y), epochs=5,
                        batch_size=32, log=None)
    after = evaluate.classifier(model, result.params, (x, y))
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.95
    assert result.history.train_loss[-1] < result.history.train_loss[0]
