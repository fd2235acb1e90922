"""Plain JSON values from whatever a run produces (arrays, numpy scalars, NamedTuples, Paths)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: arrays and numpy/jax scalars to lists/numbers, NaN/±inf to None,
    Paths to str, tuples/sets to lists, NamedTuples/dataclasses to dicts."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__"):  # numpy and jax arrays
        return to_jsonable(np.asarray(obj).tolist())
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON: {obj!r:.80}")
