"""One CPU device per core, so that :func:`jaxnet.engine.sweep` shards its members over every
core (``fit`` still runs on one device).

``import jaxnet`` asks jax for it through the public ``jax_num_cpu_devices`` option, and only
while jax has not made its devices yet; not when ``XLA_FLAGS`` already sets the device
count, ``JAX_NUM_CPU_DEVICES`` is set, or ``JAX_PLATFORMS`` names platforms without
``cpu``. ``JAXNET_HOST_DEVICES=1`` turns it off; ``JAXNET_HOST_DEVICES=N`` asks for N.
"""
from __future__ import annotations

import os
from typing import Mapping


def host_device_count(environ: Mapping[str, str], cpus: int) -> int | None:
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


def use_every_core() -> None:
    """Asks jax for :func:`host_device_count` CPU devices, if it is not too late."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    count = host_device_count(os.environ, cpus)
    if count is None:
        return
    import jax

    if jax.config.jax_num_cpu_devices >= 0:
        return  # set by the caller
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:
        pass  # too late: jax has made its devices already
