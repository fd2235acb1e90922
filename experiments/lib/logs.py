"""Logs others can read: a tidy ``metrics.csv`` and (optionally) TensorBoard event files.

``metrics.csv`` has one row per (run, member, epoch, split, metric): the long format that
pandas, R and spreadsheets pivot without parsing ``results.json``. ``run`` is the run's name
in ``results.json``; ``member`` its sweep member where the run's config records one (else
empty); ``split`` is train / val / test; ``metric`` loss / accuracy. A run's test numbers are
those of its history when the engine evaluated the test set at every check, else its final
test evaluation, on one row at the last epoch.

TensorBoard (``--tensorboard``): ``<out>/tb/<run>/`` per run, written with tensorboardX (no
TensorFlow): scalars ``train/loss``, ``val/accuracy``, … and ``epoch`` at every check, with
the optimizer step as the global step; ``<out>/tb/<run>/hparams/`` holds the run's
hyperparameters (its config's numbers and strings) and final metrics for the HParams tab,
so the members of a sweep can be compared side by side. View with
``tensorboard --logdir runs`` (``pip install 'jaxnet[tensorboard]'``).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

CSV_COLUMNS = ("run", "member", "epoch", "split", "metric", "value")
SPLITS = ("train", "val", "test")
HPARAM_TYPES = (bool, int, float, str)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _member(run: Mapping[str, Any]) -> Any:
    config = run.get("config") or {}
    for key in ("member", "member_index"):
        if config.get(key) is not None:
            return config[key]
    return run.get("member", "")


def _series(history: Mapping[str, Any]) -> Iterator[tuple[str, str, list]]:
    for key, values in history.items():
        if not isinstance(values, list) or "_" not in key:
            continue
        split, metric = key.split("_", 1)
        if split in SPLITS:
            yield split, metric, values


def metric_rows(results: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """``(run, member, epoch, split, metric, value)`` for every finite value of every history,
    then each run's final test loss / accuracy at its last epoch when its history has none."""
    for run in results.get("runs", []):
        history = run.get("history") or {}
        member = _member(run)
        epochs = history.get("epoch") or []
        tested = set()
        for split, metric, values in _series(history):
            for epoch, value in zip(epochs, values):
                if _number(value) is not None:
                    if split == "test":
                        tested.add(metric)
                    yield run["name"], member, epoch, split, metric, value
        final = run.get("final") or {}
        for metric in ("loss", "accuracy"):
            value = _number(final.get(f"test_{metric}"))
            if metric not in tested and value is not None:
                yield run["name"], member, (epochs[-1] if epochs else ""), "test", metric, value


def write_metrics_csv(out: Path, results: Mapping[str, Any]) -> Path:
    """Writes ``<out>/metrics.csv`` (columns :data:`CSV_COLUMNS`) atomically; returns its path."""
    from experiments.lib.results import write_text_atomic

    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(metric_rows(results))
    return write_text_atomic(Path(out) / "metrics.csv", text.getvalue())


def run_folder(name: str) -> str:
    """A run name as a folder name: letters, digits and ``-_.=`` kept, anything else ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in name) or "run"


def hparams(run: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """The run's hyperparameters (its config's scalar values; lists such as the layer sizes as
    text) and its final metrics (``final/<name>``: every finite number of ``final``)."""
    params = {}
    for key, value in (run.get("config") or {}).items():
        if isinstance(value, HPARAM_TYPES) and (not isinstance(value, float) or math.isfinite(value)):
            params[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, (int, float, str)) for v in value):
            params[key] = "-".join(str(v) for v in value)
    metrics = {f"final/{k}": float(v) for k, v in (run.get("final") or {}).items() if _number(v) is not None}
    return params, metrics


def _clear_events(folder: Path) -> None:
    """Removes earlier event files, so a rerun into the same folder does not draw every curve twice."""
    if folder.is_dir():
        for event_file in folder.rglob("events.out.tfevents.*"):
            event_file.unlink()


def write_tensorboard(logdir: Path, results: Mapping[str, Any]) -> Path:
    """TensorBoard event files (tensorboardX, no TensorFlow), one folder per run.

    Scalars ``<split>/<metric>`` and ``epoch`` at every check, at global step = the history's
    optimizer ``step`` where it has one (else the check's index); the run's hyperparameters and
    final metrics in ``<run>/hparams``. Earlier event files of these runs are replaced.

    Args:
      logdir: the TensorBoard folder, e.g. ``<out>/tb``.
      results: the study's results (``results.json``).
    Returns:
      ``logdir``.
    """
    from tensorboardX import SummaryWriter

    logdir = Path(logdir)
    for run in results.get("runs", []):
        folder = logdir / run_folder(str(run["name"]))
        _clear_events(folder)
        history = run.get("history") or {}
        epochs = history.get("epoch") or []
        steps = history.get("step") or []
        if len(steps) != len(epochs) or not all(isinstance(s, int) for s in steps):
            steps = list(range(len(epochs)))
        with SummaryWriter(str(folder)) as writer:
            for i, (epoch, step) in enumerate(zip(epochs, steps)):
                if _number(epoch) is not None:
                    writer.add_scalar("epoch", float(epoch), global_step=step)
                for split, metric, values in _series(history):
                    value = _number(values[i]) if i < len(values) else None
                    if value is not None:
                        writer.add_scalar(f"{split}/{metric}", float(value), global_step=step)
            params, metrics = hparams(run)
            if params and metrics:
                writer.add_hparams(params, metrics, name="hparams", global_step=steps[-1] if steps else 0)
    return logdir
