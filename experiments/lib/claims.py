"""Findings as data: each outcome a study states is a :class:`Claim` — what is compared, the
two measured numbers, and the verdict, which the claim computes from the numbers itself —
rendered by one template (:func:`sentence`). A study's code is then its runs and its claims,
not prose; and one generic test checks every claim of every study: its numbers come from
results.json, and swapping them flips its words."""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable

from experiments.lib.numbers import fmt


@dataclasses.dataclass(frozen=True)
class Claim:
    """"{subject}: {a_label} {a} against {b_label} {b}: **{verdict}**. {why}"

    The verdict is ``more`` when ``a > b`` (by more than ``margin``), else ``less``; a
    non-finite number gives "not measured".
    """

    subject: str  # what is compared, e.g. "the train–validation accuracy gap after the last epoch"
    a_label: str
    a: float
    b_label: str
    b: float
    more: str = "higher"  # the words when a > b
    less: str = "not higher"  # the words otherwise
    margin: float = 0.0
    digits: int = 3
    why: str = ""  # a sentence after the verdict that states no outcome of its own
    reference: bool = False  # b is a fixed reference (a constant such as 0.5), not a measurement

    @property
    def measured(self) -> bool:
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.a, self.b))

    @property
    def holds(self) -> bool:
        """Whether ``a > b + margin``, the outcome named by ``more``."""
        return self.measured and self.a > self.b + self.margin

    @property
    def verdict(self) -> str:
        if not self.measured:
            return "not measured"
        return self.more if self.holds else self.less

    def swapped(self) -> Claim:
        """The same claim with its two numbers exchanged (what the flip test feeds the template)."""
        return dataclasses.replace(self, a=self.b, b=self.a)


def _number(value: float, digits: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if not isinstance(value, float) or not math.isfinite(value) else fmt(value, digits)


def sentence(claim: Claim) -> str:
    """The one template every study's claims are rendered with."""
    text = (f"{claim.subject}: {claim.a_label} {_number(claim.a, claim.digits)} "
            f"against {claim.b_label} {_number(claim.b, claim.digits)}: **{claim.verdict}**.")
    return f"{text} {claim.why}".rstrip()


def section(claims: Iterable[Claim]) -> list[str]:
    """The claims as sentences, in order."""
    return [sentence(claim) for claim in claims]
