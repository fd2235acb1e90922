"""A run between two epochs: :class:`TrainState` (arrays only, a pytree) and :class:`Run`
(what stays fixed: settings, data on the device, programs, and the host-side record)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxnet.engine.options import Options
from jaxnet.engine.programs import Programs
from jaxnet.history import History

Array = jax.Array


class TrainState(NamedTuple):
    """Everything that changes during a run, as arrays: a pytree.

    ``params``, ``opt_state`` and ``best_params`` have the model's structure (member-stacked
    in a sweep: every leaf gains a leading axis K, padded to a multiple of the devices).
    ``l2`` is λ, () for fit and (K,) in a sweep; ``data_keys`` the data-order key, (2,) or
    (K, 2). ``best_loss``, ``bad_checks`` and ``active`` are per member, shape (K,) ((1,) for
    fit), on the host: the lowest validation loss, checks since it last fell, and whether the
    member still trains (neither stopped early nor diverged). ``epoch`` counts epochs done.
    """

    params: Any
    opt_state: Any
    l2: Array
    best_params: Any
    data_keys: Array
    epoch: np.ndarray
    best_loss: np.ndarray
    bad_checks: np.ndarray
    active: np.ndarray


@dataclasses.dataclass(eq=False)
class Run:
    """What stays fixed during a run, and the histories it records (on the host)."""

    options: Options
    programs: Programs
    vmapped: bool
    members: int  # the member axis, padded to a multiple of the devices (1 for fit)
    reported: int  # the caller's members
    x: Array
    y: Array
    train_indices: Array
    train_chunks: tuple
    splits: dict  # name → ((x, y), chunks)
    steps: int  # per epoch
    bounds: tuple[int, ...]  # step counts at the checks of an epoch: (0, …, steps)
    config: dict  # what a checkpoint must agree on
    place_members: Callable[[Any], Array]
    place_shared: Callable[[Any], Array]
    probe: Callable | None  # jitted
    histories: list[History]  # one per member; extended by run_epoch
    started: float  # time.perf_counter() when the run (virtually) began
    log: Callable[[str], None] | None

    def done(self, state: TrainState) -> bool:
        """True once every epoch ran, or every member stopped early or diverged."""
        return int(state.epoch) >= self.options.epochs or not state.active.any()


class FitResult(NamedTuple):
    params: Any  # after the last step (of the last finite check, if the run diverged)
    opt_state: Any
    best_params: Any  # at the lowest validation loss (= params without validation data)
    history: History


class SweepResult(NamedTuple):
    params: Any  # stacked: leading axis = member
    opt_state: Any
    best_params: Any
    histories: list[History]

    def member(self, k: int, which: str = "params") -> Any:
        """Member ``k``'s parameters (``which="best_params"`` for its best)."""
        return jax.tree.map(lambda leaf: leaf[k], getattr(self, which))
