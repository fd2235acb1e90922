"""``python -m experiments``: list the studies and how to run them."""
from __future__ import annotations

import sys

from experiments import STUDIES, available

USAGE = """\
Run one:    python -m experiments.<name> [--quick] [--out DIR] [--epochs N] [--seed S] [--resume]
            (default out dir runs/<name>/; `--help` lists a study's own options)
Run all:    python -m experiments.all [--quick] [--out runs] [--only a,b]   (writes runs/index.md)
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
