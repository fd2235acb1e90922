"""A small convolutional network in flax (linen), usable with the training engine.

Two 3×3 convolutions with ReLU, each followed by 2×2 max-pooling, then a ReLU dense layer
and the output layer (logits; the loss applies the softmax)::

    (N, 28, 28, 1) → conv 3×3, c₁ → pool → conv 3×3, c₂ → pool → dense d → dense 10

It is a model value like the MLP's, so the engine takes it the same way::

    model = cnn.model(channels=(16, 32), dense=128)
    params = model.init(jax.random.PRNGKey(0))
    engine.fit(model, params, optimizer, (x, y), ...)  # x: (N, 28, 28, 1)

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

``model(..., conv="im2col" | "lax")`` overrides the choice. Both give the same parameters,
so a checkpoint trained with one runs with the other.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnet.mlp import Model

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


def model(
    channels: Sequence[int] = (16, 32),
    dense: int = 128,
    num_classes: int = 10,
    input_shape: Sequence[int] = (28, 28, 1),
    *,
    conv: str | None = None,
) -> Model:
    """A :class:`CNN` as a :class:`jaxnet.mlp.Model` (``activation`` None: autodiff gradients).

    Args:
      channels: output channels of each conv block (each halves the image with a 2×2 pool).
      dense: width of the hidden dense layer.
      num_classes: outputs (logits).
      input_shape: (height, width, channels) of one image.
      conv: "im2col" (im2col + matmul, fast on CPU) or "lax" (``nn.Conv``); None picks
        :func:`conv_impl` of the default backend.
    Returns:
      ``Model(init, apply)``: ``init(key) → params`` (flax's default initialisers: LeCun-normal
      kernels, zero biases) and ``apply(params, x) → logits`` for x of shape (batch,
      *input_shape), both jit-compiled (op-by-op flax is slow outside a compiled program;
      inside one, the inner jit is inlined). Equal arguments give the same value, so the
      engine's compiled programs are reused.
    """
    conv = conv_impl() if conv is None else conv
    if conv not in CONV_IMPLS:
        raise ValueError(f"unknown conv {conv!r}; choose one of {list(CONV_IMPLS)} or None (by platform)")
    return _model(tuple(channels), int(dense), int(num_classes), tuple(input_shape), conv)


@functools.lru_cache(maxsize=16)
def _model(channels: tuple, dense: int, num_classes: int, input_shape: tuple, conv: str) -> Model:
    network = CNN(channels=channels, dense=dense, num_classes=num_classes, conv=conv)

    @jax.jit
    def init(key: Array) -> Params:
        return network.init(key, jnp.zeros((1, *input_shape), jnp.float32))

    @jax.jit
    def apply(params: Params, x: Array) -> Array:
        return network.apply(params, x)

    return Model(init, apply)


def num_params(params: Params) -> int:
    """The number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def describe(channels: Sequence[int] = (16, 32), dense: int = 128, num_classes: int = 10) -> str:
    """The architecture in one line, e.g. "conv3×3-16 → pool → conv3×3-32 → pool → 128 → 10"."""
    return " → ".join([f"conv3×3-{c} → pool" for c in channels] + [str(dense), str(num_classes)])
