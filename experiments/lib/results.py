"""``results.json``: plain-JSON conversion, atomic writes, the run record and its schema."""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from experiments.lib.errors import UsageError
from experiments.lib.jsonable import to_jsonable

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
def write_json(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` (see :func:`to_jsonable`) as strict, indented JSON with sorted keys, atomically:
    into ``<name>.tmp``, then renamed over ``path``. A failed write (a full disk, Ctrl-C) removes
    the temporary file and leaves the earlier ``path`` as it was; the OSError names ``path``."""
    path = Path(path)
    text = json.dumps(to_jsonable(obj), indent=1, sort_keys=True, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``path.write_text(text)`` atomically (see :func:`write_json`)."""
    with replacing(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields ``<path>.tmp`` to write; when the block ends it is renamed over ``path`` (an earlier
    ``path`` is never half overwritten), and when the block fails (a full disk, Ctrl-C) it is
    removed and ``path`` left as it was. An OSError without a file name is given ``path``'s."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError) and not error.filename:
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise


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


def divergence(history: Any) -> dict[str, Any]:
    """``run_record``'s ``diverged`` and ``diverged_epoch`` from an engine History: the epoch
    in which the loss became NaN or inf (rounded up to a whole epoch), or None."""
    epoch = history.diverged_epoch
    return {"diverged": bool(history.diverged), "diverged_epoch": None if epoch is None else int(np.ceil(epoch))}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_or_none(value: Any) -> bool:
    return value is None or _is_number(value)


SERIES_KEYS = frozenset(HISTORY_KEYS) | {"step", "seconds", "test_loss", "test_accuracy"}
RESULTS_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "study": (lambda v: isinstance(v, str) and bool(v), "a study name"),
    "argv": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of strings"),
    "command": (lambda v: isinstance(v, str), "a string"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "config_hash": (lambda v: isinstance(v, str) and bool(v), "a string"),
    "quick": (lambda v: isinstance(v, bool), "true or false"),
    "environment": (lambda v: isinstance(v, dict), "an object"),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a number ≥ 0"),
    "complete": (lambda v: isinstance(v, bool), "true or false"),
    "headline": (lambda v: v is None or (isinstance(v, dict) and isinstance(v.get("label"), str)
                                         and (v.get("value") is None or isinstance(v.get("value"), str)
                                              or _is_number(v.get("value")))),
                 'null or {"label": text, "value": a number, text or null}'),
    "runs": (lambda v: isinstance(v, list), "a list"),
    "data": (lambda v: v is None or isinstance(v, dict), "an object"),
}
"""What each top-level key of ``results.json`` holds: (test, description)."""


def _accuracy_problem(where: str, key: str, value: Any) -> str | None:
    if key.endswith("accuracy") and _is_number(value) and not 0.0 <= value <= 1.0:
        return f"{where} {key} = {value} is not in [0, 1]"
    return None


def run_problems(run: Any, where: str | None = None) -> list[str]:
    """Every way one run record breaks the schema (keys, types, ranges)."""
    if not isinstance(run, dict):
        return [f"{where or 'a run'} is not an object"]
    where = where or f"run {run.get('name')!r}"
    problems = [f"{where}: missing key {k!r}" for k in REQUIRED_RUN_KEYS if k not in run]
    if "name" in run and not (isinstance(run["name"], str) and run["name"]):
        problems.append(f"{where}: name {run['name']!r} is not a non-empty string")
    if "config" in run and not isinstance(run["config"], dict):
        problems.append(f"{where}: config is not an object")
    final = run.get("final")
    if "final" in run and not isinstance(final, dict):
        problems.append(f"{where}: final is not an object")
        final = {}
    for key in FINAL_KEYS:
        if key in (final or {}) and not _number_or_none(final[key]):
            problems.append(f"{where}: final {key} = {final[key]!r} is not a number or null")
    for key, value in (final or {}).items():
        problem = _accuracy_problem(f"{where}: final", key, value)
        if problem:
            problems.append(problem)
        elif key.endswith(("accuracy", "loss")) and not _number_or_none(value) and key not in FINAL_KEYS:
            problems.append(f"{where}: final {key} = {value!r} is not a number or null")
    if "seconds" in run and not (_is_number(run["seconds"]) and run["seconds"] >= 0):
        problems.append(f"{where}: seconds = {run.get('seconds')!r} is not a number ≥ 0")
    if "diverged" in run and not isinstance(run["diverged"], bool):
        problems.append(f"{where}: diverged = {run['diverged']!r} is not true or false")
    epoch = run.get("diverged_epoch")
    if epoch is not None and not (_is_number(epoch) and epoch >= 0):
        problems.append(f"{where}: diverged_epoch = {epoch!r} is not a number ≥ 0 or null")
    history = run.get("history")
    if "history" in run and not isinstance(history, dict):
        problems.append(f"{where}: history is not an object")
        history = {}
    history = history or {}
    n = len(history.get("epoch") or []) if isinstance(history.get("epoch"), list) else 0
    for key, values in history.items():
        if key not in SERIES_KEYS:
            continue
        if not isinstance(values, list):
            problems.append(f"{where}: history {key!r} is not a list")
            continue
        bad = next((v for v in values if not _number_or_none(v)), "ok")
        if bad != "ok":
            problems.append(f"{where}: history {key!r} holds {bad!r}, not a number or null")
            continue
        problem = next((p for p in (_accuracy_problem(f"{where}: history", key, v) for v in values) if p), None)
        if problem:
            problems.append(problem)
        if key in HISTORY_KEYS and len(values) > n:
            problems.append(f"{where}: history {key!r} is longer than 'epoch'")
    per_class = run.get("per_class")
    if per_class is not None:
        if not isinstance(per_class, dict):
            problems.append(f"{where}: per_class is not an object or null")
        else:
            for key, values in per_class.items():
                if not isinstance(values, list):
                    problems.append(f"{where}: per_class {key!r} is not a list")
                elif key.endswith(("accuracy", "recall", "precision")):
                    if not all(_number_or_none(v) for v in values):
                        problems.append(f"{where}: per_class {key!r} is not a list of numbers")
                    elif any(v is not None and not 0 <= v <= 1 for v in values):
                        problems.append(f"{where}: per_class {key!r} holds a value outside [0, 1]")
    matrix = run.get("confusion")
    if matrix is not None:
        if (not isinstance(matrix, list) or not matrix
                or any(not isinstance(row, list) or len(row) != len(matrix) for row in matrix)):
            problems.append(f"{where}: confusion matrix is not square")
        elif any(not _is_number(c) or c < 0 for row in matrix for c in row):
            problems.append(f"{where}: confusion matrix holds a value that is not a count ≥ 0")
    return problems


def config_problems(config: Any, cls: type | None) -> list[str]:
    """The recorded ``config`` read back into the study's config class: each recorded field
    must hold its type (keys the class no longer has are ignored, missing ones defaulted)."""
    if cls is None or not isinstance(config, dict):
        return []
    from experiments.lib import config as config_lib

    types_ = config_lib.field_types(cls)
    problems = []
    for key, value in config.items():
        if key not in types_:
            continue
        try:
            config_lib.coerce(types_[key], value)
        except config_lib.Mismatch as error:
            problems.append(f"config {key} = {json.dumps(value)} is not {error.expected}")
    return problems


def results_problems(results: Any, config_class: type | None = None) -> list[str]:
    """Every way ``results`` breaks the schema: missing keys, values of the wrong type or out
    of range (accuracies in [0, 1], counts ≥ 0), run names that repeat, and with
    ``config_class`` a recorded setting that is not of its field's type."""
    if not isinstance(results, dict):
        return ["results are not an object"]
    problems = [f"missing key {k!r}" for k in REQUIRED_RESULTS_KEYS if k not in results]
    for key, (test, description) in RESULTS_TYPES.items():
        if key in results and not test(results[key]):
            problems.append(f"{key} = {json.dumps(results[key])[:60]} is not {description}")
    runs = results.get("runs") if isinstance(results.get("runs"), list) else []
    if "runs" in results and not runs:
        problems.append("no runs")
    names = [run.get("name") for run in runs if isinstance(run, dict)]
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"run names are not unique ({', '.join(repeated)})")
    for i, run in enumerate(runs):
        problems += run_problems(run, None if isinstance(run, dict) and "name" in run else f"run {i}")
    problems += config_problems(results.get("config"), config_class)
    return problems


def check_results(results: Mapping[str, Any], config_class: type | None = None) -> None:
    """ValueError listing every way ``results`` breaks the schema or is not sane (see
    :func:`results_problems`)."""
    problems = results_problems(results, config_class)
    if problems:
        raise ValueError("results do not follow the schema:\n  " + "\n  ".join(problems))
