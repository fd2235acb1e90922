"""The contract every study shares: options, run context, ``results.json`` and ``report.md``.

A study ``experiments/<name>.py`` exposes ``main(argv: list[str] | None = None) -> dict``::

    args = common.parser(NAME, __doc__, default_epochs=20).parse_args(argv)
    study = common.start(NAME, args, argv)        # out dir, wall clock, Agg, environment
    runs = [common.run_record(...), ...]           # the same keys for every run
    report = study.report("Title").what_was_run("...")
    return study.finish(study.results(runs, headline=("test accuracy", 0.97)), report)
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))
HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")
FINAL_KEYS = ("train_accuracy", "val_accuracy", "test_accuracy", "train_loss", "val_loss", "test_loss")
REQUIRED_RUN_KEYS = (
    "name", "config", "history", "final", "per_class", "confusion", "seconds", "diverged", "diverged_epoch",
)
REQUIRED_RESULTS_KEYS = (
    "study", "argv", "command", "args", "quick", "environment", "seconds", "complete", "headline", "runs",
)


# ---------------------------------------------------------------- options
def _default_path(env: str, fallback: Path | None) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env])
    return fallback if fallback is not None and fallback.exists() else None


def add_data_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds --manual-dir, --data-dir and --gurmukhi (defaults from the environment or ../shared)."""
    p.add_argument("--manual-dir", type=Path, default=_default_path("JAXNET_MANUAL_DIR", SHARED / "data" / "mnist"),
                   help="folder with the four MNIST .gz files (env JAXNET_MANUAL_DIR; default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=_default_path("JAXNET_DATA_DIR", None),
                   help="tensorflow-datasets data dir (env JAXNET_DATA_DIR; default: %(default)s)")
    p.add_argument("--gurmukhi", type=Path,
                   default=_default_path("JAXNET_GURMUKHI", SHARED / "data" / "gurmukhi" / "gurmukhi_digits.npz"),
                   help="the Gurmukhi digits .npz (env JAXNET_GURMUKHI; default: %(default)s)")
    return p


def add_run_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds --quick, --seed, --resume and --quiet."""
    p.add_argument("--quick", action="store_true", help="small, fast variant (what the tests run)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="reuse finished runs from an earlier results.json")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def parser(name: str, description: str | None, *, default_epochs: int) -> argparse.ArgumentParser:
    """The common options of study ``name``; the study adds its own with ``add_argument``.

    ``--epochs`` defaults to None; :func:`epochs` resolves it against ``default_epochs``.
    """
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs") / name, help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: {default_epochs}; fewer with --quick)")
    p.set_defaults(default_epochs=default_epochs)
    return add_data_options(add_run_options(p))


def epochs(args: argparse.Namespace, *, quick: int) -> int:
    """``--epochs`` if given, else ``quick`` under --quick, else the study's default."""
    if args.epochs is not None:
        return args.epochs
    return quick if args.quick else args.default_epochs


# ---------------------------------------------------------------- JSON
def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: arrays and numpy/jax scalars to lists/numbers, NaN/±inf to None,
    Paths to str, tuples/sets to lists, NamedTuples/dataclasses/Namespaces to dicts."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
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
    """Reads ``<out>/results.json`` (``out`` may also be the file itself)."""
    path = Path(out)
    return json.loads((path / "results.json" if path.is_dir() else path).read_text())


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


# ---------------------------------------------------------------- report.md (experiments/report.py)
from experiments.report import Report, fmt, format_seconds  # noqa: E402,F401  (re-exported)


# ---------------------------------------------------------------- the run context
def environment() -> dict[str, Any]:
    """Versions, device and date, for the record."""
    import jax

    device = jax.devices()[0]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "jax": jax.__version__, "numpy": np.__version__,
        "backend": jax.default_backend(), "device": device.platform if device.device_kind.lower() == device.platform
        else f"{device.platform}: {device.device_kind}",
        "device_count": jax.device_count(), "platform": platform.platform(), "git_commit": commit,
    }


