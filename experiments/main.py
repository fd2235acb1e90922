"""The main job (``make run``, ``jaxnet run main``): run the headline studies and say where
their reports are.

    python -m experiments.main [--all] [--quick] [--out runs] [common options]

By default runs ``overfitting`` and ``regularization``; ``--all`` runs every study
(as ``python -m experiments.all``, whose options it takes).
"""
from __future__ import annotations

import sys

from experiments import all as all_studies

HEADLINE = all_studies.HEADLINE


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; 1 if a study failed, else 0. The code is ``experiments.all``'s."""
    return all_studies.main(argv, headline=True, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
