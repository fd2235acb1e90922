"""The ``jaxnet`` command (installed with the package; also ``python -m experiments``, which
alone lists the studies, and ``python -m experiments.cli``).

    jaxnet list                          # the studies and what each shows
    jaxnet run <study> [options]         # = python -m experiments.<study> [options]
    jaxnet run all [options]             # every study, and runs/index.md (= python -m experiments.all)
    jaxnet run main [options]            # the headline studies (what `make run` runs)
    jaxnet check RUNS [options]          # a full run against the reference (= python -m experiments.check)
    jaxnet bench [options]               # = python -m benchmarks.train_throughput [options]
    jaxnet --version

``jaxnet run <study> --help`` lists a study's options. Errors are one line on stderr,
``error: <what is wrong> — <how to fix it>``, with exit status 2.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Sequence

from experiments import STUDIES, available, module_name
from experiments.lib.errors import UsageError, guarded

COMMANDS = ("list", "run", "check", "bench")
RUNNERS = {"all": "experiments.all", "main": "experiments.main"}

USAGE = """\
usage: jaxnet <command> [options]      (or: python -m experiments <command> [options])

  jaxnet list                     the studies and what each shows
  jaxnet run <study> [options]    run one study (`jaxnet run <study> --help` for its options),
                                  e.g. jaxnet run overfitting --quick --out /tmp/overfitting
  jaxnet run all [options]        every study; writes <out>/index.md (default out: runs)
  jaxnet run main [options]       the headline studies (overfitting, regularization)
  jaxnet check RUNS [options]     compare a full run with experiments/reference.json
  jaxnet bench [options]          the training-throughput benchmark (`jaxnet bench --help`)
  jaxnet --version                the installed jaxnet version"""

HOW_TO_RUN = """\
Run one:    python -m experiments.<name> [--quick] [--out DIR] [--<setting> VALUE ...] [--resume]
            (every setting of a study is a flag: `--help` lists them with their defaults;
            --config FILE.toml loads a saved setup; --report-only rebuilds the report)
Your own:   python -m experiments.train --dataset mnist --hidden 128 64 --lambdas 0 0.001 0.01
Run all:    python -m experiments.all [--quick] [--out runs] [--only a b]   (writes runs/index.md)
Check:      python -m experiments.check runs   (a full run against experiments/reference.json)
Main job:   python -m experiments.main [--all]   (the headline studies; `make run`)
Installed:  jaxnet run <name> | all | main [options], jaxnet check runs   (`jaxnet --help`)
Data:       --manual-dir (MNIST .gz files), --data-dir, --gurmukhi; or JAXNET_MANUAL_DIR,
            JAXNET_DATA_DIR, JAXNET_GURMUKHI."""


def listing() -> str:
    """The registry as text: one line per study, marking those not written yet, and how to run them."""
    width = max(map(len, STUDIES))
    lines = ["jaxnet studies (each writes results.json, PNG figures and report.md):", ""]
    for name, description in STUDIES.items():
        note = "" if available(name) else "  [not yet available]"
        lines.append(f"  {name:<{width}}  {description}{note}")
    return "\n".join(lines + ["", HOW_TO_RUN])


def version() -> str:
    """The installed distribution's version (or "unknown" when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("jaxnet")
    except metadata.PackageNotFoundError:
        return "unknown"


def _exit_status(result: Any) -> int:
    """A study returns its results dict (success), a runner an exit status."""
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _run(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        raise UsageError("jaxnet run needs a study name", f"use one of {', '.join(list(STUDIES) + list(RUNNERS))}")
    name, options = argv[0], argv[1:]
    if name in RUNNERS:
        module = RUNNERS[name]
    elif name in STUDIES and available(name):
        module = module_name(name)
    elif name in STUDIES:
        raise UsageError(f"study {name!r} is not available in this installation", "see `jaxnet list`")
    else:
        raise UsageError(f"unknown study {name!r}", f"use one of {', '.join(list(STUDIES) + list(RUNNERS))}")
    return _exit_status(importlib.import_module(module).main(options))


def _dispatch(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        raise UsageError("no command given", "use jaxnet list, jaxnet run <study>, jaxnet check or jaxnet bench")
    command, rest = argv[0], argv[1:]
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command in ("-V", "--version", "version"):
        print(f"jaxnet {version()}")
        return 0
    if command == "list":
        if rest:
            raise UsageError(f"jaxnet list takes no arguments (got {' '.join(rest)})", "run `jaxnet list`")
        print(listing())
        return 0
    if command == "run":
        return _run(rest)
    if command == "check":
        return _exit_status(importlib.import_module("experiments.check").main(rest))
    if command == "bench":
        return _exit_status(importlib.import_module("benchmarks.train_throughput").main(rest))
    raise UsageError(f"unknown command {command!r}", f"use one of {', '.join(COMMANDS)} (see `jaxnet --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jaxnet`` console command.

    Args:
      argv: the arguments after ``jaxnet`` (default ``sys.argv[1:]``).
    Returns:
      The exit status: 0, or 1 when a study of ``run all`` / ``run main`` failed or ``check``
      found a quantity outside its tolerance. Usage errors print one line on stderr and raise
      ``SystemExit(2)``; a study's own errors exit as the study does (2: usage, 1: run time).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    return guarded(lambda: _dispatch(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
