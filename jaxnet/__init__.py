"""jaxnet: seeing, and trusting, how neural networks learn.

Pure functions over plain pytrees: :mod:`jaxnet.mlp` (the network and its activations, as
values), :mod:`jaxnet.losses` (each loss a value with its hand-derived delta),
:mod:`jaxnet.backprop` (hand-derived gradients), :mod:`jaxnet.train` (the optax step),
:mod:`jaxnet.engine` (compiled epochs and one-program sweeps), :mod:`jaxnet.evaluate`.

On a CPU, importing jaxnet gives jax one device per core (see :mod:`jaxnet.devices`).
"""
from jaxnet import devices as _devices

_devices.use_every_core()

from jaxnet import backprop, losses, metrics, mlp, train  # noqa: E402
from jaxnet.backprop import grads  # noqa: E402
from jaxnet.losses import (  # noqa: E402
    binary_cross_entropy,
    kl_divergence,
    l2_penalty,
    mse,
    nll,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)
from jaxnet.train import Batch, make_optimizer, make_train_step  # noqa: E402

__all__ = [
    "backprop", "losses", "metrics", "mlp", "train", "grads",
    "binary_cross_entropy", "kl_divergence", "l2_penalty", "mse", "nll",
    "sigmoid_cross_entropy", "softmax_cross_entropy",
    "Batch", "make_optimizer", "make_train_step",
]
__version__ = "0.1.0"
