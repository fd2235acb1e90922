"""The main job (``make run``): run the headline studies and say where their reports are.

    python -m experiments.main [--all] [--quick] [--out runs] [common options]

By default runs ``overfitting`` and ``regularization``; ``--all`` runs every study
(as ``python -m experiments.all``).
"""
from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

from experiments import all as all_studies
from experiments.lib import config as config_lib
from experiments.lib.errors import guarded

HEADLINE = ("overfitting", "regularization")


@dataclasses.dataclass(frozen=True)
class MainConfig(all_studies.AllConfig):
    all: bool = False
    """run every registered study, not only the headline ones"""


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; 1 if a study failed, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)

    def go() -> int:
        config = config_lib.parse(MainConfig, argv, prog="python -m experiments.main", description=__doc__)
        if not config.all and not config.only:
            config = dataclasses.replace(config, only=HEADLINE)
        command = " ".join(["python -m experiments.main", shlex.join(argv)]).strip()
        entries = all_studies.run_all(config, command=command)
        reports = [e for e in entries if e.get("report")]
        if reports:
            print("\nreports:\n" + "\n".join(f"  {Path(config.out) / e['report']}" for e in reports))
        return int(any(e["status"] == "failed" for e in entries))

    return guarded(go, argv)


if __name__ == "__main__":
    sys.exit(main())
