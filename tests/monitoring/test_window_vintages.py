"""A window's vintages are computed a chunk of loans at a time and merged per origination
month (validation/window.py): the merge gives exactly what one call of
:func:`loanrisk.validation.vintages` over all the loans gives, and counts the loans left out
(undated defaults, dates before scoring) alike."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from loanrisk.errors import TooLarge
from loanrisk.monitoring.outcomes import OutcomeArrays
from loanrisk.registry.masterscale import DEFAULT_SCALE
from loanrisk.schema.model import Column
from loanrisk.validation.vintages import vintages
from loanrisk.validation.window import (
    VintageReport,
    _amounts,
    _dates,
    _fields,
    _Latest,
    _vintages,
)

DAY_US = 86_400_000_000


def portfolio(size: int, seed: int, *, days: int = 700) -> tuple[np.ndarray, OutcomeArrays]:
    """Scoring times over ``days`` days, outcomes observed later, some defaults dated, some
    not, a few observed before their scoring (inconsistent)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    times = start + (rng.integers(0, days * DAY_US, size)).astype("timedelta64[us]")
    seen = times + rng.integers(-5 * DAY_US, 400 * DAY_US, size).astype("timedelta64[us]")
    defaulted = rng.random(size) < 0.2
    after = rng.integers(0, 400 * DAY_US, size).astype("timedelta64[us]")
    default_at = np.where(defaulted, np.minimum(times + after, seen), np.datetime64("NaT"))
    default_at[defaulted & (rng.random(size) < 0.1)] = np.datetime64("NaT")  # undated
    ids = np.arange(size, dtype=np.uint64)
    outcomes = OutcomeArrays(ids, defaulted, default_at.astype("datetime64[us]"), seen)
    return times.astype("datetime64[us]").view(np.int64), outcomes


def window_vintages(
    times: np.ndarray,
    outcomes: OutcomeArrays,
    scored: np.ndarray,
    *,
    chunk: int = 100_000,
    originated: np.ndarray | None = None,
    amounts: np.ndarray | None = None,
) -> VintageReport:
    """The window's vintages of loans scored at ``times``, with the declared origination
    dates (microseconds) and amounts the log held for them, if given."""
    origination = Column(name="opened", role="kept", type="date", origination=True)
    amount = Column(name="principal", type="numeric", amount=True)
    latest = _Latest(
        outcomes,
        None,
        DEFAULT_SCALE,
        None if originated is None else origination,
        None if amounts is None else amount,
    )
    latest.time[:] = times
    if originated is not None:
        latest.originated = originated
    if amounts is not None:
        latest.amounts = amounts
    return _vintages(latest, outcomes, scored, chunk=chunk)


def test_chunked_vintages_equal_one_call_over_every_loan() -> None:
    times, outcomes = portfolio(5_000, seed=1)
    scored = np.random.default_rng(2).random(times.size) < 0.9
    merged = window_vintages(times, outcomes, scored, chunk=137)

    start = times[scored].astype("datetime64[us]")
    default_at, seen = outcomes.defaulted_at[scored], outcomes.observed[scored]
    undated = outcomes.defaulted[scored] & np.isnat(default_at)
    inconsistent = (seen < start) | (~np.isnat(default_at) & (default_at < start))
    usable = ~undated & ~inconsistent
    whole = vintages(start[usable], default_at[usable], seen[usable])

    assert merged.undated_defaults == int(undated.sum()) > 0
    assert merged.inconsistent == int((inconsistent & ~undated).sum()) > 0
    assert merged.months_on_book == whole.months_on_book
    assert [c.model_dump() for c in merged.cohorts] == [c.model_dump() for c in whole.cohorts]
    assert sum(c.loans for c in merged.cohorts) == int(usable.sum())


def test_no_loans_give_empty_vintages_and_only_the_latest_months_are_kept() -> None:
    times, outcomes = portfolio(50, seed=3)
    empty = window_vintages(times, outcomes, np.zeros(times.size, dtype=bool))
    assert empty.cohorts == [] and empty.months_on_book == []
    # 25 years of loans, in chunks of a few months each: the latest 240 months are kept, the
    # older loans counted (a stray old date never sinks the report).
    times, outcomes = portfolio(400, seed=4, days=25 * 365)
    order = np.argsort(times)
    ordered = OutcomeArrays(
        outcomes.ids,
        outcomes.defaulted[order],
        outcomes.defaulted_at[order],
        outcomes.observed[order],
    )
    scored = np.ones(times.size, dtype=bool)
    found = window_vintages(times[order], ordered, scored, chunk=10)
    whole = window_vintages(times[order], ordered, scored)
    first, last = (np.datetime64(found.cohorts[i].month, "M") for i in (0, -1))
    assert (last - first).astype(int) < 240 and found.older_left_out > 0
    assert last == times.max().astype("datetime64[us]").astype("datetime64[M]")
    assert [c.model_dump() for c in found.cohorts] == [c.model_dump() for c in whole.cohorts]
    kept = sum(c.loans for c in found.cohorts)
    left_out = found.undated_defaults + found.inconsistent + found.older_left_out
    assert kept + left_out == times.size
    with pytest.raises(TooLarge, match="origination months"):  # the array-level call refuses
        start = times[order].astype("datetime64[us]")
        vintages(start, np.full(times.size, np.datetime64("NaT"), "datetime64[us]"), start)


