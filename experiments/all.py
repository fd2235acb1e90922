"""Runs every study and writes an index page linking each report (``jaxnet run all``).

    python -m experiments.all [--quick] [--out runs] [--only a b] [--seed S] [--resume] [data options]

:func:`main` is also the main job, ``python -m experiments.main`` (``make run``, ``jaxnet run
main``): the same run restricted to the :data:`HEADLINE` studies unless ``--all`` or ``--only``.

Each study runs as ``experiments.<name>.main(["--out", "<out>/<name>", ...])`` with the
common options forwarded. A study that fails is reported and marked failed in the index;
the others still run. Writes ``<out>/index.md``, ``index.html`` and ``index.json``; with
``--only`` the earlier entries of the other studies are kept. Exits 1 if any study failed.
Ctrl-C or SIGTERM stops the whole run (not only the study in flight): the index is written
for the studies that finished, the stopped one marked "interrupted", and the exit status is
the study's (130 / 143).
"""
from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from experiments import STUDIES, available, module_name
from experiments.lib import config as config_lib
from experiments.lib.errors import UsageError, guarded
from experiments.lib.numbers import fmt, format_seconds
from experiments.lib.results import write_json
from experiments.lib.study import check_writable

StudyMain = Callable[[list[str]], Any]
STOPPED = (130, 143)  # a study's exit status after Ctrl-C / SIGTERM


class Stopped(Exception):
    """A study was stopped by Ctrl-C or SIGTERM (it printed its one line): the run ends here."""

    def __init__(self, entry: dict[str, Any], status: int):
        super().__init__(f"stopped with exit status {status}")
        self.entry, self.status = entry, status


@dataclasses.dataclass(frozen=True)
class AllConfig(config_lib.StudyConfig):
    """The options of ``experiments.all``: forwarded to every study."""

    out: Path = Path("runs")
    """parent output folder: each study writes to <out>/<study>"""
    only: tuple[str, ...] = ()
    """run only these studies (default: every registered study)"""

    def problems(self) -> list[tuple[str, str, str]]:
        if self.config is not None:
            return [("--config", "is a study's option", "pass it to python -m experiments.<study>")]
        return []


HEADLINE = ("overfitting", "regularization")  # what the main job runs by default


@dataclasses.dataclass(frozen=True)
class MainConfig(AllConfig):
    """The options of ``experiments.main``: those of ``experiments.all``, and ``--all``."""

    all: bool = False
    """run every registered study, not only the headline ones"""


FORWARDED_FLAGS = ("quick", "resume", "report_only", "quiet", "tensorboard", "debug")
FORWARDED_VALUES = ("progress", "manual_dir", "data_dir", "gurmukhi")


def forwarded(config: AllConfig, name: str) -> list[str]:
    """The argv given to study ``name``."""
    argv = ["--out", str(Path(config.out) / name), "--seed", str(config.seed)]
    argv += [config_lib.flag(f) for f in FORWARDED_FLAGS if getattr(config, f)]
    for field in FORWARDED_VALUES:
        value = getattr(config, field)
        if value is not None and value != "auto":
            argv += [config_lib.flag(field), str(value)]
    return argv


def _module_main(name: str) -> StudyMain:
    def run(argv: list[str]) -> Any:
        return importlib.import_module(module_name(name)).main(argv)
    return run


def registered() -> dict[str, StudyMain | None]:
    """Every registered study: its ``main``, or None where the module does not exist yet."""
    return {name: _module_main(name) if available(name) else None for name in STUDIES}


