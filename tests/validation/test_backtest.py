"""The backtest's shape, its streaming, its lights and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loanrisk.errors import InvalidInput
from loanrisk.validation import Backtest, BacktestAccumulator, backtest

from .conftest import GRADES, Portfolio


def test_the_json_holds_what_the_issue_lists(loans: Portfolio) -> None:
    found = json.loads(backtest(loans.pd, loans.defaulted, loans.grade, GRADES).model_dump_json())
    per_grade = {"grade", "loans", "defaults", "default_rate", "mean_pd", "jeffreys_p"}
    per_grade |= {"binomial_p", "vasicek_p", "rho", "light"}
    assert [g["grade"] for g in found["grades"]] == GRADES
    assert all(per_grade <= set(g) for g in found["grades"])
    portfolio = found["portfolio"]
    assert (per_grade - {"grade"}) | {"hosmer_lemeshow", "spiegelhalter", "auc"} <= set(portfolio)
    assert {"herfindahl", "psi", "heterogeneity"} <= set(portfolio)
    assert set(portfolio["hosmer_lemeshow"]) == {"statistic", "df", "p"}
    assert {"current", "development", "s", "statistic", "p"} <= set(portfolio["auc"])
    assert found["rows"] == loans.pd.size
    assert found["sampled"] is False
    assert found["light_test"] == "jeffreys"
    assert found["levels"] == {"yellow": 0.05, "red": 0.001}


def test_chunks_give_the_backtest_of_all_the_loans(loans: Portfolio) -> None:
    whole = backtest(loans.pd, loans.defaulted, loans.grade, GRADES, amount=loans.amount)
    accumulator = BacktestAccumulator(GRADES)
    for part in np.array_split(np.arange(loans.pd.size), 7):
        accumulator.add(
            loans.pd[part], loans.defaulted[part], loans.grade[part], amount=loans.amount[part]
        )
    chunked = accumulator.result()
    assert [g.loans for g in chunked.grades] == [g.loans for g in whole.grades]
    assert [g.defaults for g in chunked.grades] == [g.defaults for g in whole.grades]
    for a, b in zip(chunked.grades, whole.grades, strict=True):
        assert a.jeffreys_p == pytest.approx(b.jeffreys_p, rel=1e-12)
        assert a.vasicek_p == pytest.approx(b.vasicek_p, rel=1e-9)
    assert chunked.portfolio.spiegelhalter == pytest.approx(whole.portfolio.spiegelhalter)
    assert chunked.portfolio.auc == whole.portfolio.auc
    assert chunked.portfolio.herfindahl.exposure_index == pytest.approx(
        whole.portfolio.herfindahl.exposure_index, rel=1e-12
    )


def test_an_empty_grade_has_no_rates_and_is_skipped_by_the_grade_tests(loans: Portfolio) -> None:
    keep = loans.grade != 2
    found = backtest(loans.pd[keep], loans.defaulted[keep], loans.grade[keep], GRADES)
    empty = found.grades[2]
    assert (empty.loans, empty.default_rate, empty.jeffreys_p, empty.light) == (0, None, None, None)
    assert found.portfolio.hosmer_lemeshow is not None
    assert found.portfolio.hosmer_lemeshow.df == len(GRADES) - 1
    assert [(h.better, h.worse) for h in found.portfolio.heterogeneity][1] == ("B", "D")


def test_a_configured_rho_is_used_everywhere_and_zero_is_the_plain_binomial(
    loans: Portfolio,
) -> None:
    found = backtest(loans.pd, loans.defaulted, loans.grade, GRADES, rho=0.0)
    assert found.rho == 0.0
    assert all(g.rho == 0.0 and g.vasicek_p == g.binomial_p for g in found.grades)
    basel = backtest(loans.pd, loans.defaulted, loans.grade, GRADES)
    rhos = [g.rho for g in basel.grades]
    assert basel.rho is None and rhos == sorted(rhos, reverse=True)
    # Correlation widens the default distribution: a worse-than-expected grade is less alarming.
    assert all(g.vasicek_p >= g.binomial_p for g in basel.grades if g.binomial_p < 0.5)  # type: ignore[operator]


def test_many_defaults_turn_a_grade_red_and_a_few_more_yellow() -> None:
    pd_ = np.full(3000, 0.02)
    grade = np.repeat([0, 1, 2], 1000)
    defaulted = np.zeros(3000, dtype=int)
    defaulted[:20] = 1  # grade A: 20 of 1000 at 2%: as expected
    defaulted[1000:1032] = 1  # grade B: 32 where 20 are expected
    defaulted[2000:2060] = 1  # grade C: 60 where 20 are expected
    found = backtest(pd_, defaulted, grade, ["A", "B", "C"])
    assert [g.light for g in found.grades] == ["green", "yellow", "red"]


def test_the_auc_test_needs_a_development_auc_and_both_outcomes(loans: Portfolio) -> None:
    found = backtest(loans.pd, loans.defaulted, loans.grade, GRADES)
    assert found.portfolio.auc.current is not None
    assert (found.portfolio.auc.statistic, found.portfolio.auc.p) == (None, None)
    none = backtest(loans.pd, np.zeros_like(loans.defaulted), loans.grade, GRADES)
    assert none.portfolio.auc.current is None
    assert none.portfolio.psi is None
    assert none.portfolio.spiegelhalter is not None


def test_a_sample_says_so(loans: Portfolio) -> None:
    found = backtest(loans.pd, loans.defaulted, loans.grade, GRADES, sampled_from=10**7)
    assert (found.sampled, found.sampled_from, found.rows) == (True, 10**7, loans.pd.size)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pd": np.full(4, 1.0)}, "pd"),
        ({"pd": np.array([0.1, np.nan, 0.1, 0.1])}, "pd"),
        ({"defaulted": np.array([0, 1, 2, 0])}, "defaulted"),
        ({"defaulted": np.array([0, 1, 0])}, "defaulted"),
        ({"grade": np.array([0, 1, 3, 0])}, "grade"),
        ({"grade": np.array([0.0, 1.0, 1.0, 0.0])}, "grade"),
        ({"grade": np.zeros((2, 2), dtype=int)}, "grade"),
        ({"grade_names": ["A"]}, "grade_names"),
        ({"grade_names": ["A", "A", "B"]}, "grade_names"),
        ({"rho": 1.0}, "rho"),
        ({"development_auc": 1.5}, "development_auc"),
        ({"development_grade_shares": [1, 2]}, "development_grade_shares"),
        ({"development_grade_shares": [0, 0, 0]}, "development_grade_shares"),
        ({"amount": np.array([1.0, -1.0, 1.0, 1.0])}, "amount"),
        ({"sampled_from": 3}, "sampled_from"),
    ],
)
def test_bad_input_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "pd": np.array([0.1, 0.2, 0.3, 0.1]),
        "defaulted": np.array([0, 1, 0, 0]),
        "grade": np.array([0, 1, 2, 0]),
        "grade_names": ["A", "B", "C"],
    }
    arguments.update(change)
    with pytest.raises(InvalidInput) as error:
        backtest(**arguments)  # type: ignore[arg-type]
    assert error.value.details["field"] == field


def test_booleans_are_outcomes_too() -> None:
    found = backtest(np.array([0.1, 0.2]), np.array([True, False]), np.array([0, 1]), ["A", "B"])
    assert [g.defaults for g in found.grades] == [1, 0]


def test_an_empty_window_reports_counts_and_no_figures() -> None:
    found = backtest(np.array([]), np.array([]), np.array([], dtype=int), ["A", "B"])
    assert found.rows == 0 and found.portfolio.light is None
    assert found.portfolio.hosmer_lemeshow is None and found.portfolio.spiegelhalter is None
    assert found.portfolio.heterogeneity == []


def test_the_json_reads_back_as_the_same_backtest(loans: Portfolio) -> None:
    found = backtest(loans.pd, loans.defaulted, loans.grade, GRADES, development_auc=0.7)
    assert Backtest.model_validate_json(found.model_dump_json()) == found
