"""Runs every study and writes an index page linking each report.

    python -m experiments.all [--quick] [--out runs] [--only a,b] [--seed S] [--resume] [data options]

Each study runs as ``experiments.<name>.main(["--out", "<out>/<name>", ...])`` with the
common options forwarded. A study that fails is reported and marked failed in the index;
the others still run. A study whose module does not exist yet is skipped. Writes
``<out>/index.md``, ``<out>/index.html`` and ``<out>/index.json``; exits 1 if any study failed.
"""
from __future__ import annotations

import argparse
import html
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from experiments import STUDIES, available, module_name
from experiments.common import add_data_options, add_run_options, fmt, format_seconds, write_json

StudyMain = Callable[[list[str]], Any]


def parser(prog: str = "python -m experiments.all") -> argparse.ArgumentParser:
    """--out (the parent folder), --only, and the options forwarded to every study."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs"), help="parent output folder (default: %(default)s)")
    p.add_argument("--only", type=lambda s: [n for n in s.split(",") if n], default=None,
                   help="comma-separated studies to run (default: all registered)")
    return add_data_options(add_run_options(p))


def forwarded(args: argparse.Namespace, name: str) -> list[str]:
    """The argv given to study ``name``."""
    argv = ["--out", str(Path(args.out) / name), "--seed", str(args.seed)]
    argv += [flag for flag, on in (("--quick", args.quick), ("--resume", args.resume), ("--quiet", args.quiet)) if on]
    for flag, value in (("--manual-dir", args.manual_dir), ("--data-dir", args.data_dir), ("--gurmukhi", args.gurmukhi)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _module_main(name: str) -> StudyMain:
    def run(argv: list[str]) -> Any:
        return importlib.import_module(module_name(name)).main(argv)
    return run


def registered() -> dict[str, StudyMain | None]:
    """Every registered study: its ``main``, or None where the module does not exist yet."""
    return {name: _module_main(name) if available(name) else None for name in STUDIES}


def run_one(name: str, study_main: StudyMain | None, argv: list[str], out: Path) -> dict[str, Any]:
    """Runs one study, catching any failure; returns its index entry."""
    entry = {"name": name, "description": STUDIES.get(name, ""), "status": "skipped", "error": None,
             "headline": None, "seconds": None, "report": None, "argv": argv}
    if study_main is None:
        entry["error"] = f"not yet available (no experiments/{name}.py)"
        print(f"== {name}: {entry['error']}; skipped", flush=True)
        return entry
    print(f"== {name}: python -m {module_name(name)} {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    try:
        results = study_main(argv)
        missing = [f for f in ("results.json", "report.md") if not (out / name / f).exists()]
        if missing:
            raise RuntimeError(f"study finished but wrote no {' or '.join(missing)} in {out / name}")
        entry.update(status="ok", report=f"{name}/report.md",
                     headline=(results or {}).get("headline") if isinstance(results, Mapping) else None)
    except (Exception, SystemExit) as error:  # SystemExit: a study's argparse rejecting its argv
        traceback.print_exc()
        entry.update(status="failed", error=f"{type(error).__name__}: {error}")
        print(f"== {name}: FAILED ({entry['error']})", flush=True)
        if (out / name / "report.md").exists():
            entry["report"] = f"{name}/report.md"
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    entry["seconds"] = time.perf_counter() - started
    if entry["status"] == "ok":
        print(f"== {name}: ok in {format_seconds(entry['seconds'])}", flush=True)
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


def run_all(args: argparse.Namespace, *, studies: Mapping[str, StudyMain | None] | None = None,
            command: str = "python -m experiments.all") -> list[dict[str, Any]]:
    """Runs ``studies`` (default: :func:`registered`), restricted to ``args.only``, and writes the index.

    Args:
      studies: name → ``main(argv)``, or None for a study not written yet (the hook tests use).
    Returns:
      One index entry per study: name, status ("ok" / "failed" / "skipped"), error, headline, seconds, report.
    """
    studies = dict(registered() if studies is None else studies)
    if args.only is not None:
        unknown = [n for n in args.only if n not in studies]
        if unknown:
            raise SystemExit(f"unknown studies {unknown}; choose from {list(studies)}")
        studies = {n: studies[n] for n in args.only}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = [run_one(name, study_main, forwarded(args, name), out) for name, study_main in studies.items()]
    (out / "index.md").write_text(index_markdown(entries, command))
    (out / "index.html").write_text(index_html(entries, command))
    write_json(out / "index.json", {"command": command, "studies": entries})
    print(f"\nindex: {out / 'index.md'}")
    for e in entries:
        print(f"  {e['name']:<20} {e['status']:<8} {out / e['report'] if e.get('report') else '-'}")
    return entries


def main(argv: list[str] | None = None, *, studies: Mapping[str, StudyMain | None] | None = None) -> int:
    """Command-line entry; 1 if any study failed, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    entries = run_all(parser().parse_args(argv), studies=studies,
                      command=" ".join(["python -m experiments.all", *argv]))
    return int(any(e["status"] == "failed" for e in entries))


if __name__ == "__main__":
    sys.exit(main())
