"""Vintages held to a loan-by-loan count, and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.validation import vintages
from loanrisk.validation.vintages import months_between


def test_whole_calendar_months() -> None:
    start = np.array(["2024-01-31", "2024-01-15T12:00", "2024-03-01"], dtype="datetime64[ns]")
    end = np.array(["2024-02-29", "2024-02-15T12:00", "2025-03-01"], dtype="datetime64[ns]")
    assert months_between(start, end).tolist() == [0, 1, 12]


def _naive(originated, defaulted_at, observed_at, amount, months):  # type: ignore[no-untyped-def]
    """Loan by loan: observed at m when m whole months fit before observation; defaulted by m
    when the default came within m whole months."""

    def mob(a, b):  # type: ignore[no-untyped-def]
        a, b = a.astype("datetime64[D]").item(), b.astype("datetime64[D]").item()
        return (b.year - a.year) * 12 + b.month - a.month - (b.day < a.day)

    table: dict[str, list[list[float]]] = {}
    for o, d, s, w in zip(originated, defaulted_at, observed_at, amount, strict=True):
        row = table.setdefault(
            str(o.astype("datetime64[M]")), [[0.0] * (months + 1) for _ in range(4)]
        )
        for m in range(months + 1):
            if mob(o, s) >= m:
                row[0][m] += 1
                row[2][m] += w
                if not np.isnat(d) and mob(o, d) <= m:
                    row[1][m] += 1
                    row[3][m] += w
    return table


def test_cumulative_rates_equal_a_loan_by_loan_count() -> None:
    rng = np.random.default_rng(4)
    size = 400
    originated = np.datetime64("2023-01-01") + rng.integers(0, 365, size).astype("timedelta64[D]")
    observed = np.datetime64("2024-06-30")
    lag = rng.integers(0, 540, size).astype("timedelta64[D]")
    defaulted_at = np.where(rng.random(size) < 0.2, originated + lag, np.datetime64("NaT")).astype(
        "datetime64[D]"
    )
    defaulted_at = np.where(defaulted_at > observed, np.datetime64("NaT"), defaulted_at)
    amount = rng.uniform(1000, 5000, size)
    found = vintages(originated, defaulted_at, observed, amount=amount, max_months=24)
    naive = _naive(originated, defaulted_at, np.full(size, observed), amount, 24)
    assert [c.month for c in found.cohorts] == sorted(naive)
    for cohort in found.cohorts:
        observed_n, defaults, observed_w, defaults_w = naive[cohort.month]
        assert cohort.observed == observed_n
        for m in range(25):
            if observed_n[m] == 0:
                assert cohort.rate_by_count[m] is None
                continue
            assert cohort.rate_by_count[m] == pytest.approx(defaults[m] / observed_n[m], abs=1e-12)
            assert cohort.rate_by_amount is not None
            assert cohort.rate_by_amount[m] == pytest.approx(
                defaults_w[m] / observed_w[m], abs=1e-12
            )


def test_months_with_no_origination_are_empty_cohorts() -> None:
    found = vintages(
        np.array(["2024-01-10", "2024-03-10"], dtype="datetime64[D]"),
        np.array(["NaT", "2024-04-20"], dtype="datetime64[D]"),
        np.datetime64("2024-05-01"),
        max_months=3,
    )
    assert [c.month for c in found.cohorts] == ["2024-01", "2024-02", "2024-03"]
    assert found.cohorts[1].loans == 0 and found.cohorts[1].rate_by_count == [None] * 4
    assert found.cohorts[2].rate_by_count == [0.0, 1.0, None, None]
    assert found.cohorts[0].rate_by_amount is None


@pytest.mark.parametrize(
    ("defaulted_at", "observed_at", "field"),
    [
        (["2023-12-01"], "2024-05-01", "defaulted_at"),
        (["2024-06-01"], "2024-05-01", "defaulted_at"),
        (["NaT"], "2023-05-01", "observed_at"),
        (["NaT"], "soon", "observed_at"),
    ],
)
def test_impossible_dates_are_refused(
    defaulted_at: list[str], observed_at: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        vintages(
            np.array(["2024-01-10"], dtype="datetime64[D]"), np.array(defaulted_at), observed_at
        )
    assert error.value.details["field"] == field


def test_too_many_origination_months_are_refused() -> None:
    with pytest.raises(TooLarge):
        vintages(
            np.array(["2000-01-01", "2024-01-01"], dtype="datetime64[D]"),
            np.array(["NaT", "NaT"]),
            np.datetime64("2024-05-01"),
            max_cohorts=12,
        )
