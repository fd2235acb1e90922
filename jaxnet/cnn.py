"""A small convolutional network in flax (linen), usable with the training engine.

Two 3×3 convolutions with ReLU, each followed by 2×2 max-pooling, then a ReLU dense layer
and the output layer (logits; the loss applies the softmax)::

    (N, 28, 28, 1) → conv 3×3, c₁ → pool → conv 3×3, c₂ → pool → dense d → dense 10

The engine only needs ``apply(params, x) → logits`` and a pytree of parameters::

    init_fn, apply_fn = cnn.make(channels=(16, 32), dense=128)
    params = init_fn(jax.random.PRNGKey(0))
    engine.fit(params, optimizer, (x, y), apply_fn=apply_fn, ...)  # x: (N, 28, 28, 1)

How the convolutions are computed depends on the platform (:func:`conv_impl`):

* ``"im2col"`` (CPU): the nine shifted copies of the zero-padded input are stacked along
  the channel axis and multiplied by the kernel reshaped to (9·C_in, C_out). That is the
  same function as ``flax.linen.Conv`` with the same parameters (the tests check it), but on
  XLA:CPU it trains several times faster inside the engine's ``lax.scan``: convolutions,
  and above all their gradients, are much slower inside a loop body there
  (jax-ml/jax#12868), while the matrix products and slices of im2col are not.
* ``"lax"`` (GPU, TPU and every other platform): ``flax.linen.Conv``, i.e.
  ``lax.conv_general_dilated``, which cuDNN and the TPU compiler implement natively; im2col
  would there only cost nine times the activation memory.

``make(..., conv="im2col" | "lax")`` overrides the choice. Both give the same parameters,
so a checkpoint trained with one runs with the other.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Params = Any  # flax variables: {"params": {"conv0": {"kernel", "bias"}, ...}}
CONV_IMPLS = ("im2col", "lax")


def conv_impl(platform: str | None = None) -> str:
    """The convolution implementation for a platform: "im2col" on CPU, "lax" elsewhere.

    Args:
      platform: a JAX platform name ("cpu", "gpu", "cuda", "rocm", "tpu", ...; any case);
        None for the default backend, ``jax.default_backend()``.
    Returns:
      "im2col" or "lax" (see the module docstring for why).
    """
    if platform is None:
        platform = jax.default_backend()
    if not isinstance(platform, str) or not platform.strip():
        raise ValueError(f"platform must be a JAX platform name such as 'cpu', 'gpu' or 'tpu', got {platform!r}")
    return "im2col" if platform.strip().lower() == "cpu" else "lax"


def patches3x3(x: Array) -> Array:
    """(N, H, W, C) → (N, H, W, 9·C): each pixel's 3×3 neighbourhood ("SAME" zero padding),
    ordered (row offset, column offset, channel), the order of a (3, 3, C, C_out) kernel."""
    _, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([padded[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)], axis=-1)


class Conv3x3(nn.Module):
    """A 3×3, stride-1, "SAME" convolution as im2col + matmul; parameters as ``nn.Conv``'s."""

    features: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", self.kernel_init, (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        return patches3x3(x) @ kernel.reshape(-1, self.features) + bias


class CNN(nn.Module):
    """conv → ReLU → pool blocks, one hidden ReLU dense layer, logits."""

    channels: Sequence[int] = (16, 32)
    dense: int = 128
    num_classes: int = 10
    conv: str = "im2col"  # or "lax" (flax.linen.Conv); see conv_impl

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.ndim != 4:
            raise ValueError(f"x has shape {tuple(x.shape)}; the CNN expects images (batch, height, width, channels)")
        if self.conv not in CONV_IMPLS:
            raise ValueError(f"unknown conv {self.conv!r}; choose one of {list(CONV_IMPLS)}")
        for k, features in enumerate(self.channels):
            conv = (Conv3x3(features, name=f"conv{k}") if self.conv == "im2col"
                    else nn.Conv(features, kernel_size=(3, 3), padding="SAME", name=f"conv{k}"))
            x = nn.max_pool(nn.relu(conv(x)), window_shape=(2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.dense, name="dense")(x))
        return nn.Dense(self.num_classes, name="out")(x)


def make(
    channels: Sequence[int] = (16, 32),
    dense: int = 128,
    num_classes: int = 10,
    input_shape: Sequence[int] = (28, 28, 1),
    *,
    conv: str | None = None,
    im2col: bool | None = None,
) -> tuple[Callable[[Array], Params], Callable[[Params, Array], Array]]:
    """``(init_fn, apply_fn)`` for a :class:`CNN`.

    Args:
      channels: output channels of each conv block (each halves the image with a 2×2 pool).
      dense: width of the hidden dense layer.
      num_classes: outputs (logits).
      input_shape: (height, width, channels) of one image.
      conv: "im2col" (im2col + matmul, fast on CPU) or "lax" (``nn.Conv``); None picks
        :func:`conv_impl` of the default backend.
      im2col: the older spelling: True is ``conv="im2col"``, False ``conv="lax"``.
    Returns:
      ``init_fn(key) → params`` (flax's default initialisers: LeCun-normal kernels, zero
      biases) and ``apply_fn(params, x) → logits`` for x of shape (batch, *input_shape), both
      jit-compiled (op-by-op flax is slow when called outside a compiled program, e.g. by
      ``engine.evaluate_classifier``; inside one, the inner jit is inlined).
    """
    if im2col is not None:
        if conv is not None and conv != ("im2col" if im2col else "lax"):
            raise ValueError(f"conv={conv!r} contradicts im2col={im2col}; pass only conv")
        conv = "im2col" if im2col else "lax"
    conv = conv_impl() if conv is None else conv
    if conv not in CONV_IMPLS:
        raise ValueError(f"unknown conv {conv!r}; choose one of {list(CONV_IMPLS)} or None (by platform)")
    model = CNN(channels=tuple(channels), dense=dense, num_classes=num_classes, conv=conv)

    @jax.jit
    def init_fn(key: Array) -> Params:
        return model.init(key, jnp.zeros((1, *input_shape), jnp.float32))

    @jax.jit
    def apply_fn(params: Params, x: Array) -> Array:
        return model.apply(params, x)

    return init_fn, apply_fn


def num_params(params: Params) -> int:
    """The number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def describe(channels: Sequence[int] = (16, 32), dense: int = 128, num_classes: int = 10) -> str:
    """The architecture in one line, e.g. "conv3×3-16 → pool → conv3×3-32 → pool → 128 → 10"."""
    return " → ".join([f"conv3×3-{c} → pool" for c in channels] + [str(dense), str(num_classes)])
