"""The backtest per segment: one :class:`~loanrisk.validation.backtest.Backtest` for each value
of a categorical or ordinal attribute, with the Jeffreys p-values adjusted for testing many
segments at once (Benjamini and Hochberg 1995, "Controlling the false discovery rate", JRSS B
57) and the lights re-drawn from the adjusted p-values.

Two families are adjusted, each on its own: the portfolio p-values of the segments, and the
grade p-values of every (segment, grade) with loans. The unadjusted figures stay in each
segment's backtest. Bounded: at most ``max_segments`` values, each an O(grades) accumulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas
from pydantic import BaseModel, ConfigDict

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.validation import _stats
from loanrisk.validation._stats import Light
from loanrisk.validation.backtest import Backtest, BacktestAccumulator

#: The value a missing attribute is reported under.
MISSING = "(missing)"
#: Segments one report holds by default.
MAX_SEGMENTS = 50


class Segment(BaseModel):
    """One value of the attribute: its backtest, and its Jeffreys p-values and lights after the
    Benjamini-Hochberg adjustment (portfolio, then per grade in the backtest's order)."""

    model_config = ConfigDict(frozen=True)

    value: str
    backtest: Backtest
    jeffreys_p_adjusted: float | None
    light_adjusted: Light | None
    grades_jeffreys_p_adjusted: list[float | None]
    grades_light_adjusted: list[Light | None]


class Segments(BaseModel):
    """The backtest per value of ``attribute``, values in order of first appearance
    (``adjustment`` names the multiple-testing adjustment of the ``*_adjusted`` fields)."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    adjustment: Literal["benjamini-hochberg"] = "benjamini-hochberg"
    segments: list[Segment]


class SegmentAccumulator:
    """One :class:`BacktestAccumulator` per attribute value, fed in chunks."""

    def __init__(
        self, grade_names: Sequence[str], *, attribute: str, max_segments: int = MAX_SEGMENTS
    ) -> None:
        if not attribute:
            raise InvalidInput("name the segment attribute", details={"field": "attribute"})
        self.grade_names = list(grade_names)
        self.attribute = attribute
        self.max_segments = max_segments
        self.parts: dict[str, BacktestAccumulator] = {}

    def add(
        self,
        pd: np.ndarray,
        defaulted: np.ndarray,
        grade: np.ndarray,
        segment: np.ndarray,
        *,
        amount: np.ndarray | None = None,
    ) -> None:
        """Count a chunk; ``segment`` holds each loan's attribute value (None/NaN = missing).
        Raises :class:`TooLarge` past ``max_segments`` values."""
        values = np.asarray(segment, dtype=object)
        if values.ndim != 1 or values.size != np.asarray(pd).size:
            raise InvalidInput("one segment value per loan", details={"field": "segment"})
        codes, uniques = pandas.factorize(values, use_na_sentinel=True)
        labels = [str(value) for value in uniques]
        if (codes < 0).any():
            codes = np.where(codes < 0, len(labels), codes)
            labels.append(MISSING)
        fresh = [label for label in labels if label not in self.parts]
        if len(self.parts) + len(fresh) > self.max_segments:
            raise TooLarge(
                f"{self.attribute} has more than {self.max_segments} values",
                details={"field": "segment"},
            )
        for code, label in enumerate(labels):
            chosen = codes == code
            part = self.parts.get(label) or BacktestAccumulator(self.grade_names)
            part.add(
                np.asarray(pd)[chosen],
                np.asarray(defaulted)[chosen],
                np.asarray(grade)[chosen],
                amount=None if amount is None else np.asarray(amount)[chosen],
            )
            self.parts[label] = part

    def result(
        self,
        *,
        rho: float | None = None,
        development_auc: float | None = None,
        development_grade_shares: Sequence[float] | None = None,
    ) -> Segments:
        """The segments' backtests (options as for :meth:`BacktestAccumulator.result`)."""
        backtests = {
            label: part.result(
                rho=rho,
                development_auc=development_auc,
                development_grade_shares=development_grade_shares,
            )
            for label, part in self.parts.items()
        }
        portfolio = _adjust([b.portfolio.jeffreys_p for b in backtests.values()])
        cells = _adjust([g.jeffreys_p for b in backtests.values() for g in b.grades])
        size = len(self.grade_names)
        return Segments(
            attribute=self.attribute,
            segments=[
                Segment(
                    value=label,
                    backtest=found,
                    jeffreys_p_adjusted=portfolio[index],
                    light_adjusted=_stats.light(portfolio[index]),
                    grades_jeffreys_p_adjusted=cells[index * size : (index + 1) * size],
                    grades_light_adjusted=[
                        _stats.light(p) for p in cells[index * size : (index + 1) * size]
                    ],
                )
                for index, (label, found) in enumerate(backtests.items())
            ],
        )


def _adjust(p_values: list[float | None]) -> list[float | None]:
    """BH over the p-values present; None stays None."""
    present = [p for p in p_values if p is not None]
    adjusted = iter(_stats.benjamini_hochberg(present))
    return [None if p is None else next(adjusted) for p in p_values]


def backtest_segments(
    pd: np.ndarray,
    defaulted: np.ndarray,
    grade: np.ndarray,
    grade_names: Sequence[str],
    segment: np.ndarray,
    *,
    attribute: str,
    max_segments: int = MAX_SEGMENTS,
    rho: float | None = None,
    development_auc: float | None = None,
    development_grade_shares: Sequence[float] | None = None,
    amount: np.ndarray | None = None,
) -> Segments:
    """The backtest of each value of ``segment`` (one value per loan, named ``attribute``),
    the other arguments as for :func:`loanrisk.validation.backtest.backtest`; the development
    AUC and shares are the whole model's, compared with each segment's."""
    accumulator = SegmentAccumulator(grade_names, attribute=attribute, max_segments=max_segments)
    accumulator.add(pd, defaulted, grade, segment, amount=amount)
    return accumulator.result(
        rho=rho,
        development_auc=development_auc,
        development_grade_shares=development_grade_shares,
    )
