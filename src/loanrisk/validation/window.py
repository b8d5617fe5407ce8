"""The backtest of a window of the prediction log (docs/validation.md): the loans version REF
of a model scored in ``[since, until)``, joined to their outcomes, tested per grade of the
version's master scale and for the portfolio (:func:`loanrisk.validation.backtest`), per
segment of an attribute, by vintage, and the migration of their grades between two windows or
two versions. It lives in ``validation`` (the layer above ``monitoring``, whose log and
outcomes it reads), the glue between the prediction log and the array-level statistics.

Exact and bounded: the outcomes are read a file at a time into compact arrays
(:func:`~loanrisk.monitoring.outcomes.read_outcome_arrays`: a 64-bit hash of each loan id,
sorted, with its default flag and dates, 25 bytes a loan), the window's log files one at a
time (the columns needed only); each loan with an outcome keeps its latest score of the window
in two arrays aligned with the outcomes (16 bytes a loan), and the arrays are fed to the
validation accumulators in chunks (the vintages too, merged per origination month). Nothing is
sampled: every loan with an outcome counts, however many the window holds. Memory: about 41
bytes per outcome (plus the segment value with ``segment``), one log file and O(grades); log
rows without an outcome cost nothing (docs/validation.md gives the peaks measured); a declared
origination date and amount add 8 bytes each per outcome. Loan ids
are matched by their hash: two distinct ids of the log and the outcomes share one with
probability at most n(n-1)/2**65 for n distinct ids (about 1e-5 for 20 million), the one way
a count could be off. Only the migration matrix, which pairs loans across two windows or
versions, holds grades per loan id: past ``max_rows`` loan ids it keeps a uniform sample of
them (by a hash of the id, the same loans on both sides) and says so (``sampled``).

A loan's PD is the probability logged; its grade is the version's master scale applied to
that PD. The logged ``grade`` is written by the same scale: every row of the window whose
logged grade differs is counted in ``grade_mismatches``. PDs of exactly 0 or 1 are moved
inside (0, 1) by :data:`PD_EPSILON` for the tests that need it. The development AUC and grade
distribution come from the version's report (its development backtest) when it records them
for the same master scale.

Vintages date a loan by the origination date column its schema declares (``origination:
true``), read from the loan as logged, and by the time it was scored when the schema declares
none or the loan lacks a readable date; with a declared amount column (``amount: true``) they
are by amount too. Those values are read from the logged loans (JSON) of the loans with an
outcome only, a file at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from loanrisk.errors import InvalidInput
from loanrisk.monitoring.drift import Moment
from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log._files import day_files, read_file_or_skip
from loanrisk.monitoring.outcomes import OutcomeArrays, loan_id_hashes, read_outcome_arrays
from loanrisk.registry.masterscale import MasterScale
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.schema import Column, LoanSchema
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem
from loanrisk.validation.backtest import Backtest, BacktestAccumulator
from loanrisk.validation.migration import Migration, migration_counts, migration_from_counts
from loanrisk.validation.segments import SegmentAccumulator, Segments
from loanrisk.validation.vintages import MAX_COHORTS, Sums, Vintages, cohort_sums, from_sums

#: Loans fed to the accumulators at once.
CHUNK = 100_000
#: How far a logged PD of exactly 0 or 1 is moved inside (0, 1).
PD_EPSILON = 1e-12
#: The types of attribute a backtest is segmented by.
SEGMENT_TYPES = ("categorical", "ordinal", "boolean")
#: The roles of a segment attribute: what the log holds as the loans carried it.
SEGMENT_ROLES = ("feature", "kept", "protected")
_COLUMNS = ["time", "loan_id", "version", "probability", "grade"]
_MIN_TIME = np.iinfo(np.int64).min
#: Origination months a chunk of the window may span (any: the merge keeps the latest).
_ANY = 10**6


class VintageReport(Vintages):
    """:class:`~loanrisk.validation.Vintages` of the loans with an outcome, by origination
    month: ``origination`` names the schema's origination date column, or is ``scored`` (the
    month each loan was scored); ``dated_by_scoring`` counts the loans dated by their scoring
    time although the schema declares a date column (they lacked a readable one). With an
    amount column (``amount`` names it, ``by_amount``), the rates by amount too, of the loans
    with a readable amount (``unknown_amounts`` counts the others). Left out: defaults without
    a ``defaulted_at`` (``undated_defaults``), loans whose default or observation precedes
    their origination (``inconsistent``), and loans originated before the latest
    :data:`~loanrisk.validation.vintages.MAX_COHORTS` months (``older_left_out``)."""

    origination: str = "scored"
    dated_by_scoring: int = 0
    by_amount: bool = False
    amount_column: str | None = None
    unknown_amounts: int = 0
    undated_defaults: int = 0
    inconsistent: int = 0
    older_left_out: int = 0


class MigrationReport(Migration):
    """:class:`~loanrisk.validation.Migration` of the loans graded on both sides: ``kind``
    (``versions`` or ``windows``), ``initial`` and ``final`` say what the sides are;
    ``sampled`` whether the loans are a uniform sample of those both sides scored (by loan
    id, past ``max_rows``)."""

    kind: str
    initial: str
    final: str
    sampled: bool = False


class BacktestReport(Backtest):
    """A backtest of version ``version`` of ``model`` over ``[since, until)`` of the
    prediction log: the :class:`~loanrisk.validation.Backtest` fields (``grades``,
    ``portfolio``, ``rows`` = loans with an outcome, ...), and ``scored`` (log rows of the
    version in the window), the ``master_scale``'s name, where the development figures come
    from (``development``: the version's report, or None), ``grade_mismatches``, the optional
    ``segments``, ``vintages`` and ``migration``, and the stored files skipped
    (``problems``)."""

    model: str
    version: int
    since: Moment | None = None
    until: Moment | None = None
    master_scale: str
    scored: int
    development: str | None = None
    grade_mismatches: int = 0
    segments: Segments | None = None
    vintages: VintageReport | None = None
    migration: MigrationReport | None = None
    problems: list[Problem] = Field(default_factory=list)


def development_figures(model: LoadedModel) -> tuple[float | None, list[float] | None]:
    """The development AUC (the report's backtest ``portfolio.auc.current``) and grade
    distribution (the report's ``grades`` loans) when the version's report records them for
    its master scale; (None, None) when not (reports written before backtests)."""
    report = model.report
    if report is None:
        return None, None
    auc: float | None = None
    try:
        found = (report.backtest or {})["portfolio"]["auc"]["current"]
        auc = float(found) if found is not None else None
    except (KeyError, TypeError, ValueError):
        auc = None
    shares: list[float] | None = None
    names = [g.grade for g in report.grades or []]
    if (
        report.grades
        and names == list(model.master_scale.names)
        and sum(g.loans for g in report.grades) > 0
    ):
        shares = [float(g.loans) for g in report.grades]
    return auc, shares


def segment_column(schema: LoanSchema, segment: str) -> str:
    """``segment`` if it names a categorical, ordinal or boolean column of the schema that
    the log holds in clear: a feature, or a kept or protected column (logged when the loans
    carry it: a loan scored without it falls in the ``(missing)`` segment); never a ``pii``
    one (hashed or left out of the log). Else :class:`InvalidInput` naming ``segment``."""
    column = schema.by_name.get(segment)
    if column is None or column.role not in SEGMENT_ROLES:
        choices = [c.name for c in schema.columns if _segmentable(c)]
        raise InvalidInput(
            f"segment: {segment!r} is no attribute of the schema the log holds; one of: "
            + ", ".join(choices),
            details={"field": "segment"},
        )
    if not _segmentable(column):
        raise InvalidInput(
            f"segment: {segment!r} is a {column.type} column"
            + (" declared personal (pii): the log does not hold it in clear" if column.pii else "")
            + "; a backtest is segmented by a categorical or ordinal attribute",
            details={"field": "segment"},
        )
    return column.name


def _segmentable(column: Any) -> bool:
    return bool(column.role in SEGMENT_ROLES and column.type in SEGMENT_TYPES and not column.pii)


def _window_files(
    storage: Storage,
    directory: str,
    model: str,
    since: datetime | None,
    until: datetime | None,
    version: int,
    columns: list[str],
    problems: list[Problem],
) -> Iterator[pa.Table]:
    """The version's rows of the window, a log file at a time (``columns`` only)."""
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    kind = COLUMNS.field("time").type
    for day, folder, names in day_files(storage, directory, model, problems=problems):
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        for name in names:
            table = read_file_or_skip(storage, storage.join(folder, name), columns, problems)
            if table is None:
                continue
            keep = pc.and_(pc.is_valid(table["time"]), pc.equal(table["version"], version))
            if since is not None:
                keep = pc.and_(keep, pc.greater_equal(table["time"], pa.scalar(since, kind)))
            if until is not None:
                keep = pc.and_(keep, pc.less(table["time"], pa.scalar(until, kind)))
            yield table.filter(keep)


@dataclass
class _Latest:
    """The latest score of the window of each loan with an outcome, aligned with the
    outcomes (``outcomes.ids``: their loan ids' hashes); every row of the window counted
    (``scored``) and its logged grade checked against ``scale``'s grade of its PD
    (``mismatches``). With ``segment``, ``origination`` or ``amount`` (columns of the
    schema), those values of the logged loan too: the segment's text, the origination date
    (microseconds, :data:`_MIN_TIME` where unreadable) and the amount (NaN where unreadable)."""

    outcomes: OutcomeArrays
    segment: str | None
    scale: MasterScale
    origination: Column | None = None
    amount: Column | None = None
    time: np.ndarray = field(init=False)
    probability: np.ndarray = field(init=False)
    values: np.ndarray | None = field(init=False)
    originated: np.ndarray | None = field(init=False)
    amounts: np.ndarray | None = field(init=False)
    scored: int = 0
    mismatches: int = 0

    def __post_init__(self) -> None:
        size = len(self.outcomes)
        self.time = np.full(size, _MIN_TIME, dtype=np.int64)
        self.probability = np.full(size, np.nan)
        self.values = None if self.segment is None else np.full(size, None, dtype=object)
        self.originated = (
            None if self.origination is None else np.full(size, _MIN_TIME, dtype=np.int64)
        )
        self.amounts = None if self.amount is None else np.full(size, np.nan)

    @property
    def reads_loans(self) -> bool:
        """Whether the logged loans (``features``) are read."""
        return self.segment is not None or self.origination is not None or self.amount is not None

    def add(self, table: pa.Table) -> None:
        self.scored += table.num_rows
        self._check_grades(table)
        table = table.filter(pc.is_valid(table["loan_id"]))
        where = self.outcomes.positions(loan_id_hashes(table["loan_id"]))
        chosen = where >= 0
        if not chosen.any():
            return
        rows = table.filter(pa.array(chosen))
        where = where[chosen]
        times = rows["time"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        # The latest row of each loan in this file, then only where it is newer than kept.
        order = np.lexsort((times, where))
        last = np.r_[where[order][1:] != where[order][:-1], True]
        picked = order[last]
        newer = times[picked] > self.time[where[picked]]
        picked = picked[newer]
        at = where[picked]
        self.time[at] = times[picked]
        self.probability[at] = rows["probability"].to_numpy(zero_copy_only=False)[picked]
        if self.reads_loans:
            self._read_loans(at, rows["features"].take(pa.array(picked)))

    def _read_loans(self, at: np.ndarray, texts: pa.ChunkedArray) -> None:
        """Keep the segment, origination date and amount of the logged loans ``texts`` (their
        JSON), which are those at ``at``: the segment by parsing each loan, the date and the
        amount by one vectorised search of the texts for their fields (:func:`_fields`)."""
        if self.values is not None and self.segment is not None:
            loans = [_loan(text) for text in texts.to_numpy(zero_copy_only=False)]
            self.values[at] = [_text_value(loan.get(self.segment)) for loan in loans]
        if self.originated is not None and self.origination is not None:
            found = _fields(texts, self.origination.name, numbers=False)
            self.originated[at] = _dates(found, self.origination)
        if self.amounts is not None and self.amount is not None:
            self.amounts[at] = _amounts(_fields(texts, self.amount.name, numbers=True))

    def _check_grades(self, table: pa.Table) -> None:
        """Count the rows whose logged grade is not the scale's grade of their PD."""
        logged = table["grade"].to_numpy(zero_copy_only=False)
        probability = table["probability"].to_numpy(zero_copy_only=False).astype(np.float64)
        valid = (
            pc.is_valid(table["grade"]).to_numpy(zero_copy_only=False)
            & np.isfinite(probability)
            & (probability >= 0.0)
            & (probability <= 1.0)
        )
        if valid.any():
            names = np.asarray(self.scale.names, dtype=object)
            computed = names[self.scale.grade_index(probability[valid])]
            self.mismatches += int((logged[valid] != computed).sum())


def _loan(text: object) -> dict[str, Any]:
    """A logged loan (its features as received, JSON), keys as schemas name columns (trimmed,
    lower-case); empty if it cannot be read."""
    try:
        found = json.loads(str(text))
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k).strip().lower(): v for k, v in found.items()}


def _text_value(found: object) -> object:
    """A segment's value as text; None if absent or not a scalar."""
    return None if found is None or isinstance(found, dict | list) else str(found)


def _fields(texts: pa.ChunkedArray, name: str, *, numbers: bool) -> pd.Series:
    """The top-level field ``name`` of each logged loan (compact JSON, as the log writes it;
    the key matched trimmed and case-insensitively, as columns are) as text: a JSON string's
    content, or with ``numbers`` a number's literal too; None where absent, null or another
    kind. One regular-expression pass in Arrow, cheaper than a JSON parse of every loan
    (benchmarks/bench_declared_vintages.py). A string's escapes are not decoded (a date or an
    amount has none: one that does reads as unreadable)."""
    key = re.escape(json.dumps(name)[1:-1])
    number = r"|(?P<number>-?[0-9][0-9.eE+-]*)" if numbers else ""
    value = r'"(?P<text>(?:[^"\\]|\\.)*)"' + number
    pattern = r'[{,]"\s*(?i:' + key + r')\s*":(?:' + value + ")"
    found = pc.extract_regex(texts, pattern)
    text = _present(pc.struct_field(found, "text"))
    if numbers:  # the alternative not taken reads as empty text
        text = pc.coalesce(text, _present(pc.struct_field(found, "number")))
    series: pd.Series = text.to_pandas()
    return series


def _present(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """``text`` with empty values null."""
    empty = pc.equal(text, "")
    result: pa.ChunkedArray = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    return result


def _dates(values: pd.Series, column: Column) -> np.ndarray:
    """Dates as the column declares them (``date_format``, else ISO; UTC unless they say
    otherwise), in microseconds; :data:`_MIN_TIME` where absent or unreadable."""
    parsed = pd.to_datetime(
        values.astype("string").str.strip(),
        errors="coerce",
        format=column.date_format or "ISO8601",
        utc=True,
    )
    micros = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    out: np.ndarray = np.where(np.isnat(micros), _MIN_TIME, micros.view(np.int64))
    return out


def _amounts(values: pd.Series) -> np.ndarray:
    """Amounts as logged (a JSON number or numeric text); NaN where absent, unreadable or
    negative."""
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    out = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    result: np.ndarray = np.where(np.isfinite(out) & (out >= 0), out, np.nan)
    return result


def _vintages(
    latest: _Latest, outcomes: OutcomeArrays, scored: np.ndarray, chunk: int = CHUNK
) -> VintageReport:
    """The vintages of the loans ``scored`` (aligned with the outcomes), computed ``chunk``
    loans at a time by :func:`~loanrisk.validation.vintages.cohort_sums` and merged per
    origination month: a cohort's figures are sums over its loans, so the merge is exact. A
    loan is dated by its declared origination date where ``latest`` read one, else by the time
    it was scored."""
    positions = np.flatnonzero(scored)
    undated_total = inconsistent_total = by_scoring = unknown_amounts = 0
    merged: Sums = {}
    for first in range(0, positions.size, chunk):
        at = positions[first : first + chunk]
        default_at, seen = outcomes.defaulted_at[at], outcomes.observed[at]
        start = latest.time[at]
        if latest.originated is not None:
            declared = latest.originated[at]
            dated = declared > _MIN_TIME
            start = np.where(dated, declared, start)
        start = start.astype("datetime64[us]")
        undated = outcomes.defaulted[at] & np.isnat(default_at)
        has_default = ~np.isnat(default_at)
        inconsistent = (seen < start) | (has_default & (default_at < start))
        usable = ~undated & ~inconsistent
        undated_total += int(undated.sum())
        inconsistent_total += int((inconsistent & ~undated).sum())
        if latest.originated is not None:
            by_scoring += int((usable & ~dated).sum())
        weights = None
        if latest.amounts is not None:
            amounts = latest.amounts[at][usable]
            unknown_amounts += int(np.isnan(amounts).sum())
            weights = np.nan_to_num(amounts, nan=0.0)
        part = cohort_sums(
            start[usable], default_at[usable], seen[usable], amount=weights, max_cohorts=_ANY
        )
        for month, sums in part.items():
            if month in merged:
                merged[month].add(sums)
            else:
                merged[month] = sums
    older = _keep_latest_months(merged)
    by_amount = latest.amount is not None
    return VintageReport(
        **from_sums(merged, by_amount=by_amount).model_dump(),
        older_left_out=older,
        origination="scored" if latest.origination is None else latest.origination.name,
        dated_by_scoring=by_scoring,
        by_amount=by_amount,
        amount_column=None if latest.amount is None else latest.amount.name,
        unknown_amounts=unknown_amounts,
        undated_defaults=undated_total,
        inconsistent=inconsistent_total,
    )


def _keep_latest_months(merged: Sums) -> int:
    """Keep the latest :data:`~loanrisk.validation.vintages.MAX_COHORTS` origination months
    of ``merged`` (in place; a stray old date must not sink the whole report); the loans of
    the months dropped."""
    if not merged:
        return 0
    first = max(merged) - (MAX_COHORTS - 1)
    older = [month for month in merged if month < first]
    return sum(merged.pop(month).loans for month in older)


@dataclass(frozen=True)
class Window:
    """Where and when: the storage, the log and outcome directories, the window."""

    storage: Storage
    log_directory: str
    outcome_directory: str
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls, storage: Storage, settings: Settings, since: datetime | None, until: datetime | None
    ) -> Window:
        """``[since, until)`` of the log and outcome directories ``settings`` name."""
        return cls(
            storage,
            storage.resolve(settings.log_directory),
            storage.resolve(settings.outcome_directory),
            since,
            until,
        )


def backtest_for(
    where: Window,
    registry: ModelRegistry,
    name: str,
    ref: str | int,
    *,
    segment: str | None = None,
    with_vintages: bool = True,
    against: str | int | None = None,
    previous: tuple[datetime, datetime] | None = None,
    max_rows: int = 200_000,
    rho: float | None = None,
) -> BacktestReport:
    """The backtest of version ``ref`` of model ``name`` over the window (module docstring).

    ``segment``: a categorical or ordinal attribute of the version's schema (else
    :class:`InvalidInput` naming ``segment``): the backtest per value, Benjamini-Hochberg
    adjusted. ``with_vintages``: add the vintages. ``against``: another version of the model:
    the migration from ``ref``'s grade of each loan to ``against``'s, both on ``ref``'s master
    scale, over the loans both scored in the window. ``previous``: an earlier window: the
    migration from each loan's grade there to its grade in this one (``ref`` both times).
    ``max_rows`` bounds the loan ids a migration holds. Unreadable log and outcome files are
    skipped and named in ``problems``."""
    model = registry.load(name, ref)
    attribute = None if segment is None else segment_column(model.schema, segment)
    other = None if against is None else registry.load(name, against)
    problems: list[Problem] = []
    outcomes = read_outcome_arrays(where.storage, where.outcome_directory, problems=problems)
    schema = model.schema
    latest = _Latest(
        outcomes,
        attribute,
        model.master_scale,
        schema.origination if with_vintages else None,
        schema.amount if with_vintages else None,
    )
    columns = _COLUMNS + (["features"] if latest.reads_loans else [])
    for table in _window_files(
        where.storage,
        where.log_directory,
        name,
        where.since,
        where.until,
        model.version,
        columns,
        problems,
    ):
        latest.add(table)
    scale = model.master_scale
    scored = (latest.time > _MIN_TIME) & np.isfinite(latest.probability)
    result, segments = _tested(latest, outcomes, scored, scale, attribute, rho, model)
    auc, shares = development_figures(model)
    report = BacktestReport(
        **result.model_dump(),
        model=name,
        version=model.version,
        since=where.since,
        until=where.until,
        master_scale=scale.name,
        scored=latest.scored,
        development=None if auc is None and shares is None else "report",
        grade_mismatches=latest.mismatches,
        segments=segments,
        vintages=_vintages(latest, outcomes, scored) if with_vintages else None,
        problems=problems,
    )
    if other is not None or previous is not None:
        report = report.model_copy(
            update={
                "migration": _migration(where, model, other, previous, max_rows, problems),
            }
        )
    return report


def _tested(
    latest: _Latest,
    outcomes: OutcomeArrays,
    scored: np.ndarray,
    scale: MasterScale,
    attribute: str | None,
    rho: float | None,
    model: LoadedModel,
) -> tuple[Backtest, Segments | None]:
    """The backtest (and segments) of the loans scored, fed in chunks."""
    auc, shares = development_figures(model)
    names = list(scale.names)
    whole = BacktestAccumulator(names)
    parts = (
        None
        if attribute is None
        else SegmentAccumulator(names, attribute=attribute, max_segments=50)
    )
    positions = np.flatnonzero(scored)
    defaulted = outcomes.defaulted
    for start in range(0, positions.size, CHUNK):
        at = positions[start : start + CHUNK]
        pd_ = np.clip(latest.probability[at], PD_EPSILON, 1.0 - PD_EPSILON)
        grade = scale.grade_index(latest.probability[at])
        amount = None if latest.amounts is None else np.nan_to_num(latest.amounts[at], nan=0.0)
        whole.add(pd_, defaulted[at], grade, amount=amount)
        if parts is not None and latest.values is not None:
            parts.add(pd_, defaulted[at], grade, latest.values[at])
    options: dict[str, Any] = {
        "rho": rho,
        "development_auc": auc,
        "development_grade_shares": shares,
    }
    segments = None if parts is None else parts.result(**options)
    return whole.result(**options), segments


class _Graded:
    """Each loan id's latest grade, from a window of one version's log: past ``max_rows``
    ids, a uniform sample of them (those whose hash has its ``shift`` low bits 0)."""

    def __init__(self, scale: MasterScale, max_rows: int) -> None:
        self.scale = scale
        self.max_rows = max_rows
        self.shift = 0
        self.parts: list[pd.DataFrame] = []

    def add(self, table: pa.Table) -> None:
        rows = table.filter(pc.is_valid(table["loan_id"]))
        if rows.num_rows == 0:
            return
        frame = pd.DataFrame(
            {
                "loan_id": rows["loan_id"].to_numpy(zero_copy_only=False),
                "time": rows["time"].cast(pa.int64()).to_numpy(zero_copy_only=False),
                "grade": self.scale.grade_index(rows["probability"].to_numpy(zero_copy_only=False)),
            }
        )
        frame["hash"] = pd.util.hash_array(frame["loan_id"].to_numpy(dtype=object))
        self.parts.append(self._under(frame, self.shift))
        while sum(len(p) for p in self.parts) > self.max_rows and self.shift < 60:
            self.shift += 1
            self.parts = [self._latest(pd.concat(self.parts)).pipe(self._under, self.shift)]

    @staticmethod
    def _under(frame: pd.DataFrame, shift: int) -> pd.DataFrame:
        if shift == 0:
            return frame
        mask = np.uint64((1 << shift) - 1)
        kept: pd.DataFrame = frame[(frame["hash"].to_numpy(dtype=np.uint64) & mask) == 0]
        return kept

    @staticmethod
    def _latest(frame: pd.DataFrame) -> pd.DataFrame:
        ordered: pd.DataFrame = frame.sort_values("time", kind="stable")
        return ordered.drop_duplicates("loan_id", keep="last")

    def grades(self, shift: int) -> pd.Series:
        """Loan id -> grade index, at a sampling ``shift`` of at least this one's."""
        if not self.parts:
            return pd.Series(dtype=np.int64)
        frame = self._under(self._latest(pd.concat(self.parts)), shift)
        found: pd.Series = frame.set_index("loan_id")["grade"]
        return found


def _migration(
    where: Window,
    model: LoadedModel,
    other: LoadedModel | None,
    previous: tuple[datetime, datetime] | None,
    max_rows: int,
    problems: list[Problem],
) -> MigrationReport:
    """From ``previous``'s grades (or ``model``'s) to this window's (or ``other``'s)."""
    scale = model.master_scale
    sides = []
    if other is not None:
        plan = [
            (model.version, where.since, where.until),
            (other.version, where.since, where.until),
        ]
        kind = "versions"
        labels = (f"version {model.version}", f"version {other.version}")
    else:
        assert previous is not None
        plan = [(model.version, *previous), (model.version, where.since, where.until)]
        kind = "windows"
        labels = (
            f"{previous[0].isoformat()} to {previous[1].isoformat()}",
            f"{_text(where.since)} to {_text(where.until)}",
        )
    for version, since, until in plan:
        graded = _Graded(scale, max_rows)
        for table in _window_files(
            where.storage,
            where.log_directory,
            model.name,
            since,
            until,
            version,
            ["time", "loan_id", "version", "probability"],
            problems,
        ):
            graded.add(table)
        sides.append(graded)
    shift = max(side.shift for side in sides)
    initial, final = (side.grades(shift) for side in sides)
    both = initial.index.intersection(final.index)
    counts = migration_counts(
        initial.loc[both].to_numpy(dtype=np.int64),
        final.loc[both].to_numpy(dtype=np.int64),
        len(scale.names),
    )
    found = migration_from_counts(counts, scale.names)
    return MigrationReport(
        **found.model_dump(),
        kind=kind,
        initial=labels[0],
        final=labels[1],
        sampled=shift > 0,
    )


def _text(moment: datetime | None) -> str:
    return "the start" if moment is None else moment.isoformat()


def previous_window(
    against: str | int | None, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime] | None:
    """The earlier window of a migration between windows, from its two ends (both or
    neither; not with ``against``): :class:`InvalidInput` naming the field otherwise."""
    if since is None and until is None:
        return None
    if against is not None:
        raise InvalidInput(
            "against: one migration at a time, between two versions (against) or two windows "
            "(previous_since, previous_until)",
            details={"field": "against"},
        )
    if since is None or until is None:
        missing = "previous_since" if since is None else "previous_until"
        raise InvalidInput(
            f"{missing}: a migration between windows needs both ends of the earlier one",
            details={"field": missing},
        )
    start = since if since.tzinfo else since.replace(tzinfo=UTC)
    end = until if until.tzinfo else until.replace(tzinfo=UTC)
    if start >= end:
        raise InvalidInput(
            "previous_since must be before previous_until", details={"field": "previous_since"}
        )
    return start, end
