"""The record of a training run: metrics at every evaluation check, probe values, and how
it ended."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

METRICS = (
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
)


@dataclasses.dataclass
class History:
    """Per-check lists (``epoch`` may be fractional when evaluating several times per
    epoch; ``seconds`` is wall-clock time since the run started, compilation included) and
    the run's outcome. A metric that was not evaluated is None at that check.

    ``probe_epoch`` and ``probes`` hold what a ``probe`` passed to
    :func:`jaxnet.engine.fit` / :func:`~jaxnet.engine.sweep` measured: ``probes[name][i]``
    was taken at epoch ``probe_epoch[i]`` (None where it was NaN or inf)."""

    epoch: list[float] = dataclasses.field(default_factory=list)
    step: list[int] = dataclasses.field(default_factory=list)
    train_loss: list[float | None] = dataclasses.field(default_factory=list)
    train_accuracy: list[float | None] = dataclasses.field(default_factory=list)
    val_loss: list[float | None] = dataclasses.field(default_factory=list)
    val_accuracy: list[float | None] = dataclasses.field(default_factory=list)
    test_loss: list[float | None] = dataclasses.field(default_factory=list)
    test_accuracy: list[float | None] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    best_epoch: float | None = None
    best_val_loss: float | None = None
    stopped_epoch: float | None = None
    diverged: bool = False
    diverged_epoch: float | None = None
    probe_epoch: list[float] = dataclasses.field(default_factory=list)
    probes: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)

    def append(self, epoch: float, step: int, seconds: float, values: dict[str, float | None]) -> None:
        """Adds one check; ``values`` maps metric names (:data:`METRICS`) to numbers."""
        self.epoch.append(float(epoch))
        self.step.append(int(step))
        self.seconds.append(float(seconds))
        for name in METRICS:
            value = values.get(name)
            getattr(self, name).append(None if value is None or not math.isfinite(value) else float(value))

    def append_probe(self, epoch: float, values: dict[str, float]) -> None:
        """Adds one probe measurement; a name not seen before gets None at earlier epochs."""
        earlier = len(self.probe_epoch)
        self.probe_epoch.append(float(epoch))
        for name, value in values.items():
            column = self.probes.setdefault(name, [None] * earlier)
            column.append(None if value is None or not math.isfinite(value) else float(value))
        for name, column in self.probes.items():
            if len(column) < len(self.probe_epoch):
                column.append(None)

    def last(self, name: str) -> float | None:
        """The newest non-None value of metric ``name``."""
        values = [v for v in getattr(self, name) if v is not None]
        return values[-1] if values else None

    def at_epoch(self, name: str, epoch: float) -> float | None:
        """Metric ``name`` at the check made at ``epoch`` (e.g. ``best_epoch``)."""
        for e, value in zip(self.epoch, getattr(self, name)):
            if e == epoch:
                return value
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, dicts and numbers (JSON-ready)."""
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        names = {f.name for f in dataclasses.fields(cls)}
        # copies: two Histories made from one dict (a sweep's padding members) must not share lists
        values = {k: list(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        if "probes" in values:
            values["probes"] = {name: list(column) for name, column in values["probes"].items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> History:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))
