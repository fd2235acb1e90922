"""``python -m experiments``: the ``jaxnet`` command (:mod:`experiments.cli`) for a checkout
without the package installed; alone, it lists the studies and how to run them (``jaxnet list``).

    python -m experiments                    # = jaxnet list
    python -m experiments run overfitting    # = jaxnet run overfitting = python -m experiments.overfitting
"""
from __future__ import annotations

import sys

from experiments.cli import listing  # noqa: F401  (the listing's old home)


def main(argv: list[str] | None = None) -> int:
    from experiments import cli

    argv = sys.argv[1:] if argv is None else list(argv)
    return cli.main(argv or ["list"])


if __name__ == "__main__":
    sys.exit(main())
