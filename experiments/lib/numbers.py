"""How a number is written in a report, a table or a log line: one formatting for every study."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: "—" for None, "NaN"/"inf" spelled out, floats to ``digits`` places
    (scientific when tiny or huge), integers and strings as they are."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if not math.isfinite(x):
            return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if x != 0 and (abs(x) < 10.0 ** -digits or abs(x) >= 1e6):
            return f"{x:.{max(digits - 1, 1)}e}"
        return f"{x:.{digits}f}"
    return str(x)


def fmt_epoch(epoch: Any) -> str:
    """An epoch number as people write it: "60", "12.4"; "—" for None."""
    return "—" if epoch is None else f"{float(epoch):g}"


def format_seconds(seconds: float | None) -> str:
    """"0.4 s", "42.0 s", "3 min 05 s", "1 h 02 min"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