@dataclasses.dataclass
class Study:
    """A running study: its options, out dir, wall clock, environment and earlier results."""

    name: str
    args: argparse.Namespace
    out: Path
    argv: list[str]
    environment: dict[str, Any]
    previous: dict[str, Any] | None = None
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def quick(self) -> bool:
        return bool(getattr(self.args, "quick", False))

    def log(self, *parts: Any) -> None:
        """Progress to stdout, unless --quiet."""
        if not getattr(self.args, "quiet", False):
            print(f"[{self.name}]", *parts, flush=True)

    def seconds(self) -> float:
        """Wall-clock seconds since :func:`start`."""
        return time.perf_counter() - self.started

    def path(self, filename: str) -> Path:
        """``<out>/<filename>``, e.g. for a figure."""
        return self.out / filename

    def previous_run(self, name: str) -> dict[str, Any] | None:
        """With --resume, the finished run ``name`` from the earlier results.json (else None)."""
        for run in (self.previous or {}).get("runs", []):
            if run.get("name") == name:
                self.log(f"resumed {name!r} from {self.out / 'results.json'}")
                return run
        return None

    def checkpoint(self, runs: Iterable[Mapping[str, Any]], **extra: Any) -> Path:
        """Writes the runs so far as an incomplete results.json, so --resume can skip them."""
        return write_results(self.out, {**self.results(list(runs), **extra), "complete": False})

    def report(self, title: str) -> Report:
        """An empty :class:`Report`, marked quick under --quick."""
        return Report(title, quick=self.quick)

    def results(self, runs: Sequence[Mapping[str, Any]], *, headline: tuple[str, float] | None = None,
                **extra: Any) -> dict[str, Any]:
        """The results.json dict: :data:`REQUIRED_RESULTS_KEYS` plus the study's own ``extra`` keys.

        ``headline`` is the (label, value) that the index page shows for this study.
        """
        clash = set(extra) & set(REQUIRED_RESULTS_KEYS)
        if clash:
            raise ValueError(f"extra results keys {sorted(clash)} clash with the common ones")
        return {
            "study": self.name, "argv": self.argv, "command": self.command(), "args": to_jsonable(self.args),
            "quick": self.quick, "environment": self.environment, "seconds": self.seconds(), "complete": True,
            "headline": None if headline is None else {"label": headline[0], "value": headline[1]},
            "runs": list(runs), **extra,
        }

    def command(self) -> str:
        return " ".join([f"python -m experiments.{self.name}", *self.argv])

    def finish(self, results: Mapping[str, Any], report: Report) -> dict[str, Any]:
        """Writes results.json and report.md (with a "How this was run" footer); returns the results as written."""
        env = self.environment
        report.heading("How this was run").text(
            f"`{self.command()}` on {env['date']}: jax {env['jax']} on {env['device']}, "
            f"{format_seconds(results.get('seconds', self.seconds()))} wall clock. "
            f"Every number is in [`results.json`](results.json).")
        written = to_jsonable(results)
        check_results(written)
        write_results(self.out, written)
        report.write(self.out)
        self.log(f"wrote {self.out / 'report.md'} and results.json in {format_seconds(self.seconds())}")
        return written


def start(name: str, args: argparse.Namespace, argv: Sequence[str] | None = None) -> Study:
    """Starts study ``name``: makes ``args.out``, selects matplotlib's Agg backend, starts the
    clock, records the environment and argv, and (with --resume) loads earlier results."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = list(sys.argv[1:] if argv is None else argv)
    study = Study(name, args, out, argv, environment())
    if getattr(args, "resume", False) and (out / "results.json").exists():
        previous = read_results(out)
        if previous.get("quick") == study.quick:
            study.previous = previous
        else:
            study.log("--resume: the earlier results.json has a different --quick setting; starting afresh")
    study.log(f"writing to {out}")
    return study