def run_one(name: str, study_main: StudyMain | None, argv: list[str], out: Path,
            say: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs one study, catching any failure; returns its index entry. ``say`` prints a line
    (above the progress bars, when there are any)."""
    entry = {"name": name, "description": STUDIES.get(name, ""), "status": "skipped", "error": None,
             "headline": None, "seconds": None, "report": None, "argv": argv}
    if study_main is None:
        entry["error"] = f"not yet available (no experiments/{name}.py)"
        say(f"== {name}: {entry['error']}; skipped")
        return entry
    say(f"== {name}: python -m {module_name(name)} {' '.join(argv)}")
    started = time.perf_counter()
    try:
        results = study_main(argv)
        missing = [f for f in ("results.json", "report.md") if not (out / name / f).exists()]
        if missing:
            raise RuntimeError(f"study finished but wrote no {' or '.join(missing)} in {out / name}")
        entry.update(status="ok", report=f"{name}/report.md",
                     headline=(results or {}).get("headline") if isinstance(results, Mapping) else None)
    except SystemExit as exit_:  # the study printed its one-line error already
        if exit_.code in STOPPED:  # Ctrl-C or SIGTERM stops every study, not only this one
            entry.update(status="interrupted", error=f"exit status {exit_.code}",
                         seconds=time.perf_counter() - started)
            raise Stopped(entry, exit_.code) from None
        entry.update(status="failed", error=f"exit status {exit_.code}")
    except Exception as error:  # noqa: BLE001  (one study's bug must not stop the others)
        print(f"error: {name}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        entry.update(status="failed", error=f"{type(error).__name__}: {error}")
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    if entry["status"] == "failed":
        say(f"== {name}: FAILED ({entry['error']})")
        if (out / name / "report.md").exists():
            entry["report"] = f"{name}/report.md"
    entry["seconds"] = time.perf_counter() - started
    if entry["status"] == "ok":
        say(f"== {name}: ok in {format_seconds(entry['seconds'])}")
    return entry


def _headline(entry: Mapping[str, Any]) -> str:
    h = entry.get("headline")
    return f"{h.get('label')}: {fmt(h.get('value'))}" if isinstance(h, Mapping) else "—"


def _status(entry: Mapping[str, Any]) -> str:
    return entry["status"] if not entry.get("error") else f"{entry['status']}: {entry['error']}"


def index_markdown(entries: Sequence[Mapping[str, Any]], command: str) -> str:
    """The index page: one row per study with its report link, headline number and wall clock."""
    ok = sum(e["status"] == "ok" for e in entries)
    lines = ["# jaxnet experiments", "", f"`{command}`: {ok} of {len(entries)} studies ran.", "",
             "| Study | What it shows | Status | Headline | Wall clock |", "|---|---|---|---|---:|"]
    for e in entries:
        name = f"[{e['name']}]({e['report']})" if e.get("report") else e["name"]
        status = _status(e).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {e['description']} | {status} | {_headline(e)} | {format_seconds(e['seconds'])} |")
    return "\n".join(lines) + "\n"


def index_html(entries: Sequence[Mapping[str, Any]], command: str) -> str:
    """The same index as an HTML page whose links open each study's ``report.html``."""
    from experiments.lib import html as html_page

    pages = [{**e, "report": e["report"].removesuffix(".md") + ".html"} if e.get("report") else e for e in entries]
    return html_page.page(index_markdown(pages, command), "jaxnet experiments")


def _read_index(out: Path) -> dict[str, dict[str, Any]]:
    import json

    path = out / "index.json"
    try:
        studies = json.loads(path.read_text()).get("studies", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {e["name"]: e for e in studies if isinstance(e, dict) and "name" in e}


def _write_index(out: Path, earlier: Mapping[str, dict[str, Any]], entries: Sequence[dict[str, Any]],
                 command: str) -> None:
    merged = {**earlier, **{e["name"]: e for e in entries}}
    order = list(STUDIES) + [n for n in merged if n not in STUDIES]
    index = [merged[n] for n in order if n in merged]
    from experiments.lib.results import write_text_atomic

    write_text_atomic(out / "index.md", index_markdown(index, command))
    write_text_atomic(out / "index.html", index_html(index, command))
    write_json(out / "index.json", {"command": command, "studies": index})


def run_all(config: AllConfig, *, studies: Mapping[str, StudyMain | None] | None = None,
            command: str = "python -m experiments.all") -> list[dict[str, Any]]:
    """Runs ``studies`` (default: :func:`registered`), restricted to ``config.only``, and writes
    the index, keeping the earlier entries of studies not run this time.

    Args:
      studies: name → ``main(argv)``, or None for a study not written yet (the hook tests use).
    Returns:
      One index entry per study run: name, status ("ok" / "failed" / "skipped"), error, headline, seconds, report.
    """
    from experiments.lib import progress

    studies = dict(registered() if studies is None else studies)
    if config.only:
        unknown = [n for n in config.only if n not in studies]
        if unknown:
            raise UsageError(f"--only: unknown studies {', '.join(unknown)}", f"choose from {', '.join(studies)}")
        studies = {n: studies[n] for n in config.only}
    out = Path(config.out)
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = _read_index(out)
    estimates = {n: e.get("seconds") for n, e in earlier.items() if isinstance(e.get("seconds"), (int, float))}
    entries: list[dict[str, Any]] = []
    try:
        with progress.study_bar(list(studies), estimates=estimates, config=config) as bar:
            for name, study_main in studies.items():
                bar.start(name)
                entries.append(run_one(name, study_main, forwarded(config, name), out, say=bar.write))
                bar.done(name)
    except Stopped as stopped:  # the index of what finished, then the study's exit status
        entries.append(stopped.entry)
        _write_index(out, earlier, entries, command)
        raise SystemExit(stopped.status) from None
    except KeyboardInterrupt:  # between two studies
        _write_index(out, earlier, entries, command)
        raise
    _write_index(out, earlier, entries, command)
    print(f"\nindex: {out / 'index.md'}")
    for e in entries:
        print(f"  {e['name']:<20} {e['status']:<8} {out / e['report'] if e.get('report') else '-'}")
    return entries


def parse(argv: Sequence[str], prog: str = "python -m experiments.all", *, headline: bool = False,
          description: str | None = None) -> AllConfig:
    """The config of ``experiments.all``, or with ``headline`` of the main job (:class:`MainConfig`,
    its ``only`` the :data:`HEADLINE` studies unless ``--all`` or ``--only`` is given)."""
    config = config_lib.parse(MainConfig if headline else AllConfig, argv, prog=prog,
                              description=description or __doc__)
    if headline and not config.all and not config.only:
        config = dataclasses.replace(config, only=HEADLINE)
    return config


def main(argv: list[str] | None = None, *, studies: Mapping[str, StudyMain | None] | None = None,
         headline: bool = False, description: str | None = None) -> int:
    """Command-line entry of ``experiments.all``, and with ``headline`` of ``experiments.main``.

    Args:
      argv: the options (default ``sys.argv[1:]``).
      studies: name → ``main(argv)`` instead of the registered studies (tests).
      headline: the main job: parse ``--all`` too, run only the :data:`HEADLINE` studies unless
        ``--all`` or ``--only`` is given, and end with the paths of the reports.
      description: the ``--help`` text (default this module's).
    Returns:
      1 if any study failed, else 0.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "python -m experiments.main" if headline else "python -m experiments.all"

    def go() -> int:
        import shlex

        config = parse(argv, prog, headline=headline, description=description)
        config_lib.check_data_paths(config)
        entries = run_all(config, studies=studies, command=" ".join([prog, shlex.join(argv)]).strip())
        reports = [e for e in entries if e.get("report")]
        if headline and reports:
            print("\nreports:\n" + "\n".join(f"  {Path(config.out) / e['report']}" for e in reports))
        return int(any(e["status"] == "failed" for e in entries))

    return guarded(go, argv)


if __name__ == "__main__":
    sys.exit(main())
