"""Vintages: the cumulative default rate of each origination month's loans by months on book,
by count and, when amounts are given, by amount.

A loan's months on book at a moment t are the whole calendar months from its origination to
t: the difference of the months, less one when t falls earlier in its month (day and time)
than the origination did in its own (so 31 January to 28 February is 0 months, to 1 March 1).
At m months on book a loan is *observed* when its observation time is at least m months after
origination, and counts as defaulted when it defaulted at m months on book or earlier. The
cumulative default rate of a cohort at m is defaulted / observed among its loans observed at
m (None when none is): loans not yet observed that long are left out, not counted as good
(the usual life-table treatment of censoring; Thomas, Edelman and Crook, "Credit scoring and
its applications", 2002, on vintage analysis). Bounded: at most ``max_months`` + 1 columns
and ``max_cohorts`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from loanrisk.errors import InvalidInput, TooLarge

#: Months on book shown by default (ten years).
MAX_MONTHS = 120
#: Origination months one report holds by default (twenty years).
MAX_COHORTS = 240


class Cohort(BaseModel):
    """One origination month (``YYYY-MM``): its loans and amount, and per month on book
    (0..) the loans observed that long and the cumulative default rates."""

    model_config = ConfigDict(frozen=True)

    month: str
    loans: int
    amount: float | None
    observed: list[int]
    rate_by_count: list[float | None]
    rate_by_amount: list[float | None] | None


class Vintages(BaseModel):
    """Cohorts oldest first; ``months_on_book`` labels the columns."""

    model_config = ConfigDict(frozen=True)

    months_on_book: list[int]
    cohorts: list[Cohort]


def _moment(values: object, name: str, size: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0 and size is not None:
        array = np.full(size, array)
    try:
        moments = array.astype("datetime64[ns]")
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{name} must be dates or times", details={"field": name}) from error
    if moments.ndim != 1 or (size is not None and moments.size != size):
        raise InvalidInput(f"{name} must be one moment per loan", details={"field": name})
    return moments


def months_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whole calendar months from ``start`` to ``end`` (datetime64 arrays; see the module)."""
    start_month, end_month = start.astype("datetime64[M]"), end.astype("datetime64[M]")
    months = (end_month - start_month).astype(np.int64)
    into_start = start - start_month.astype("datetime64[ns]")
    into_end = end - end_month.astype("datetime64[ns]")
    result: np.ndarray = months - (into_end < into_start).astype(np.int64)
    return result


@dataclass
class CohortSums:
    """One origination month's sums over its loans: ``loans``, ``amount``, and per month on
    book the loans ``observed`` and ``defaulted`` by then, and the same weighted by amount
    (``None`` without amounts). Sums over loans: the sums of two sets of loans add up."""

    loans: int
    amount: float
    observed: np.ndarray
    defaulted: np.ndarray
    observed_amount: np.ndarray | None
    defaulted_amount: np.ndarray | None

    def add(self, other: CohortSums) -> None:
        """Add ``other``'s loans (of the same month and width) to these."""
        self.loans += other.loans
        self.amount += other.amount
        self.observed = self.observed + other.observed
        self.defaulted = self.defaulted + other.defaulted
        if self.observed_amount is not None and other.observed_amount is not None:
            self.observed_amount = self.observed_amount + other.observed_amount
        if self.defaulted_amount is not None and other.defaulted_amount is not None:
            self.defaulted_amount = self.defaulted_amount + other.defaulted_amount


#: Origination month -> its sums.
Sums = dict[np.datetime64, CohortSums]


def vintages(
    originated: np.ndarray,
    defaulted_at: np.ndarray,
    observed_at: np.ndarray | np.datetime64 | str,
    *,
    amount: np.ndarray | None = None,
    max_months: int = MAX_MONTHS,
    max_cohorts: int = MAX_COHORTS,
) -> Vintages:
    """Cumulative default rates by origination month x months on book.

    ``originated``: each loan's origination moment; ``defaulted_at``: its default moment, NaT
    (or None) for none; ``observed_at``: when its outcome was last known, one per loan or one
    for all; ``amount``: optional non-negative amounts (adds the rates by amount). A default
    before origination or after the observation time is refused (:class:`InvalidInput` naming
    the field); more origination months than ``max_cohorts`` raise :class:`TooLarge`. Months on
    book past ``max_months`` are not shown.
    """
    sums = cohort_sums(
        originated,
        defaulted_at,
        observed_at,
        amount=amount,
        max_months=max_months,
        max_cohorts=max_cohorts,
    )
    return from_sums(sums, max_months=max_months, by_amount=amount is not None)


