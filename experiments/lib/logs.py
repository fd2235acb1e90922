"""Logs others can read: a tidy ``metrics.csv`` and (optionally) TensorBoard event files.

``metrics.csv`` has one row per (run, member, epoch, split, metric): the long format that
pandas, R and spreadsheets pivot without parsing ``results.json``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator, Mapping

CSV_COLUMNS = ("run", "member", "epoch", "split", "metric", "value")


def metric_rows(results: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """``(run, member, epoch, split, metric, value)`` for every finite value of every history."""
    for run in results.get("runs", []):
        history = run.get("history") or {}
        member = (run.get("config") or {}).get("member", "")
        epochs = history.get("epoch") or []
        for key, values in history.items():
            if key == "epoch" or not isinstance(values, list) or "_" not in key:
                continue
            split, metric = key.split("_", 1)
            if split not in ("train", "val", "test"):
                continue
            for epoch, value in zip(epochs, values):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    yield run["name"], member, epoch, split, metric, value


def write_metrics_csv(out: Path, results: Mapping[str, Any]) -> Path:
    """Writes ``<out>/metrics.csv``; returns its path."""
    path = Path(out) / "metrics.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(metric_rows(results))
    return path


def write_tensorboard(logdir: Path, results: Mapping[str, Any]) -> Path:
    """TensorBoard event files (tensorboardX, no TensorFlow): one folder per run, a scalar
    ``<split>/<metric>`` at every check (step = the check's epoch × 1000, rounded, so that
    fractional epochs stay ordered)."""
    from tensorboardX import SummaryWriter

    for run in results.get("runs", []):
        name = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in run["name"])
        with SummaryWriter(str(Path(logdir) / name)) as writer:
            for run_name, _member, epoch, split, metric, value in metric_rows({"runs": [run]}):
                writer.add_scalar(f"{split}/{metric}", value, global_step=int(round(float(epoch) * 1000)))
    return Path(logdir)
