"""The backtest per segment, its Benjamini-Hochberg adjustment and its bound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.validation import SegmentAccumulator, backtest, backtest_segments

from .conftest import GRADES, Portfolio


def _segment(size: int) -> np.ndarray:
    values = np.array(["RENT", "OWN", "MORTGAGE", None], dtype=object)
    return values[np.arange(size) % 4]


def test_each_segment_is_the_backtest_of_its_loans(loans: Portfolio) -> None:
    segment = _segment(loans.pd.size)
    found = backtest_segments(
        loans.pd, loans.defaulted, loans.grade, GRADES, segment, attribute="home_ownership"
    )
    assert found.attribute == "home_ownership"
    assert found.adjustment == "benjamini-hochberg"
    assert [s.value for s in found.segments] == ["RENT", "OWN", "MORTGAGE", "(missing)"]
    own = segment == "OWN"
    alone = backtest(loans.pd[own], loans.defaulted[own], loans.grade[own], GRADES)
    assert found.segments[1].backtest == alone


def test_adjusted_p_values_are_scipys_benjamini_hochberg(loans: Portfolio) -> None:
    found = backtest_segments(
        loans.pd, loans.defaulted, loans.grade, GRADES, _segment(loans.pd.size), attribute="x"
    )
    raw = [s.backtest.portfolio.jeffreys_p for s in found.segments]
    expected = stats.false_discovery_control(raw, method="bh")
    assert [s.jeffreys_p_adjusted for s in found.segments] == pytest.approx(
        list(expected), abs=1e-12
    )
    cells = [g.jeffreys_p for s in found.segments for g in s.backtest.grades]
    adjusted = [p for s in found.segments for p in s.grades_jeffreys_p_adjusted]
    assert adjusted == pytest.approx(
        list(stats.false_discovery_control(cells, method="bh")), abs=1e-12
    )
    assert all(a >= r for a, r in zip(adjusted, cells, strict=True))  # type: ignore[operator]


def test_segments_stream_and_are_bounded(loans: Portfolio) -> None:
    accumulator = SegmentAccumulator(GRADES, attribute="x", max_segments=3)
    accumulator.add(loans.pd[:10], loans.defaulted[:10], loans.grade[:10], np.array(["a"] * 10))
    accumulator.add(loans.pd[:10], loans.defaulted[:10], loans.grade[:10], np.array(["b"] * 10))
    with pytest.raises(TooLarge):
        accumulator.add(
            loans.pd[:20], loans.defaulted[:20], loans.grade[:20], np.array(["c", "d"] * 10)
        )
    found = accumulator.result()
    assert [s.backtest.rows for s in found.segments] == [10, 10]


def test_a_segment_value_per_loan_and_a_name_are_needed(loans: Portfolio) -> None:
    with pytest.raises(InvalidInput) as error:
        backtest_segments(
            loans.pd, loans.defaulted, loans.grade, GRADES, np.array(["a"]), attribute="x"
        )
    assert error.value.details["field"] == "segment"
    with pytest.raises(InvalidInput):
        SegmentAccumulator(GRADES, attribute="")