def cohort_sums(
    originated: np.ndarray,
    defaulted_at: np.ndarray,
    observed_at: np.ndarray | np.datetime64 | str,
    *,
    amount: np.ndarray | None = None,
    max_months: int = MAX_MONTHS,
    max_cohorts: int = MAX_COHORTS,
) -> Sums:
    """The sums :func:`vintages` rates are made of, per origination month present (same
    arguments and refusals): the sums of chunks of loans add up (:meth:`CohortSums.add`) to
    the sums of all of them, so a caller can feed any number of loans a chunk at a time."""
    start = _moment(originated, "originated")
    size = start.size
    default = _moment(defaulted_at, "defaulted_at", size)
    seen = _moment(observed_at, "observed_at", size)
    if np.isnat(start).any():
        raise InvalidInput("every loan needs its origination time", details={"field": "originated"})
    if np.isnat(seen).any() or (seen < start).any():
        raise InvalidInput(
            "observed_at must not precede origination", details={"field": "observed_at"}
        )
    has_default = ~np.isnat(default)
    if (default[has_default] < start[has_default]).any():
        raise InvalidInput("a default precedes its origination", details={"field": "defaulted_at"})
    if (default[has_default] > seen[has_default]).any():
        raise InvalidInput(
            "a default is later than its observation", details={"field": "defaulted_at"}
        )
    weights = None
    if amount is not None:
        weights = np.asarray(amount, dtype=np.float64)
        if weights.shape != (size,) or not np.all(np.isfinite(weights) & (weights >= 0)):
            raise InvalidInput(
                "amount must be one non-negative number per loan", details={"field": "amount"}
            )
    if size == 0:
        return {}
    months = start.astype("datetime64[M]")
    first = months.min()
    cohort = (months - first).astype(np.int64)
    count = int(cohort.max()) + 1
    _check_cohorts(count, max_cohorts)
    width = max_months + 1
    observed_mob = np.minimum(months_between(start, seen), max_months)
    default_mob = np.where(
        has_default, months_between(start, np.where(has_default, default, start)), -1
    )
    observed, defaulted = _table(cohort, observed_mob, default_mob, None, count, width)
    weighted = (
        None
        if weights is None
        else _table(cohort, observed_mob, default_mob, weights, count, width)
    )
    loans = np.bincount(cohort, minlength=count)
    amounts = np.zeros(count) if weights is None else np.bincount(cohort, weights, count)
    return {
        first + c: CohortSums(
            loans=int(loans[c]),
            amount=float(amounts[c]),
            observed=observed[c].astype(np.int64),
            defaulted=np.rint(defaulted[c]).astype(np.int64),
            observed_amount=None if weighted is None else weighted[0][c],
            defaulted_amount=None if weighted is None else weighted[1][c],
        )
        for c in range(count)
        if loans[c] > 0
    }


def _check_cohorts(count: int, max_cohorts: int) -> None:
    if count > max_cohorts:
        raise TooLarge(
            f"{count} origination months: at most {max_cohorts} in one report",
            details={"field": "originated"},
        )


def from_sums(
    sums: Sums,
    *,
    max_months: int = MAX_MONTHS,
    by_amount: bool = False,
    max_cohorts: int = MAX_COHORTS,
) -> Vintages:
    """The vintages of :func:`cohort_sums` (merged or not): every month from the first to
    the last, a month without loans an empty cohort; rates by amount when ``by_amount``
    (a month without amounts has them null); :class:`TooLarge` past ``max_cohorts``."""
    if not sums:
        return Vintages(months_on_book=[], cohorts=[])
    first, last = min(sums), max(sums)
    count = int((last - first).astype(np.int64)) + 1
    _check_cohorts(count, max_cohorts)
    width = max_months + 1
    zeros = np.zeros(width, dtype=np.int64)
    empty = CohortSums(0, 0.0, zeros, zeros, np.zeros(width), np.zeros(width))
    cohorts = []
    for month in (first + step for step in range(count)):
        found = sums.get(month, empty)
        observed_amount, defaulted_amount = found.observed_amount, found.defaulted_amount
        by_weight: list[float | None] | None = None
        if by_amount:
            by_weight = (
                _rates(observed_amount, defaulted_amount)
                if observed_amount is not None and defaulted_amount is not None
                else [None] * width
            )
        cohorts.append(
            Cohort(
                month=str(month),
                loans=found.loans,
                amount=found.amount if by_amount else None,
                observed=[int(v) for v in found.observed],
                rate_by_count=_rates(found.observed, found.defaulted),
                rate_by_amount=by_weight,
            )
        )
    return Vintages(months_on_book=list(range(width)), cohorts=cohorts)


def _table(
    cohort: np.ndarray,
    observed_mob: np.ndarray,
    default_mob: np.ndarray,
    weights: np.ndarray | None,
    count: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(observed, defaulted) per cohort x month on book, weighted by ``weights`` if given."""
    w = np.ones(cohort.size) if weights is None else weights
    # A loan is observed at every m <= its observed months on book: count it at that m, then
    # sum from the right.
    last = np.zeros((count, width + 1))
    np.add.at(last, (cohort, observed_mob), w)
    observed = np.cumsum(last[:, ::-1], axis=1)[:, ::-1][:, :width]
    # A default counts from its month on book to the loan's last observed one: +w there, -w
    # after, summed from the left.
    steps = np.zeros((count, width + 1))
    counted = (default_mob >= 0) & (default_mob <= observed_mob)
    np.add.at(steps, (cohort[counted], default_mob[counted]), w[counted])
    np.add.at(steps, (cohort[counted], observed_mob[counted] + 1), -w[counted])
    defaulted = np.cumsum(steps, axis=1)[:, :width]
    return observed, defaulted


def _rates(observed: np.ndarray, defaulted: np.ndarray) -> list[float | None]:
    return [float(d / o) if o > 0 else None for d, o in zip(defaulted, observed, strict=True)]
