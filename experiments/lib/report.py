"""``report.md``: the Report builder (numbers are written by :mod:`experiments.lib.numbers`)."""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from experiments.lib import html
from experiments.lib.claims import sentence
from experiments.lib.numbers import fmt
from experiments.lib.results import write_text_atomic


def _number(x: Any) -> float | None:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        return None
    return float(x)


def _signed(x: Any) -> bool:
    return isinstance(x, str) and x[:1] in "+-" and x[1:].replace(".", "", 1).isdigit()


def _cell(x: Any, digits: int) -> str:
    return fmt(x, digits).replace("|", "\\|").replace("\n", " ")


PER_CLASS_METRICS = (("one_vs_rest_accuracy", "One-vs-rest accuracy (TP + TN) / N"), ("recall", "Recall TP / Nₖ"))


@dataclasses.dataclass
class Report:
    """``report.md`` built up in order; every method returns the report, so calls chain."""

    title: str
    quick: bool = False
    parts: list[Any] = dataclasses.field(default_factory=list)  # markdown strings or (path, caption)

    def heading(self, text: str, level: int = 2) -> Report:
        self.parts.append("#" * level + " " + text)
        return self

    def text(self, text: str) -> Report:
        """A free paragraph of markdown."""
        self.parts.append(text.strip())
        return self

    def claims(self, claims: Iterable[Any], heading: str | None = "What the numbers say") -> Report:
        """The study's outcome claims (:class:`experiments.lib.claims.Claim`), each rendered by
        the one template, as a bulleted list under ``heading``."""
        lines = [f"- {sentence(claim)}" for claim in claims]
        if lines:
            if heading:
                self.heading(heading)
            self.parts.append("\n".join(lines))
        return self

    def what_was_run(self, text: str) -> Report:
        """The "What was run" section: data, model, optimiser, epochs, what was varied."""
        return self.heading("What was run").text(text)

    def figure(self, path: str | Path, caption: str) -> Report:
        """A numbered figure; its link is made relative to the folder the report is written to."""
        self.parts.append((Path(path), caption))
        return self

    def per_class_tables(self, class_names: Sequence[str], columns: dict[str, dict[str, Sequence[float]]],
                         *, leading: dict[str, Sequence[Any]] | None = None) -> Report:
        """The two per-class tables, one-vs-rest accuracy (TP + TN)/N and recall TP/Nₖ, named
        apart: a row per class, a column per entry of ``columns`` (title → a run's ``per_class``
        dict), after the plain columns in ``leading`` (title → one value per class)."""
        leading = leading or {}
        for key, label in PER_CLASS_METRICS:
            self.text(f"**{label}**")
            self.table(["Class", *leading, *columns],
                       [[c, *(values[i] for values in leading.values()), *(pc[key][i] for pc in columns.values())]
                        for i, c in enumerate(class_names)])
        return self

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, digits: int = 3) -> Report:
        """A markdown table; numbers via :func:`fmt`, numeric columns right-aligned."""
        rows = [list(row) for row in rows]
        if any(len(row) != len(headers) for row in rows):
            raise ValueError(f"every row needs {len(headers)} cells ({list(headers)})")
        numeric = [bool(rows) and all(_number(r[i]) is not None or r[i] is None or _signed(r[i]) for r in rows)
                   for i in range(len(headers))]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
        lines += ["| " + " | ".join(_cell(x, digits) for x in row) + " |" for row in rows]
        self.parts.append("\n".join(lines))
        return self

    def reported_vs_reproduced(self, rows: Iterable[Sequence[Any]], *, tolerance: float = 0.01,
                               source: str | None = None, digits: int = 3) -> Report:
        """The "Reported vs reproduced" table from rows ``(quantity, reported, reproduced, note)``.

        A note is required where both are numbers differing by more than ``tolerance``, or the
        reproduction is missing or non-finite; ValueError otherwise. Under --quick a missing
        note reads "quick run", since a smoke test is not a reproduction.
        """
        table = []
        for row in rows:
            quantity, reported, reproduced, note = (list(row) + [None])[:4]
            a, b = _number(reported), _number(reproduced)
            diff = b - a if a is not None and b is not None else None
            big = a is not None and (diff is None or not math.isfinite(diff) or abs(diff) > tolerance + 1e-9)  # 1e-9: 0.70 − 0.69 is 0.01000…01
            if big and not (note and str(note).strip()):
                if not self.quick:
                    raise ValueError(
                        f"reported vs reproduced: {quantity!r} differs (reported {fmt(reported, digits)}, "
                        f"reproduced {fmt(reproduced, digits)}) by more than {tolerance} but has no note; "
                        "add a sentence explaining the difference")
                note = "quick run: less data and fewer epochs, not comparable."
            signed = None if diff is None else (f"{diff:+.{digits}f}" if math.isfinite(diff) else fmt(diff))
            table.append([quantity, reported, reproduced, signed, note or ""])
        self.heading("Reported vs reproduced")
        if self.quick:
            self.text("This was a `--quick` run (less data, fewer epochs): a smoke test of the code, "
                      "not a reproduction of the numbers.")
        if source:
            self.text(f"Reported numbers: {source}.")
        return self.table(["Quantity", "Reported", "Reproduced", "Difference", "Note"], table, digits=digits)

    def markdown(self, out: str | Path | None = None) -> str:
        """The report as markdown, figure links relative to ``out`` (the current folder if None)."""
        blocks, figures = [f"# {self.title}"], 0
        for part in self.parts:
            if isinstance(part, tuple):
                figures += 1
                path, caption = part
                link = Path(os.path.relpath(path.resolve(), Path(out or ".").resolve())).as_posix()
                part = f"![{caption}]({link})\n\n*Figure {figures}: {caption}*"
            blocks.append(part)
        return "\n\n".join(blocks) + "\n"

    def write(self, out: str | Path) -> Path:
        """Writes ``<out>/report.md`` and the same page as ``report.html`` (figures inline);
        returns the Markdown file's path."""
        path = Path(out) / "report.md"
        text = self.markdown(out)
        write_text_atomic(path, text)
        html.write(text, self.title, path.with_suffix(".html"))
        return path
