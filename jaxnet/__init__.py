"""jaxnet: seeing, and trusting, how neural networks learn.

Pure functions over plain pytrees: :mod:`jaxnet.mlp` (the network), :mod:`jaxnet.losses`,
:mod:`jaxnet.backprop` (hand-derived gradients), :mod:`jaxnet.train` (the optax step).

On a CPU, importing jaxnet gives jax one device per core (``jax_num_cpu_devices``, the
option behind ``--xla_force_host_platform_device_count``), so that
:func:`jaxnet.engine.sweep` shards its members over every core; ``fit`` still runs on one
device. This happens only while jax has not initialised its backends yet, and not when
``XLA_FLAGS`` already sets the device count, ``JAX_NUM_CPU_DEVICES`` is set, or
``JAX_PLATFORMS`` names platforms without ``cpu``. ``JAXNET_HOST_DEVICES=1`` turns it off;
``JAXNET_HOST_DEVICES=N`` asks for N devices.
"""
import os as _os
from typing import Mapping as _Mapping


def _host_device_count(environ: _Mapping[str, str], cpus: int) -> int | None:
    """The CPU device count jaxnet asks jax for, or None to leave jax's default (one).

    Raises ValueError for a ``JAXNET_HOST_DEVICES`` that is not a positive integer.
    """
    setting = environ.get("JAXNET_HOST_DEVICES", "").strip()
    if setting:
        try:
            cpus = int(setting)
        except ValueError:
            cpus = 0
        if cpus < 1:
            raise ValueError(f"JAXNET_HOST_DEVICES must be a positive integer (1 turns the one-device-per-core "
                             f"default off), got {setting!r}")
    if "xla_force_host_platform_device_count" in environ.get("XLA_FLAGS", "") or environ.get("JAX_NUM_CPU_DEVICES"):
        return None
    platforms = {p.strip().lower() for p in environ.get("JAX_PLATFORMS", "").split(",") if p.strip()}
    if platforms and "cpu" not in platforms:
        return None
    return cpus if cpus > 1 else None


def _use_every_core() -> None:
    try:
        cpus = len(_os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = _os.cpu_count() or 1
    count = _host_device_count(_os.environ, cpus)
    if count is None:
        return
    import jax

    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return  # too late: jax has made its devices
        if xla_bridge.num_cpu_devices.value >= 0:
            return  # set by the caller (jax.config)
        jax.config.update("jax_num_cpu_devices", count)
    except (ImportError, AttributeError):  # an older jax: the XLA flag, read when the backend starts
        flags = _os.environ.get("XLA_FLAGS", "")
        _os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


_use_every_core()

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