def test_declared_dates_and_amounts_date_and_weigh_the_loans_merged_exactly() -> None:
    """A loan with a declared origination date is dated by it, one without by its scoring;
    the rates by amount leave out the loans without an amount; chunks merge exactly."""
    times, outcomes = portfolio(3_000, seed=5)
    rng = np.random.default_rng(6)
    # Declared dates up to 20 days before scoring; 10% of loans lack one.
    declared = times - rng.integers(0, 20 * DAY_US, times.size)
    lacking = rng.random(times.size) < 0.1
    originated = np.where(lacking, np.iinfo(np.int64).min, declared)
    amounts = rng.uniform(500, 20_000, times.size)
    amounts[rng.random(times.size) < 0.05] = np.nan
    scored = np.ones(times.size, dtype=bool)
    merged = window_vintages(
        times, outcomes, scored, chunk=211, originated=originated, amounts=amounts
    )

    start = np.where(lacking, times, declared).astype("datetime64[us]")
    default_at, seen = outcomes.defaulted_at, outcomes.observed
    undated = outcomes.defaulted & np.isnat(default_at)
    inconsistent = (seen < start) | (~np.isnat(default_at) & (default_at < start))
    usable = ~undated & ~inconsistent
    weights = np.nan_to_num(amounts[usable], nan=0.0)
    whole = vintages(start[usable], default_at[usable], seen[usable], amount=weights)

    assert merged.origination == "opened" and merged.amount_column == "principal"
    assert merged.by_amount and merged.dated_by_scoring == int((usable & lacking).sum()) > 0
    assert merged.unknown_amounts == int(np.isnan(amounts[usable]).sum()) > 0
    assert len(merged.cohorts) == len(whole.cohorts)
    for ours, theirs in zip(merged.cohorts, whole.cohorts, strict=True):
        assert (ours.month, ours.loans, ours.observed) == (
            theirs.month,
            theirs.loans,
            theirs.observed,
        )
        assert ours.rate_by_count == theirs.rate_by_count
        assert ours.amount == pytest.approx(theirs.amount, rel=1e-12)
        assert ours.rate_by_amount is not None and theirs.rate_by_amount is not None
        for a, b in zip(ours.rate_by_amount, theirs.rate_by_amount, strict=True):
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9)
    # Dated by scoring alone, the same loans fall in other months.
    by_scoring = window_vintages(times, outcomes, scored)
    assert by_scoring.origination == "scored" and not by_scoring.by_amount
    assert [c.loans for c in by_scoring.cohorts] != [c.loans for c in merged.cohorts]


def test_the_declared_fields_are_read_from_the_logged_loans_as_json_holds_them() -> None:
    """Top-level keys only (matched trimmed and case-insensitively, names with '=' and '-'
    too), never text inside another field's string; a number or numeric text as an amount; a
    negative, absent or null value unreadable."""
    loans = [
        {"Opened_On": "2025-01-02", "amt=1": 12.5},
        {"note": '"opened_on":"2020-01-01","amt=1":9', "opened_on": None, "amt=1": "7"},
        {"opened_on": "2025-02-30", "amt=1": -3},
        {"other": 1},
    ]
    texts = pa.chunked_array(
        [pa.array([json.dumps(loan, separators=(",", ":")) for loan in loans])]
    )
    column = Column(name="opened_on", role="kept", type="date", origination=True)
    dates = _dates(_fields(texts, "opened_on", numbers=False), column)
    unread = np.iinfo(np.int64).min
    assert dates[0] == np.datetime64("2025-01-02", "us").astype(np.int64)
    assert list(dates[1:]) == [unread] * 3  # null, not a date, absent
    amounts = _amounts(_fields(texts, "amt=1", numbers=True))
    assert amounts[:2].tolist() == [12.5, 7.0] and np.isnan(amounts[2:]).all()
