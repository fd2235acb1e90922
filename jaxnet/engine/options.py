"""The settings of a run, spelled once: :func:`~jaxnet.engine.fit`, :func:`~jaxnet.engine.sweep`
and the one-epoch API take them as keyword arguments and build one :class:`Options`."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxnet import losses

Probe = Callable[[Any], dict[str, jax.Array]]
Hook = Callable[[Any], None]  # called with every event (see jaxnet.engine.events)

# old spellings, refused by a message naming the new one
_RENAMED = {
    "hidden": "the activation is part of the model now: pass model=mlp.model(sizes, activation=mlp.RELU)",
    "apply_fn": "pass the network as the model argument (mlp.model(...) or cnn.model(...))",
    "callback": "hooks=[f]: f receives every structured event (engine.Check, Diverged, Stopped, Resumed)",
    "config": "checkpoint_config={...}: the extra settings stored with checkpoints and compared on resume",
}


@dataclasses.dataclass(frozen=True)
class Options:
    """How a run trains, evaluates, stops, checkpoints and reports."""

    epochs: int
    """Passes over the training set."""
    batch_size: int
    """Examples per step; the last ``n mod batch_size`` of each epoch's order are dropped."""
    loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY
    """A :class:`jaxnet.losses.Loss` value."""
    grad_source: str = "autodiff"
    """"autodiff" (``jax.grad``) or "manual" (the hand-derived :mod:`jaxnet.backprop`, MLPs only)."""
    shuffle: bool = True
    """Draw a fresh permutation each epoch from ``fold_in(data_key, epoch)`` (else the stored order)."""
    evals_per_epoch: int = 1
    """Evaluation checks per epoch (the epoch's scan is split into this many segments)."""
    patience: int | None = None
    """Stop after this many checks without a lower validation loss (needs ``val``)."""
    eval_train: bool = True
    """Evaluate the loss and accuracy on the whole training set at every check."""
    checkpoint_dir: str | Path | None = None
    """Save a checkpoint there (orbax): parameters, optimizer state, best parameters, the data
    key and the histories. A run that does not resume deletes the checkpoints it finds there."""
    checkpoint_every: int = 1
    """Save every this many epochs (and after the last)."""
    resume: bool = False
    """Continue from the newest checkpoint in ``checkpoint_dir``; its configuration must equal
    this one's apart from ``epochs`` (else :class:`jaxnet.checkpoint.ConfigMismatchError`)."""
    checkpoint_config: dict | None = None
    """Extra JSON-able settings stored with checkpoints and compared on resume."""
    log: Callable[[str], None] | None = print
    """Where the progress lines go (one per check, formatted from the events); None for quiet."""
    hooks: Sequence[Hook] = ()
    """Callables given every structured event: :class:`~jaxnet.engine.events.Check`,
    ``Diverged``, ``Stopped``, ``Resumed``."""
    probe: Probe | None = None
    """``probe(params) → {name: scalar}``, traceable; jitted once (vmapped in a sweep) and run at
    the end of every ``probe_every``-th epoch and after the last, never inside the scan."""
    probe_every: int = 1
    """Epochs between probes."""
    data_parallel: bool = False
    """fit only: split every minibatch over ``devices`` along its first axis (XLA sums the
    gradients); ``batch_size`` must be a multiple of the device count."""
    devices: Sequence[jax.Device] | None = None
    """Where a sweep's member axis (default: every device) or a data-parallel fit's batch axis
    is sharded; a plain fit runs on ``devices[0]``."""


def parse(options: dict[str, Any], *, sweep: bool) -> Options:
    """``Options(**options)``, checked; one TypeError or ValueError naming the bad setting."""
    for name, advice in _RENAMED.items():
        if name in options:
            raise TypeError(f"{name}= is no longer an option: {advice}")
    names = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; the options are {sorted(names)}")
    missing = sorted({"epochs", "batch_size"} - set(options))
    if missing:
        raise TypeError(f"a run needs {' and '.join(missing)}")
    o = Options(**options)
    _check(o, sweep=sweep)
    return o


def _check(o: Options, *, sweep: bool) -> None:
    if not isinstance(o.loss, losses.Loss):
        raise TypeError(f"loss must be a losses.Loss such as losses.SOFTMAX_CROSS_ENTROPY (or losses.get(name)), "
                        f"got {o.loss!r}")
    for name in ("batch_size", "evals_per_epoch", "checkpoint_every", "probe_every"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be a whole number, got {value!r}")
    if o.checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1 epoch, got {o.checkpoint_every}")
    if o.evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be at least 1, got {o.evals_per_epoch}")
    if o.probe is not None and not callable(o.probe):
        raise ValueError(f"probe must be a function params → dict of scalars, got {type(o.probe).__name__}")
    if o.probe_every < 1:
        raise ValueError(f"probe_every must be at least 1 epoch, got {o.probe_every}")
    if any(not callable(hook) for hook in o.hooks):
        raise TypeError("hooks must be callables that take one event")
    if o.data_parallel and sweep:
        raise ValueError("data_parallel splits one model's batches over devices; a sweep already shards its "
                         "members over them: drop data_parallel")
    if o.data_parallel:
        count = len(o.devices or jax.devices())
        if o.batch_size % count:
            raise ValueError(f"data_parallel splits each batch over {count} devices, but batch_size "
                             f"{o.batch_size} is not a multiple of {count}; use a multiple of {count}")
