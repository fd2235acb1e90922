"""``python -m experiments``: list the studies and how to run them."""
from __future__ import annotations

import sys

from experiments import STUDIES, available

USAGE = """\
Run one:    python -m experiments.<name> [--quick] [--out DIR] [--<setting> VALUE ...] [--resume]
            (every setting of a study is a flag: `--help` lists them with their defaults;
            --config FILE.toml loads a saved setup; --report-only rebuilds the report)
Your own:   python -m experiments.train --dataset mnist --hidden 128 64 --lambdas 0 0.001 0.01
Run all:    python -m experiments.all [--quick] [--out runs] [--only a b]   (writes runs/index.md)
Check:      python -m experiments.check runs   (a full run against experiments/reference.json)
Main job:   python -m experiments.main [--all]   (the headline studies; `make run`)
Data:       --manual-dir (MNIST .gz files), --data-dir, --gurmukhi; or JAXNET_MANUAL_DIR,
            JAXNET_DATA_DIR, JAXNET_GURMUKHI."""


def listing() -> str:
    """The registry as text: one line per study, marking those not written yet."""
    width = max(map(len, STUDIES))
    lines = ["jaxnet studies (each writes results.json, PNG figures and report.md):", ""]
    for name, description in STUDIES.items():
        note = "" if available(name) else "  [not yet available]"
        lines.append(f"  {name:<{width}}  {description}{note}")
    return "\n".join(lines + ["", USAGE])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    print(listing())
    if argv and argv[0] not in ("-h", "--help"):
        print(f"\n(python -m experiments takes no arguments; got {argv})")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
