"""``results.json``: plain-JSON conversion, atomic writes, the run record and its schema."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from experiments.lib.errors import UsageError

HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
FINAL_KEYS = ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss")
REQUIRED_RUN_KEYS = (
    "name", "config", "history", "final", "per_class", "confusion", "seconds", "diverged", "diverged_epoch",
)
REQUIRED_RESULTS_KEYS = (
    "study", "argv", "command", "config", "config_hash", "quick", "environment", "seconds", "complete", "headline",
    "runs",
)


# ---------------------------------------------------------------- JSON
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


def write_json(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` (see :func:`to_jsonable`) as strict, indented JSON with sorted keys, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(obj), indent=1, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def write_results(out: str | Path, results: Mapping[str, Any]) -> Path:
    """Writes ``<out>/results.json``; returns its path."""
    return write_json(Path(out) / "results.json", results)


def read_results(out: str | Path) -> dict[str, Any]:
    """Reads ``<out>/results.json`` (``out`` may also be the file itself).

    Raises:
      UsageError: the file is missing, unreadable or not valid JSON (one line naming the file).
    """
    path = Path(out)
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", "run the study first (without --report-only)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path} cannot be read ({error})",
                         "it is damaged (e.g. a run killed while writing it): delete it and run again") from None
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list):
        raise UsageError(f"{path} is not a jaxnet results file", "delete it and run again")
    return results


# ---------------------------------------------------------------- the results schema
def diverged_epoch(history: Mapping[str, Sequence[Any]], key: str = "train_loss") -> int | None:
    """The first epoch whose ``history[key]`` is NaN, ±inf or None; None if it never diverged."""
    values, epochs_ = list(history.get(key) or []), list(history.get("epoch") or [])
    for i, value in enumerate(values):
        if value is None or not math.isfinite(float(value)):
            return int(epochs_[i]) if i < len(epochs_) else i + 1
    return None


def run_record(name: str, config: Mapping[str, Any], history: Any, final: Mapping[str, Any], *,
               per_class: Any = None, confusion: Any = None, seconds: float, diverged: bool,
               diverged_epoch: int | None = None) -> dict[str, Any]:
    """One run in ``results.json``, with the keys of :data:`REQUIRED_RUN_KEYS`.

    Args:
      name: unique within the study, e.g. "λ=0.001".
      config: the run's hyperparameters.
      history: per-epoch dict (or NamedTuple/dataclass) with :data:`HISTORY_KEYS`; missing
        keys become [], a missing "epoch" becomes 1..n; None for a model without epochs.
      final: "train_accuracy", "val_accuracy", "test_accuracy" (required) and the losses
        (None if absent); extra keys (e.g. "weight_norm") are kept.
      per_class: e.g. ``{"recall": [...], "one_vs_rest_accuracy": [...]}``; confusion: counts[true, pred].
      seconds: training wall clock; diverged / diverged_epoch: whether and when the loss became non-finite.
    """
    final = to_jsonable(dict(final))
    missing = [k for k in FINAL_KEYS[:3] if k not in final]
    if missing:
        raise ValueError(f"run {name!r}: final is missing {missing}; it needs {list(FINAL_KEYS[:3])}")
    hist = to_jsonable(history) if history is not None else {}
    if not isinstance(hist, dict):
        raise TypeError(f"run {name!r}: history must be a dict of per-epoch lists, got {type(history).__name__}")
    for key in HISTORY_KEYS:
        hist.setdefault(key, [])
    if not hist["epoch"]:
        hist["epoch"] = list(range(1, max(len(v) for k, v in hist.items() if isinstance(v, list)) + 1))
    return {
        "name": str(name), "config": to_jsonable(dict(config)), "history": hist,
        "final": {**{k: final.get(k) for k in FINAL_KEYS}, **final},
        "per_class": to_jsonable(per_class), "confusion": to_jsonable(confusion), "seconds": float(seconds),
        "diverged": bool(diverged), "diverged_epoch": None if diverged_epoch is None else int(diverged_epoch),
    }


def check_results(results: Mapping[str, Any]) -> None:
    """ValueError listing every way ``results`` breaks the schema or is not sane."""
    problems = [f"missing key {k!r}" for k in REQUIRED_RESULTS_KEYS if k not in results]
    runs = results.get("runs") or []
    if not runs:
        problems.append("no runs")
    if len({run.get("name") for run in runs}) != len(runs):
        problems.append("run names are not unique")
    for run in runs:
        where = f"run {run.get('name')!r}"
        problems += [f"{where}: missing key {k!r}" for k in REQUIRED_RUN_KEYS if k not in run]
        for key, value in (run.get("final") or {}).items():
            if key.endswith("accuracy") and value is not None and not 0.0 <= value <= 1.0:
                problems.append(f"{where}: final {key} = {value} is not in [0, 1]")
        if not isinstance(run.get("seconds"), (int, float)) or run["seconds"] < 0:
            problems.append(f"{where}: seconds = {run.get('seconds')!r}")
        history = run.get("history") or {}
        n = len(history.get("epoch") or [])
        problems += [f"{where}: history {k!r} is longer than 'epoch'" for k in HISTORY_KEYS if len(history.get(k) or []) > n]
        matrix = run.get("confusion")
        if matrix is not None and (not matrix or any(len(row) != len(matrix) for row in matrix)):
            problems.append(f"{where}: confusion matrix is not square")
    if problems:
        raise ValueError("results do not follow the schema:\n  " + "\n  ".join(problems))
