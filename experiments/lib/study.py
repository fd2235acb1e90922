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
``--report-only`` skips training and rebuilds the report from ``results.json``, after checking it
against the schema.

No finished work is lost: :meth:`Study.train` checks a program's run names before it trains and
its records as soon as they are made, and saves every finished program into ``results.json``
(``complete: false`` until the end), so a later failure, Ctrl-C or SIGTERM keeps them for
``--resume``. A failed or stopped run ends in one line naming the file and the fix; its partial
files (``*.tmp``, empty files, a half-drawn report) are removed, and an output folder it created
and left empty is removed too (:mod:`experiments.lib.failing`).
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
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
from experiments.lib import failing
from experiments.lib.errors import RunError, UsageError, guarded
from experiments.lib.lock import OutputLock
from experiments.lib.numbers import format_seconds
from experiments.lib.report import Report
from experiments.lib.results import (read_results, replacing, results_problems, run_problems, to_jsonable,
                                     write_results)

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
    finished: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """every run record trained or reused so far, in order (what :meth:`train` saves)"""
    loaded: dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False)
    """the datasets read so far (:meth:`load`)"""

    @property
    def quick(self) -> bool:
        return bool(self.config.quick)

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        """The data this run reads (:func:`~experiments.lib.config.data_record`), fixed at the start."""
        return config_lib.data_record(self.config)

    @functools.cached_property
    def config_hash(self) -> str:
        return config_lib.hash_of({**config_lib.science(self.config), "data": self.data})

    @property
    def data_paths(self) -> dict[str, Path | None]:
        return config_lib.data_paths(self.config)

    def load(self, dataset: str, **kwargs: Any) -> Any:
        """``jaxnet.data.load(dataset)`` with this study's data folders, read once per study (the
        check before the run and the run itself share it)."""
        key = (dataset, tuple(sorted(kwargs.items())))
        if key not in self.loaded:
            self.loaded[key] = self._load(dataset, **kwargs)
        return self.loaded[key]

    def _load(self, dataset: str, **kwargs: Any) -> Any:
        from jaxnet import data

        from jaxnet.data.errors import DataError

        paths = self.data_paths
        if dataset != "gurmukhi":
            from jaxnet.data.errors import ChecksumError

            try:
                return data.load(dataset, manual_dir=paths["manual_dir"], data_dir=paths["data_dir"], **kwargs)
            except ChecksumError:
                other = _other_dataset(dataset, paths["manual_dir"])
                if other is None:
                    raise
                where = (f"--manual-dir {paths['manual_dir']}" if self.config.manual_dir is not None
                         else f"the MNIST folder {paths['manual_dir']} (JAXNET_MANUAL_DIR or the default)")
                raise RunError(f"{where} holds the {other[0]} files, not the {dataset} ones ({other[1].name} is "
                               f"{other[0]}'s, intact)",
                               f"keep each dataset's four .gz files in a folder of its own and point --manual-dir "
                               f"at the {dataset} folder (or leave it out to download {dataset})") from None
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

    def engine_options(self, program: str, *, label: str, epochs: int, checkpoints: bool | int = True,
                       resume: bool | None = None, members: Sequence[str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``engine.fit`` / ``engine.sweep``: the checkpoint folder of
        ``program`` (stamped with this config's hash, so a checkpoint of other settings is never
        continued), resume, and the progress hooks. ``checkpoints``: True (about
        :data:`CHECKPOINTS_PER_RUN` over the run: every ``epochs // 20`` epochs, at least every
        epoch, and the last), a number N (every N epochs, and the last), or False (none)."""
        from experiments.lib import progress

        options = progress.engine_hooks(self.config, label=f"{self.name}: {label}", epochs=epochs, members=members)
        if checkpoints:
            every = max(1, epochs // CHECKPOINTS_PER_RUN) if checkpoints is True else int(checkpoints)
            options["checkpoint_every"] = every
            options.update(checkpoint_dir=self.path(f"checkpoints/{program}"),
                           resume=bool(self.config.resume if resume is None else resume),
                           checkpoint_config={"study": self.name, "study_config_hash": self.config_hash})
        return options

    def train(self, program: str, names: Sequence[str], train_fn: Callable[..., list[dict[str, Any]]], *,
              label: str, epochs: int, checkpoints: bool | int = True) -> list[dict[str, Any]]:
        """The run records of one compiled program (a fit, or a sweep's members).

        ``names`` (the records' names, in order) are checked first: a name given twice or already
        taken by an earlier run of this study is a UsageError, before anything trains. Under
        --resume the records come from the earlier results.json when every one of ``names``
        finished there with this same config; otherwise ``train_fn(**engine_options)`` trains
        them, continuing the program's newest checkpoint when it was made with this config
        (a checkpoint of other settings is not continued: that is said in one line, and the
        program trains afresh). The records are checked against the run schema as soon as they
        are made and saved at once into results.json (``complete: false``), so nothing finished
        is lost to a later failure.

        Args:
          checkpoints: checkpoints of the program under ``<out>/checkpoints/<program>``: True
            about 20 over the run (every ``max(1, epochs // 20)`` epochs, and the last: a save
            blocks for about 10 ms plus the write, which many short epochs would feel), a
            number N after every N epochs, False none. With them Ctrl-C, SIGTERM or a kill
            loses at most the epochs since the last one (``--resume`` continues there); a
            program that trains for more than a minute should keep them.
        """
        names = [str(n) for n in names]
        _check_names(names, [r.get("name") for r in self.finished], program)
        earlier = {r.get("name"): r for r in (self.previous or {}).get("runs", [])}
        if names and all(n in earlier for n in names):
            records = [self.previous_run(n) for n in names]
        else:
            options = self.engine_options(program, label=label, epochs=epochs, checkpoints=checkpoints,
                                          members=list(names) if len(names) > 1 else None)
            try:
                records = train_fn(**options)
            except ValueError as error:
                from jaxnet import checkpoint, engine

                if not options.get("resume") or not isinstance(error, (engine.CheckpointAheadError,
                                                                        checkpoint.ConfigMismatchError)):
                    raise
                self.log(f"--resume: the checkpoint of {program} was made with other settings; training it afresh")
                records = train_fn(**{**options, "resume": False})
            _check_names([r.get("name") if isinstance(r, Mapping) else None for r in records],
                         [r.get("name") for r in self.finished], program)
            problems = [p for r in records for p in run_problems(to_jsonable(r))]
            if problems:
                raise ValueError(f"the records of program {program!r} break the run schema: "
                                 f"{'; '.join(problems[:3])}")
        self.finished += records
        self.save_progress(self.finished)
        return records

    def save_arrays(self, name: str, **arrays: Any) -> Path:
        """``<out>/arrays/<name>.npz``: arrays a figure needs (e.g. weights), so that
        --report-only can draw it again."""
        path = self.path(f"arrays/{name}.npz")
        with replacing(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
        return path

    def save_progress(self, runs: Sequence[Mapping[str, Any]]) -> Path:
        """Writes the runs so far as an incomplete results.json (``complete: false``), so --resume
        can skip them (:meth:`train` does it after every program)."""
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
            "data": self.data,
            "quick": self.quick, "environment": self.environment, "seconds": self.seconds(), "complete": True,
            "headline": None if headline is None else {"label": headline[0], "value": headline[1]},
            "runs": list(runs),
        }
        clash = set(produced) & set(common)
        if clash:
            raise ValueError(f"results keys {sorted(clash)} clash with the common ones")
        return {**common, **produced}


def _other_dataset(dataset: str, manual_dir: Path | None) -> tuple[str, Path] | None:
    """``(other dataset, file)`` when a file of ``manual_dir`` that failed ``dataset``'s checksum is
    another dataset's official file of the same name (MNIST, Fashion-MNIST and KMNIST name their
    four files alike); else None."""
    if manual_dir is None:
        return None
    from jaxnet.data import mnist as idx
    from jaxnet.data.loading import IDX_DATASETS

    for filename in idx.FILES:
        path = Path(manual_dir) / filename
        if not path.is_file():
            continue
        stat = path.stat()
        got = config_lib._file_digest(str(path), stat.st_size, stat.st_mtime_ns)
        for other in IDX_DATASETS:
            if other == dataset:
                continue
            try:
                _, info = idx.registered_files(other)[filename]
            except Exception:  # noqa: BLE001  (tfds without that dataset's checksums: no second opinion)
                continue
            if info.checksum == got:
                return other, path
    return None


def _check_names(names: Sequence[Any], taken: Sequence[Any] = (), program: str | None = None) -> None:
    """UsageError if a run name repeats, within ``names`` or with an earlier run's (``taken``):
    two runs of one name would overwrite each other in results.json, the report and --resume."""
    seen = set(taken)
    where = f" (program {program!r})" if program else ""
    for name in names:
        if name in seen:
            raise UsageError(f"two runs would both be named {name!r}{where}",
                             "give each swept setting distinct values (values that differ as the report prints them)")
        seen.add(name)


def _earlier(name: str, out: Path, config: config_lib.StudyConfig) -> dict[str, Any] | None:
    """Under --resume, ``<out>/results.json`` of an earlier run (None without --resume or
    without a file). Read before anything is created; another study's file is refused."""
    path = out / "results.json"
    if not config.resume or not path.exists():
        return None
    earlier = read_results(path)
    if earlier.get("study") != name:
        raise UsageError(f"--resume: {path} is from study {earlier.get('study')!r}, not {name!r}",
                         f"give --out the folder of a {name} run, or a new folder")
    return earlier


def _previous(study: Study, earlier: dict[str, Any] | None) -> dict[str, Any] | None:
    """The earlier results whose runs --resume may reuse: made with this config (hash), and only
    their runs that follow the schema; else None, said in one line."""
    if earlier is None:
        return None
    path = study.out / "results.json"
    if earlier.get("config_hash") == study.config_hash:
        runs = [r for r in earlier.get("runs", []) if not run_problems(r)]
        return {**earlier, "runs": runs}
    changed = config_lib.differences(config_lib.recorded_science(earlier),
                                     {**config_lib.science(study.config), "data": study.data})
    study.log(f"--resume: {path} was made with other settings ({'; '.join(changed) or 'an older format'}); "
              "retraining every run")
    return None


INCOMPLETE = ("> **Incomplete run.** `results.json` says `complete: false`: the run stopped before it finished, "
              "so this report shows only the {n} run(s) it had saved. Rerun the study with `--resume` to finish it.")


def write_report(results: Mapping[str, Any], out: Path, report_fn: Callable[[dict, Path], Report]) -> Path:
    """Builds the report from ``results`` alone, adds the "How this was run" footer, writes it.
    Results whose ``complete`` is not true get a line at the top saying the run is incomplete."""
    report = report_fn(dict(results), out)
    if results.get("complete") is not True:
        report.parts.insert(0, INCOMPLETE.format(n=len(results.get("runs") or [])))
    env = results.get("environment") or {}
    report.heading("How this was run").text(
        f"`{results.get('command')}` on {env.get('date')}: jax {env.get('jax')} on {env.get('device')}, "
        f"{format_seconds(results.get('seconds'))} wall clock; config hash `{results.get('config_hash')}`. "
        "Every number is in [`results.json`](results.json); the settings are its `config`, and "
        f"`python -m experiments.{results.get('study')} --report-only --out DIR` rebuilds this report from it.")
    return report.write(out)


CHECKPOINTS_PER_RUN = 20  # checkpoints=True: a kill loses at most a twentieth of a program (or its one epoch)


def _report_only(name: str, cls: type, out: Path, report_fn: Callable) -> dict[str, Any]:
    """--report-only: the report rebuilt from ``<out>/results.json``, once that file is
    checked (this study's, and following the schema) — nothing is written before."""
    path = out / "results.json"
    results = read_results(out)
    if results.get("study") != name:
        raise UsageError(f"{path} is from study {results.get('study')!r}, not {name!r}",
                         f"give --out the folder of a {name} run")
    problems = results_problems(results, cls)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{path} does not follow the results schema: {problems[0]}{more}",
                         "it was edited or damaged: restore it, or run the study again without --report-only")
    check_writable(out)
    import matplotlib

    matplotlib.use("Agg")
    before = failing.files(out)
    try:
        with OutputLock(out):
            from experiments.lib import logs

            logs.write_metrics_csv(out, results)
            report = write_report(results, out, report_fn)
    except BaseException as error:
        removed = failing.remove_partial(out, before, report_stage=True)
        replacement = failing.failure(error, out, stage="report", removed=removed, gone=False)
        if replacement is None:
            raise
        raise replacement from error
    print(f"[{name}] rebuilt {report} from {path}", flush=True)
    return results


def _run(name: str, cls: type, run_fn: Callable, report_fn: Callable, argv: list[str],
         description: str | None, datasets: Any, run_names: Callable | None,
         preflight: Callable | None) -> dict[str, Any]:
    prog = f"python -m experiments.{name}"
    config = config_lib.parse(cls, argv, prog=prog, description=description)
    config_lib.check_data_paths(config)
    out = output_folder(config, name)
    if config.report_only:
        return _report_only(name, cls, out, report_fn)
    check_writable(out)
    if run_names is not None:
        _check_names(list(run_names(config)))
    earlier = _earlier(name, out, config)
    from experiments.lib import compile_cache

    compile_cache.enable()
    study = Study(name, config, out, argv, {})
    for dataset in (datasets(config) if callable(datasets) else datasets):  # missing or damaged data fails here,
        # before anything is created
        study.load(dataset)
    if preflight is not None:  # the study's own checks against the data (a subset that does not fit, …)
        preflight(config, study)
    _ = study.config_hash  # the data as it is now, before anything runs
    import matplotlib

    matplotlib.use("Agg")
    from experiments.lib import progress

    top = failing.first_missing(out)
    before: dict[Path, tuple[int, int]] = {}
    start: dict[Path, tuple[int, int]] = {}
    stage = "run"
    try:
        out.mkdir(parents=True, exist_ok=True)
        before = start = failing.files(out)
        with OutputLock(out), progress.closing():
            study.environment = environment()
            study.previous = _previous(study, earlier)
            study.log(f"writing to {out} on {study.environment['device']} × {study.environment['device_count']} "
                      f"(config hash {study.config_hash})")
            results = to_jsonable(study.results(run_fn(config, study)))
            problems = results_problems(results, cls)
            if problems:
                write_results(out, {**results, "complete": False})
                raise RunError(f"the results of this run break the schema ({'; '.join(problems[:3])}); its runs are "
                               f"kept in {out / 'results.json'} (complete: false)",
                               "this is a bug in the study: rerun with --debug and report it")
            write_results(out, results)
            stage = "report"
            before = failing.files(out)
            from experiments.lib import logs

            logs.write_metrics_csv(out, results)
            if config.tensorboard:
                logs.write_tensorboard(out / "tb", results)
            path = write_report(results, out, report_fn)
            study.log(f"wrote {path} and results.json in {format_seconds(study.seconds())}")
    except BaseException as error:
        failing.settle_checkpoints()
        failing.remove_unfinished_checkpoints(out)
        removed = failing.remove_partial(out, before, report_stage=stage == "report")
        gone = top is not None and failing.remove_if_empty(top, out)
        replacement = failing.failure(error, out, stage=stage, removed=removed, gone=gone, start=start)
        if replacement is None:
            raise
        raise replacement from error
    return results


def main(name: str, cls: type, run: Callable, report: Callable, argv: Sequence[str] | None = None, *,
         description: str | None = None,
         datasets: Sequence[str] | Callable[[Any], Sequence[str]] = ("mnist",),
         run_names: Callable[[Any], Sequence[str]] | None = None,
         preflight: Callable[[Any, Study], Any] | None = None) -> dict[str, Any]:
    """The command line of study ``name``: parse → check → run → results.json → report.

    Args:
      cls: the study's :class:`~experiments.lib.config.StudyConfig` subclass.
      run: ``run(config, study) -> {"runs": [...], "headline": (label, value), **extra}``.
      report: ``report(results, out) -> Report`` (from results.json alone; figures into ``out``).
      datasets: what the study loads (or ``config → names``), checked before anything is created.
      run_names: ``config → the names of every run`` where the study can tell them before
        training: a name that repeats is then refused before anything is created (else
        :meth:`Study.train` refuses it before the program trains).
      preflight: ``(config, study) → None``, run after the data is read and before anything is
        created or printed: the study's checks that need the data (``study.load`` gives the
        dataset, read once), raising :class:`UsageError` for a setting that does not fit it.
    Returns:
      The results as written. Errors end in one line on stderr and ``SystemExit`` (2: usage,
      1: run time, 130: Ctrl-C, 143: SIGTERM).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _run(name, cls, run, report, argv, description, datasets, run_names, preflight), argv)
