"""Runs every study and writes an index page linking each report.

    python -m experiments.all [--quick] [--out runs] [--only a b] [--seed S] [--resume] [data options]

Each study runs as ``experiments.<name>.main(["--out", "<out>/<name>", ...])`` with the
common options forwarded. A study that fails is reported and marked failed in the index;
the others still run. Writes ``<out>/index.md``, ``index.html`` and ``index.json``; with
``--only`` the earlier entries of the other studies are kept. Exits 1 if any study failed.
"""
from __future__ import annotations

import dataclasses
import html
import importlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from experiments import STUDIES, available, module_name
from experiments.lib import config as config_lib
from experiments.lib.errors import UsageError, guarded
from experiments.lib.report import fmt, format_seconds
from experiments.lib.results import read_results, write_json
from experiments.lib.study import check_writable

StudyMain = Callable[[list[str]], Any]


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
    """The same index as a minimal HTML page."""
    rows = []
    for e in entries:
        name = html.escape(e["name"])
        link = f'<a href="{html.escape(e["report"])}">{name}</a>' if e.get("report") else name
        cells = [link] + [html.escape(s) for s in (e["description"], _status(e), _headline(e), format_seconds(e["seconds"]))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Study", "What it shows", "Status", "Headline", "Wall clock"))
    return ("<!doctype html>\n<meta charset=\"utf-8\">\n<title>jaxnet experiments</title>\n"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd;"
            "text-align:left}</style>\n<h1>jaxnet experiments</h1>\n"
            f"<p><code>{html.escape(command)}</code></p>\n<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>\n")


def _read_index(out: Path) -> dict[str, dict[str, Any]]:
    import json

    path = out / "index.json"
    try:
        studies = json.loads(path.read_text()).get("studies", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {e["name"]: e for e in studies if isinstance(e, dict) and "name" in e}


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
    entries = []
    with progress.study_bar(list(studies), estimates=estimates, config=config) as bar:
        for name, study_main in studies.items():
            bar.start(name)
            entries.append(run_one(name, study_main, forwarded(config, name), out, say=bar.write))
            bar.done(name)
    merged = {**earlier, **{e["name"]: e for e in entries}}
    order = list(STUDIES) + [n for n in merged if n not in STUDIES]
    index = [merged[n] for n in order if n in merged]
    (out / "index.md").write_text(index_markdown(index, command))
    (out / "index.html").write_text(index_html(index, command))
    write_json(out / "index.json", {"command": command, "studies": index})
    print(f"\nindex: {out / 'index.md'}")
    for e in entries:
        print(f"  {e['name']:<20} {e['status']:<8} {out / e['report'] if e.get('report') else '-'}")
    return entries


def parse(argv: Sequence[str], prog: str = "python -m experiments.all") -> AllConfig:
    return config_lib.parse(AllConfig, argv, prog=prog, description=__doc__)


def main(argv: list[str] | None = None, *, studies: Mapping[str, StudyMain | None] | None = None) -> int:
    """Command-line entry; 1 if any study failed, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)

    def go() -> int:
        import shlex

        entries = run_all(parse(argv), studies=studies,
                          command=" ".join(["python -m experiments.all", shlex.join(argv)]).strip())
        return int(any(e["status"] == "failed" for e in entries))

    return guarded(go, argv)


if __name__ == "__main__":
    sys.exit(main())
