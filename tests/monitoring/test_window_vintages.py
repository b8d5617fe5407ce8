"""A window's vintages are computed a chunk of loans at a time and merged per origination
month (validation/window.py): the merge gives exactly what one call of
:func:`loanrisk.validation.vintages` over all the loans gives, and counts the loans left out
(undated defaults, dates before scoring) alike."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.errors import TooLarge
from loanrisk.monitoring.outcomes import OutcomeArrays
from loanrisk.validation.vintages import vintages
from loanrisk.validation.window import _vintages

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


def test_chunked_vintages_equal_one_call_over_every_loan() -> None:
    times, outcomes = portfolio(5_000, seed=1)
    scored = np.random.default_rng(2).random(times.size) < 0.9
    merged = _vintages(times, outcomes, scored, chunk=137)

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


def test_no_loans_give_empty_vintages_and_too_many_months_are_refused() -> None:
    times, outcomes = portfolio(50, seed=3)
    empty = _vintages(times, outcomes, np.zeros(times.size, dtype=bool))
    assert empty.cohorts == [] and empty.months_on_book == []
    # chunks of few months each, 25 years in all: refused as one call would refuse it
    times, outcomes = portfolio(400, seed=4, days=25 * 365)
    order = np.argsort(times)  # each chunk of 10 spans a few months only
    ordered = OutcomeArrays(
        outcomes.ids,
        outcomes.defaulted[order],
        outcomes.defaulted_at[order],
        outcomes.observed[order],
    )
    with pytest.raises(TooLarge, match="origination months"):
        _vintages(times[order], ordered, np.ones(times.size, dtype=bool), chunk=10)
