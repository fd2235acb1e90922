"""The main job (``make run``): run the headline studies and say where their reports are.

    python -m experiments.main [--all] [--quick] [--out runs] [common options]

By default runs ``overfitting`` and ``regularization``; ``--all`` runs every study
(as ``python -m experiments.all``). A study not written yet is skipped with a message.
"""
from __future__ import annotations

import sys

from experiments import all as all_studies

HEADLINE = ("overfitting", "regularization")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; 1 if a study failed, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = all_studies.parser(prog="python -m experiments.main")
    p.description = __doc__
    p.add_argument("--all", action="store_true", help="run every registered study")
    args = p.parse_args(argv)
    if not args.all and args.only is None:
        args.only = list(HEADLINE)
    entries = all_studies.run_all(args, command=" ".join(["python -m experiments.main", *argv]))
    reports = [e for e in entries if e.get("report")]
    if reports:
        print("\nreports:\n" + "\n".join(f"  {args.out / e['report']}" for e in reports))
    else:
        print("\nno study has been written yet; `python -m experiments` lists them.")
    return int(any(e["status"] == "failed" for e in entries))


if __name__ == "__main__":
    sys.exit(main())
