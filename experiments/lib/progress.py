"""Progress of a study: lines on stdout, at most one every few seconds when not a terminal.

(A tqdm bar per training run is the ``bar`` mode.)
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

LINE_EVERY_SECONDS = 5.0


def mode(config: Any) -> str:
    """"bar", "lines" or "none" for this config and this stdout."""
    if getattr(config, "quiet", False) or config.progress == "none":
        return "none"
    if config.progress != "auto":
        return config.progress
    return "bar" if sys.stdout.isatty() else "lines"


def write(config: Any, line: str) -> None:
    """A line of progress (through tqdm when a bar is showing), unless progress is off."""
    if mode(config) == "none":
        return
    print(line, flush=True)


def engine_hooks(config: Any, *, label: str, epochs: int) -> dict[str, Callable | None]:
    """``log=`` and ``callback=`` for ``engine.fit`` / ``engine.sweep``: the engine's check
    lines, at most one every :data:`LINE_EVERY_SECONDS` (the first and last always)."""
    if mode(config) == "none":
        return {"log": None, "callback": None}
    last = [0.0]

    def log(line: str) -> None:
        now = time.monotonic()
        important = not line.lstrip().startswith("epoch")
        final = line.lstrip().startswith(f"epoch {float(epochs):6.2f}/")
        if important or final or now - last[0] >= LINE_EVERY_SECONDS:
            last[0] = now
            print(f"[{label}] {line}", flush=True)

    return {"log": log, "callback": None}
