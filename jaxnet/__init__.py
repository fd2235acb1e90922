"""jaxnet: seeing, and trusting, how neural networks learn.

Pure functions over plain pytrees: :mod:`jaxnet.mlp` (the network), :mod:`jaxnet.losses`,
:mod:`jaxnet.backprop` (hand-derived gradients), :mod:`jaxnet.train` (the optax step).
"""
from jaxnet import backprop, losses, metrics, mlp, train
from jaxnet.backprop import grads
from jaxnet.losses import (
    binary_cross_entropy,
    kl_divergence,
    l2_penalty,
    mse,
    nll,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)
from jaxnet.train import Batch, make_optimizer, make_train_step

__all__ = [
    "backprop", "losses", "metrics", "mlp", "train", "grads",
    "binary_cross_entropy", "kl_divergence", "l2_penalty", "mse", "nll",
    "sigmoid_cross_entropy", "softmax_cross_entropy",
    "Batch", "make_optimizer", "make_train_step",
]
__version__ = "0.1.0"
