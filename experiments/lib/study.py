"""A study is ``config → run → results.json → report``; this module is the arrow between them.

A study module defines::

    @dataclasses.dataclass(frozen=True)
    class Config(lib.StudyConfig): ...          # every setting, with a quick_variant()

    def run(config: Config, study: lib.Study) -> dict: ...       # trains; returns runs + extras
    def report(results: dict, out: Path) -> lib.Report: ...      # from results.json alone

    def main(argv=None) -> dict:
        return lib.main(NAME, Config, run, report, argv, description=__doc__)

:func:`main` parses and validates the config before anything is created, checks the data and
the output folder, takes the folder's lock, runs, writes ``results.json`` (the resolved config
and its hash included), ``metrics.csv``, optional TensorBoard files, then the report.
``--report-only`` skips training and rebuilds the report from ``results.json``.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from experiments.lib import config as config_lib
from experiments.lib.errors import RunError, UsageError, guarded
from experiments.lib.lock import OutputLock
from experiments.lib.report import Report, format_seconds
from experiments.lib.results import check_results, read_results, to_jsonable, write_results

REPO = config_lib.REPO


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


def output_folder(config: config_lib.StudyConfig, name: str) -> Path:
    """``--out``, or ``runs/<name>``."""
    return Path(config.out) if config.out is not None else Path("runs") / name


def check_writable(out: Path, flag_name: str = "--out") -> None:
    """UsageError unless ``out`` is a folder that exists and is writable, or could be created
    (its nearest existing parent is a writable folder). Creates nothing."""
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"{flag_name} {out} is a file, not a folder", f"give {flag_name} a folder path")
        if not os.access(out, os.W_OK | os.X_OK):
            raise UsageError(f"{flag_name} {out} is not writable", f"choose a writable {flag_name} folder")
        return
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag_name} {out}: {parent} is a file", f"give {flag_name} a folder path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag_name} {out} cannot be created ({parent} is not writable)",
                         f"choose a writable {flag_name} folder")


@dataclasses.dataclass
class Study:
    """A running study: its config, output folder, clock, environment and earlier results."""

    name: str
    config: config_lib.StudyConfig
    out: Path
    argv: list[str]
    environment: dict[str, Any]
    previous: dict[str, Any] | None = None
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def quick(self) -> bool:
        return bool(self.config.quick)

    @property
    def config_hash(self) -> str:
        return config_lib.config_hash(self.config)

    @property
    def data_paths(self) -> dict[str, Path | None]:
        return config_lib.data_paths(self.config)

    def load(self, dataset: str, **kwargs: Any) -> Any:
        """``jaxnet.data.load(dataset)`` with this study's data folders."""
        from jaxnet import data

        from jaxnet.data.errors import DataError

        paths = self.data_paths
        if dataset != "gurmukhi":
            return data.load(dataset, manual_dir=paths["manual_dir"], data_dir=paths["data_dir"], **kwargs)
        fix = "pass --gurmukhi PATH (gurmukhi_digits.npz or the folder holding train/ and val/) or set JAXNET_GURMUKHI"
        if paths["gurmukhi"] is None:
            raise RunError("the Gurmukhi digits were not found", fix)
        try:
            return data.load("gurmukhi", root=paths["gurmukhi"], **kwargs)
        except DataError as error:  # the library speaks of root=; the user gave --gurmukhi
            problem = " ".join(str(error).split()).replace("pass root= ", "").replace("root=", "--gurmukhi")
            raise RunError(f"--gurmukhi {paths['gurmukhi']}: {problem.split('; ')[0].rstrip('.')}", fix) from None

    def log(self, *parts: Any) -> None:
        """A progress line on stdout, unless --quiet / --progress none."""
        from experiments.lib import progress

        progress.write(self.config, f"[{self.name}] " + " ".join(str(p) for p in parts))

    def seconds(self) -> float:
        """Wall-clock seconds since the study started."""
        return time.perf_counter() - self.started

    def path(self, filename: str) -> Path:
        """``<out>/<filename>``."""
        return self.out / filename

    def previous_run(self, name: str) -> dict[str, Any] | None:
        """With --resume, the finished run ``name`` of an earlier results.json made with this
        same config (else None)."""
        for run in (self.previous or {}).get("runs", []):
            if run.get("name") == name:
                self.log(f"resumed {name!r} from {self.out / 'results.json'}")
                return run
        return None

    def engine_options(self, program: str, *, label: str, epochs: int, checkpoints: bool = True,
                       resume: bool | None = None, members: Sequence[str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``engine.fit`` / ``engine.sweep``: the checkpoint folder of
        ``program`` (stamped with this config's hash, so a checkpoint of other settings is never
        continued), resume, and the progress hooks."""
        from experiments.lib import progress

        options = progress.engine_hooks(self.config, label=f"{self.name}: {label}", epochs=epochs, members=members)
        if checkpoints:
            options.update(checkpoint_dir=self.path(f"checkpoints/{program}"),
                           resume=bool(self.config.resume if resume is None else resume),
                           config={"study": self.name, "study_config_hash": self.config_hash})
        return options

    def train(self, program: str, names: Sequence[str], train_fn: Callable[..., list[dict[str, Any]]], *,
              label: str, epochs: int, checkpoints: bool = True) -> list[dict[str, Any]]:
        """The run records of one compiled program (a fit, or a sweep's members).

        Under --resume they come from the earlier results.json when every one of ``names``
        finished there with this same config; otherwise ``train_fn(**engine_options)`` trains
        them, continuing the program's newest checkpoint when it was made with this config
        (a checkpoint of other settings is not continued: that is said in one line, and the
        program trains afresh).
        """
        earlier = {r.get("name"): r for r in (self.previous or {}).get("runs", [])}
        if names and all(n in earlier for n in names):
            return [self.previous_run(n) for n in names]
        options = self.engine_options(program, label=label, epochs=epochs, checkpoints=checkpoints,
                                      members=list(names) if len(names) > 1 else None)
        try:
            return train_fn(**options)
        except ValueError as error:
            from jaxnet import checkpoint

            ahead = type(error).__name__ == "CheckpointAheadError"
            if not options.get("resume") or not (ahead or isinstance(error, checkpoint.ConfigMismatchError)):
                raise
            self.log(f"--resume: the checkpoint of {program} was made with other settings; training it afresh")
            return train_fn(**{**options, "resume": False})

    def save_arrays(self, name: str, **arrays: Any) -> Path:
        """``<out>/arrays/<name>.npz``: arrays a figure needs (e.g. weights), so that
        --report-only can draw it again."""
        path = self.path(f"arrays/{name}.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})
        return path

    def save_progress(self, runs: Sequence[Mapping[str, Any]]) -> Path:
        """Writes the runs so far as an incomplete results.json, so --resume can skip them."""
        return write_results(self.out, {**self.results({"runs": list(runs)}), "complete": False})

    def command(self) -> str:
        return " ".join([f"python -m experiments.{self.name}", shlex.join(self.argv)]).strip()

    def results(self, produced: Mapping[str, Any]) -> dict[str, Any]:
        """The results.json dict: the common keys, then what ``run`` returned (``runs``,
        ``headline`` as (label, value), and the study's own keys)."""
        produced = dict(produced)
        headline = produced.pop("headline", None)
        runs = produced.pop("runs")
        common = {
            "study": self.name, "argv": self.argv, "command": self.command(),
            "config": to_jsonable(dataclasses.asdict(self.config)), "config_hash": self.config_hash,
            "quick": self.quick, "environment": self.environment, "seconds": self.seconds(), "complete": True,
            "headline": None if headline is None else {"label": headline[0], "value": headline[1]},
            "runs": list(runs),
        }
        clash = set(produced) & set(common)
        if clash:
            raise ValueError(f"results keys {sorted(clash)} clash with the common ones")
        return {**common, **produced}


def _previous(study: Study) -> dict[str, Any] | None:
    path = study.out / "results.json"
    if not study.config.resume or not path.exists():
        return None
    earlier = read_results(path)
    if earlier.get("config_hash") == study.config_hash:
        return earlier
    recorded = {k: v for k, v in (earlier.get("config") or {}).items() if k not in config_lib.RUN_FIELDS or k == "quick"}
    changed = config_lib.differences(recorded, config_lib.science(study.config))
    study.log(f"--resume: {path} was made with other settings ({'; '.join(changed) or 'an older format'}); "
              "retraining every run")
    return None


def write_report(results: Mapping[str, Any], out: Path, report_fn: Callable[[dict, Path], Report]) -> Path:
    """Builds the report from ``results`` alone, adds the "How this was run" footer, writes it."""
    report = report_fn(dict(results), out)
    env = results.get("environment") or {}
    report.heading("How this was run").text(
        f"`{results.get('command')}` on {env.get('date')}: jax {env.get('jax')} on {env.get('device')}, "
        f"{format_seconds(results.get('seconds'))} wall clock; config hash `{results.get('config_hash')}`. "
        "Every number is in [`results.json`](results.json); the settings are its `config`, and "
        f"`python -m experiments.{results.get('study')} --report-only --out DIR` rebuilds this report from it.")
    return report.write(out)


def _run(name: str, cls: type, run_fn: Callable, report_fn: Callable, argv: list[str],
         description: str | None, datasets: Any) -> dict[str, Any]:
    prog = f"python -m experiments.{name}"
    config = config_lib.parse(cls, argv, prog=prog, description=description)
    out = output_folder(config, name)
    if config.report_only:
        results = read_results(out)
        if results.get("study") != name:
            raise UsageError(f"{out / 'results.json'} is from study {results.get('study')!r}, not {name!r}",
                             f"give --out the folder of a {name} run")
        import matplotlib

        matplotlib.use("Agg")
        path = write_report(results, out, report_fn)
        print(f"[{name}] rebuilt {path} from {out / 'results.json'}", flush=True)
        return results
    check_writable(out)
    from experiments.lib import compile_cache

    compile_cache.enable()
    study = Study(name, config, out, argv, {})
    for dataset in (datasets(config) if callable(datasets) else datasets):  # missing or damaged data fails here,
        # before anything is created
        study.load(dataset)
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    from experiments.lib import progress

    with OutputLock(out), progress.closing():
        study.environment = environment()
        study.previous = _previous(study)
        study.log(f"writing to {out} on {study.environment['device']} × {study.environment['device_count']} "
                  f"(config hash {study.config_hash})")
        results = to_jsonable(study.results(run_fn(config, study)))
        check_results(results)
        write_results(out, results)
        from experiments.lib import logs

        logs.write_metrics_csv(out, results)
        if config.tensorboard:
            logs.write_tensorboard(out / "tb", results)
        path = write_report(results, out, report_fn)
        study.log(f"wrote {path} and results.json in {format_seconds(study.seconds())}")
    return results


def main(name: str, cls: type, run: Callable, report: Callable, argv: Sequence[str] | None = None, *,
         description: str | None = None,
         datasets: Sequence[str] | Callable[[Any], Sequence[str]] = ("mnist",)) -> dict[str, Any]:
    """The command line of study ``name``: parse → check → run → results.json → report.

    Args:
      cls: the study's :class:`~experiments.lib.config.StudyConfig` subclass.
      run: ``run(config, study) -> {"runs": [...], "headline": (label, value), **extra}``.
      report: ``report(results, out) -> Report`` (from results.json alone; figures into ``out``).
      datasets: what the study loads (or ``config → names``), checked before anything is created.
    Returns:
      The results as written. Errors end in one line on stderr and ``SystemExit`` (2: usage,
      1: run time).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _run(name, cls, run, report, argv, description, datasets), argv)
