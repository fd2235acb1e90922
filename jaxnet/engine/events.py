"""What a run tells its subscribers, as data: a progress bar, TensorBoard, a CSV writer or
a printed line all read these records, never each other's strings."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from jaxnet.history import History


class Check(NamedTuple):
    """One evaluation check (``evals_per_epoch`` per epoch)."""

    epoch: float  # epochs done, fractional between an epoch's checks
    epochs: int  # epochs asked for
    seconds: float  # since the run began, compilation included
    metrics: dict[str, np.ndarray]  # "train_loss", "val_accuracy", ...: one value per member
    histories: tuple[History, ...]  # one per member (one for fit), up to this check
    probes: dict[str, np.ndarray]  # what the probe measured at this check ({} if it did not run)
    sweep: bool


class Diverged(NamedTuple):
    """A member's loss or parameters became NaN or inf; it keeps its last finite state."""

    member: int
    epoch: float
    sweep: bool


class Stopped(NamedTuple):
    """Every member has stopped: at least one early (no lower validation loss for ``patience``
    checks), the others early or diverged."""

    epoch: float


class Resumed(NamedTuple):
    """The run continues a checkpoint."""

    directory: str
    epoch: int


def _format(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def line(event: Any) -> str:
    """The progress line of an event, as ``fit``/``sweep`` print it with ``log=print``."""
    if isinstance(event, Diverged):
        return ("member %d: " % event.member) * event.sweep + (
            f"diverged at epoch {event.epoch:.2f} (the loss became NaN or inf); kept the parameters of the last "
            "finite check. Try a smaller learning rate.")
    if isinstance(event, Stopped):
        return f"stopped early at epoch {event.epoch:.2f}"
    if isinstance(event, Resumed):
        return f"resumed from {event.directory} after epoch {event.epoch}"
    values, head = event.metrics, f"epoch {event.epoch:6.2f}/{event.epochs}"
    if not event.sweep:
        parts = [head]
        for name in ("train", "val", "test"):
            if f"{name}_loss" in values:
                parts.append(f"{name} loss {_format(float(values[f'{name}_loss'][0]))} "
                             f"acc {_format(float(values[f'{name}_accuracy'][0]), True)}")
        parts += [f"{name} {float(v[0]):.4g}" for name, v in event.probes.items()]
        return "  ".join(parts) + f"  {event.seconds:6.1f}s"
    count = len(event.histories)
    key = next((k for k in ("val_accuracy", "train_accuracy", "test_accuracy") if k in values), None)
    if key is None:
        return f"{head}  {count} members  {event.seconds:6.1f}s"
    shown = " ".join(_format(float(v), True) for v in values[key])
    live = sum(not h.diverged and h.stopped_epoch is None for h in event.histories)
    return f"{head}  {count} members ({live} training)  {key}: {shown}  {event.seconds:6.1f}s"


def publish(hooks: Sequence[Callable[[Any], None]], log: Callable[[str], None] | None, event: Any) -> None:
    """Gives ``event`` to every hook, and its line to ``log``."""
    for hook in hooks:
        hook(event)
    if log:
        log(line(event))
