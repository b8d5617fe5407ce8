"""Outcomes: what became of scored loans (defaulted or repaid), joined to the prediction log.

Layout, under a directory of the storage (setting ``outcome_directory``)::

    <directory>/<stamp>-<token>.parquet      one file per upload: loan_id, defaulted, observed_on,
                                             and optionally defaulted_at, observed_at

``defaulted`` is read as the served model's schema reads its label (:class:`OutcomeValues`):
its positive values (a default) and negative values (repaid), e.g. ``bad``/``good``, and 1/0
or true/false for any model. Storing is idempotent on the loan id: a loan's outcome is the
one of its latest upload (the same file sent twice changes nothing). Loan ids the prediction
log does not know are counted, not refused: the outcome of a loan scored elsewhere, or before
logging began, is kept for when it is needed.

Two optional columns date the outcome for vintages (docs/validation.md): ``defaulted_at``,
when a defaulted loan defaulted, and ``observed_at``, when its outcome was last known (a more
precise ``observed_on``). Both are ISO dates or date-times (UTC unless they say otherwise);
files stored before they existed read with both null.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from loanrisk.errors import InvalidInput, NotFound, TooLarge
from loanrisk.schema import invalid_from_issues
from loanrisk.schema.model import Column, label_token
from loanrisk.schema.validate import Issue
from loanrisk.storage.base import Storage
from loanrisk.storage.parquet import read_parquet_or_skip
from loanrisk.storage.problems import Listing, Problem

COLUMNS = pa.schema(
    [
        ("loan_id", pa.string()),
        ("defaulted", pa.bool_()),
        ("observed_on", pa.date32()),
        ("stored_at", pa.timestamp("us", tz="UTC")),
        ("defaulted_at", pa.timestamp("us", tz="UTC")),
        ("observed_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: The optional columns of an upload: when a loan defaulted, and when its outcome was known.
DATED = ("defaulted_at", "observed_at")
#: Outcome values of a default and of a repaid loan whatever the model's label, as
#: :func:`label_token` writes them (``1.0``, ``TRUE`` and `` Yes`` are read too).
TRUE = ("1", "true", "yes", "y", "t")
FALSE = ("0", "false", "no", "n", "f")
MAX_ID_CHARS = 128
#: Longest outcome value (a label word).
MAX_VALUE_CHARS = 100


@dataclass(frozen=True)
class OutcomeValues:
    """The values ``defaulted`` may take, and what each means: a model's label values first
    (its schema's ``positive``: defaulted; ``negative``: repaid), then :data:`TRUE` and
    :data:`FALSE`, compared as the schema compares labels (:func:`label_token`: trimmed,
    case-insensitive, ``1.0`` is ``1``). A label that declares no negative values reads any
    other value as repaid, as its training data does; else a value that is neither is
    refused. ``source`` names the model and its label, for messages."""

    defaulted: tuple[str, ...] = TRUE
    repaid: tuple[str, ...] = FALSE
    other_repaid: bool = False
    source: str | None = None

    @classmethod
    def of_label(cls, label: Column, *, source: str) -> OutcomeValues:
        """The values a schema's label column declares, then 1/0 and true/false (a label
        value takes precedence over the shared value it collides with)."""
        positive = [label_token(v) for v in label.positive_values]
        negative = [label_token(v) for v in label.negative_values or ()]
        taken = {*positive, *negative}
        return cls(
            defaulted=tuple(dict.fromkeys([*positive, *(t for t in TRUE if t not in taken)])),
            repaid=tuple(dict.fromkeys([*negative, *(t for t in FALSE if t not in taken)])),
            other_repaid=label.negative_values is None,
            source=source,
        )

    def read(self, values: pd.Series[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(defaulted, refused): two boolean arrays over ``values`` (text or JSON scalars;
        missing values are refused)."""
        codes, uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
        tokens = [label_token(u) for u in uniques]
        yes = np.array([t in self.defaulted for t in tokens] + [False], dtype=bool)
        no = np.array(
            [
                t not in self.defaulted and (t in self.repaid or (self.other_repaid and t != ""))
                for t in tokens
            ]
            + [False],
            dtype=bool,
        )
        return yes[codes], ~(yes | no)[codes]

    def describe(self) -> str:
        """What a refused value should have been, listing the values accepted."""
        repaid = "any other value" if self.other_repaid else ", ".join(self.repaid)
        where = f"not an outcome of {self.source}: " if self.source else ""
        return f"{where}must be {', '.join(self.defaulted)} (defaulted) or {repaid} (repaid)"


class Outcome(BaseModel):
    """One loan's outcome: ``defaulted`` is a value of the model's label (e.g. ``"bad"``), or
    1/0, true/false (:class:`OutcomeValues`); it is read once the model is known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loan_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    defaulted: bool | int | float | str = Field(
        description="A value of the model's label (its schema's positive or negative values, "
        "e.g. bad/good), or 1/0, true/false."
    )
    observed_on: date
    defaulted_at: str | None = Field(
        None,
        max_length=40,
        description="When a defaulted loan defaulted: an ISO 8601 date or date-time (UTC "
        "unless it says otherwise); for vintages.",
    )
    observed_at: str | None = Field(
        None,
        max_length=40,
        description="When the outcome was last known, ISO 8601 (default: observed_on); for "
        "vintages.",
    )

    @field_validator("observed_on", mode="before")
    @classmethod
    def _a_date_as_text(cls, value: object) -> object:
        """An ISO date as text (a number is no date: 0 is not read as the epoch)."""
        if not isinstance(value, str | date):
            raise ValueError("an ISO 8601 date, e.g. 2026-11-30")
        return value

    @field_validator("defaulted")
    @classmethod
    def _short(cls, value: bool | float | str) -> bool | float | str:
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"at most {MAX_VALUE_CHARS} characters")
        return value


def _problem(column: str, message: str, rows: list[int], values: list[str]) -> Issue:
    return Issue(column, "bad_outcome", message, len(rows), rows[:5], values[:5])


def parse_outcomes(
    frame: pd.DataFrame, *, max_rows: int, values: OutcomeValues | None = None
) -> pd.DataFrame:
    """Outcomes from a frame of text (``loan_id``, ``defaulted``, ``observed_on`` and the
    optional :data:`DATED` columns), with ``defaulted`` read by ``values`` (default: 1/0 and
    true/false only): every bad value refused with its row (1-based) and column, the message
    listing the values accepted. A ``defaulted_at`` on a repaid loan, or later than when the
    outcome was known, is refused naming ``defaulted_at``."""
    values = values or OutcomeValues()
    frame = frame.rename(columns={c: str(c).strip().lower() for c in frame.columns})
    missing = [c for c in ("loan_id", "defaulted", "observed_on") if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"missing required column(s): {', '.join(missing)}",
            details={"issues": [{"problem": "missing_column", "columns": missing}]},
        )
    if len(frame) == 0:
        raise InvalidInput("no outcomes: the input has a header but no rows")
    if len(frame) > max_rows:
        raise TooLarge(f"{len(frame):,} outcomes: at most {max_rows:,} at once")
    text = {
        c: frame[c].astype("string").str.strip() for c in ("loan_id", "defaulted", "observed_on")
    }
    rows = np.arange(1, len(frame) + 1)
    issues = []
    ids = text["loan_id"]
    bad_id = (ids.isna() | (ids == "") | (ids.str.len() > MAX_ID_CHARS)).to_numpy(dtype=bool)
    if bad_id.any():
        message = f"a loan id of 1 to {MAX_ID_CHARS} characters"
        found = ids[bad_id].fillna("").astype(str).tolist()
        issues.append(_problem("loan_id", message, rows[bad_id].tolist(), found))
    defaulted, bad_flag = values.read(text["defaulted"])
    if bad_flag.any():
        shown = text["defaulted"][bad_flag].fillna("").astype(str).tolist()
        issues.append(_problem("defaulted", values.describe(), rows[bad_flag].tolist(), shown))
    when = pd.to_datetime(text["observed_on"], errors="coerce", format="ISO8601")
    bad_date = when.isna().to_numpy(dtype=bool)
    if bad_date.any():
        found = text["observed_on"][bad_date].fillna("").astype(str).tolist()
        issues.append(
            _problem(
                "observed_on", "not an ISO date, e.g. 2026-11-30", rows[bad_date].tolist(), found
            )
        )
    dated = {c: _moments(frame, c, rows, issues) for c in DATED}
    _check_dates(dated, defaulted, when, rows, issues)
    if issues:
        raise invalid_from_issues(issues)
    return pd.DataFrame(
        {
            "loan_id": ids.astype(str),
            "defaulted": defaulted,
            "observed_on": when.dt.date,
            **{c: dated[c] for c in DATED},
        }
    )


def _moments(frame: pd.DataFrame, column: str, rows: np.ndarray, issues: list[Issue]) -> pd.Series:
    """An optional dated column as UTC times (all null when absent); bad values appended to
    ``issues`` naming the column."""
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    stripped = frame[column].astype("string").str.strip()
    text = stripped.mask(stripped == "")
    moments = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    bad = (moments.isna() & text.notna()).to_numpy(dtype=bool)
    if bad.any():
        found = text[bad].fillna("").astype(str).tolist()
        message = "not an ISO date or date-time, e.g. 2026-11-30 or 2026-11-30T12:00:00Z"
        issues.append(_problem(column, message, rows[bad].tolist(), found))
    parsed: pd.Series = moments.astype("datetime64[us, UTC]")
    return parsed


def _check_dates(
    dated: dict[str, pd.Series],
    defaulted: np.ndarray,
    observed_on: pd.Series,
    rows: np.ndarray,
    issues: list[Issue],
) -> None:
    """A default date only on a default, and not after the outcome was known."""
    default_at = dated["defaulted_at"]
    has = default_at.notna().to_numpy(dtype=bool)
    repaid = has & ~defaulted
    if repaid.any():
        message = "a default date on a loan that did not default (defaulted is false)"
        shown = default_at[repaid].astype(str).tolist()
        issues.append(_problem("defaulted_at", message, rows[repaid].tolist(), shown))
    seen = dated["observed_at"].fillna(
        pd.to_datetime(observed_on, utc=True) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    )
    late = (has & (default_at > seen).to_numpy(dtype=bool)) & ~repaid
    if late.any():
        message = "later than when the outcome was known (observed_at, else observed_on)"
        shown = default_at[late].astype(str).tolist()
        issues.append(_problem("defaulted_at", message, rows[late].tolist(), shown))


def read_outcome_csv(
    stream: IO[bytes], *, max_rows: int, values: OutcomeValues | None = None
) -> pd.DataFrame:
    """Outcomes from a CSV (:func:`parse_outcomes`)."""
    try:
        frame = pd.read_csv(
            stream, dtype=str, keep_default_na=False, encoding="utf-8-sig", nrows=max_rows + 1
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not a readable outcomes CSV: {str(exc).splitlines()[-1]}") from None
    return parse_outcomes(frame.replace("", None), max_rows=max_rows, values=values)


def outcomes_frame(items: list[Outcome], values: OutcomeValues | None = None) -> pd.DataFrame:
    """Outcomes from parsed JSON items, ``defaulted`` read by ``values`` (the row of an
    error is the item's position, 1-based)."""
    frame = pd.DataFrame(
        {
            "loan_id": [o.loan_id for o in items],
            "defaulted": pd.Series([o.defaulted for o in items], dtype=object),
            "observed_on": [o.observed_on.isoformat() for o in items],
            **{c: [getattr(o, c) for o in items] for c in DATED},
        }
    )
    return parse_outcomes(frame, max_rows=max(len(items), 1), values=values)


def store_outcomes(storage: Storage, directory: str, outcomes: pd.DataFrame) -> str:
    """Write one upload (its last row per loan id); the stored file's path."""
    now = datetime.now(UTC)
    latest = outcomes.drop_duplicates("loan_id", keep="last")
    for column in DATED:  # outcomes parsed without dates
        if column not in latest.columns:
            empty = pd.Series(pd.NaT, index=latest.index, dtype="datetime64[us, UTC]")
            latest = latest.assign(**{column: empty})
    table = pa.Table.from_pandas(latest.assign(stored_at=now), schema=COLUMNS, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    path = storage.join(directory, f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.parquet")
    storage.write_bytes(path, buffer.getvalue())
    return path


def _outcome_tables(
    storage: Storage, directory: str, columns: list[str] | None, skipped: list[Problem]
) -> Iterator[pa.Table]:
    """Each stored outcomes file of ``directory`` as a table of ``columns`` (all: None), one
    at a time in storing order; a file that cannot be read (truncated, not Parquet, a link
    out of the storage) is skipped and appended to ``skipped``."""
    try:
        found = storage.listing(directory)
    except NotFound:
        found = Listing([])
    skipped.extend(p.model_copy(update={"kind": "outcome_file"}) for p in found.problems)
    for name in sorted(n for n in found.names if n.endswith(".parquet")):
        table = read_parquet_or_skip(
            storage,
            storage.join(directory, name),
            problems=skipped,
            kind="outcome_file",
            advice="an outcomes file skipped; upload its outcomes again and remove it",
            schema=COLUMNS,
            columns=columns,
        )
        if table is not None:
            yield table


def read_outcomes(
    storage: Storage, directory: str, *, problems: list[Problem] | None = None
) -> pd.DataFrame:
    """Every loan's latest outcome: ``loan_id``, ``defaulted``, ``observed_on``,
    ``defaulted_at`` and ``observed_at`` (null when not given). A stored
    file that cannot be read (truncated, not Parquet, a link out of the storage) is skipped,
    and appended to ``problems`` when given."""
    skipped: list[Problem] = [] if problems is None else problems
    tables = list(_outcome_tables(storage, directory, None, skipped))
    table = pa.concat_tables(tables) if tables else COLUMNS.empty_table()
    frame: pd.DataFrame = table.to_pandas()
    latest: pd.DataFrame = frame.sort_values("stored_at", kind="stable").drop_duplicates(
        "loan_id", keep="last"
    )
    return latest.drop(columns=["stored_at"]).reset_index(drop=True)


#: Microseconds in a day (an ``observed_on`` date is known by the end of the day).
_DAY_US = 86_400_000_000


def loan_id_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash (pandas' SipHash-based ``hash_array``, UTF-8) of each loan id, non-null
    ids only. Two of ``n`` distinct ids share a hash with probability at most
    ``n * (n - 1) / 2**65`` (the birthday bound): about 1.1e-5 for 20 million ids."""
    values = ids.to_numpy(zero_copy_only=False) if len(ids) else np.array([], dtype=object)
    hashed: np.ndarray = pd.util.hash_array(values.astype(object), categorize=False)
    return hashed.astype(np.uint64, copy=False)


@dataclass(frozen=True)
class OutcomeArrays:
    """Every loan's latest outcome held compactly (25 bytes a loan): ``ids`` the sorted
    :func:`loan_id_hashes` of the loan ids, and aligned with them ``defaulted``, ``defaulted_at``
    and ``observed`` (when the outcome was known: ``observed_at``, else the last microsecond of
    ``observed_on``), both ``datetime64[us]`` naive UTC, NaT when unknown. A loan whose id
    hashes like another's (module :func:`loan_id_hashes`) is kept once, by its latest upload."""

    ids: np.ndarray
    defaulted: np.ndarray
    defaulted_at: np.ndarray
    observed: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def positions(self, hashes: np.ndarray) -> np.ndarray:
        """Where each hash is in ``ids``; -1 for a loan with no outcome."""
        # Sorted needles walk ``ids`` in order: several times faster than random probes.
        order = np.argsort(hashes)
        at = np.empty(hashes.size, dtype=np.intp)
        at[order] = np.searchsorted(self.ids, hashes[order])
        inside = at < self.ids.size
        found = np.full(hashes.size, -1, dtype=np.int64)
        hit = inside.copy()
        hit[inside] = self.ids[at[inside]] == hashes[inside]
        found[hit] = at[hit]
        return found


def read_outcome_arrays(
    storage: Storage, directory: str, *, problems: list[Problem] | None = None
) -> OutcomeArrays:
    """:func:`read_outcomes` in bounded memory: the stored files read one at a time (the
    columns needed only, as Arrow) into :class:`OutcomeArrays`; the latest upload of a loan
    wins (files in name order, which is their storing order). Unreadable files are skipped
    and appended to ``problems`` as :func:`read_outcomes` does."""
    skipped: list[Problem] = [] if problems is None else problems
    parts: list[tuple[np.ndarray, ...]] = []
    columns = ["loan_id", "defaulted", "observed_on", *DATED]
    for table in _outcome_tables(storage, directory, columns, skipped):
        parts.append(_compact(table.filter(pc.is_valid(table["loan_id"]))))
        del table
    if not parts:
        empty = np.array([], dtype="datetime64[us]")
        return OutcomeArrays(np.array([], dtype=np.uint64), np.array([], bool), empty, empty)
    ids, defaulted, defaulted_at, observed = (np.concatenate(c) for c in zip(*parts, strict=True))
    del parts
    # The last of each id in storing order: a stable sort keeps the uploads' order among equals.
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    last = np.r_[ids[1:] != ids[:-1], True] if ids.size else np.array([], dtype=bool)
    keep = order[last]
    del order
    return OutcomeArrays(ids[last], defaulted[keep], defaulted_at[keep], observed[keep])


def _compact(table: pa.Table) -> tuple[np.ndarray, ...]:
    """One file's outcomes as (id hashes, defaulted, defaulted_at, observed)."""
    day_end = (
        table["observed_on"].cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        * _DAY_US
        + _DAY_US
        - 1
    ).astype("datetime64[us]")
    observed = _timestamps(table["observed_at"])
    observed = np.where(np.isnat(observed), day_end, observed)
    return (
        loan_id_hashes(table["loan_id"]),
        table["defaulted"].fill_null(False).to_numpy(zero_copy_only=False).astype(bool),
        _timestamps(table["defaulted_at"]),
        observed,
    )


def _timestamps(column: pa.ChunkedArray) -> np.ndarray:
    """A UTC timestamp column as naive ``datetime64[us]``, NaT for null."""
    plain = column.cast(pa.int64()).fill_null(np.iinfo(np.int64).min)
    found: np.ndarray = plain.to_numpy(zero_copy_only=False).view("datetime64[us]")
    return found


class OutcomesStored(BaseModel):
    """What an upload of outcomes did: rows received, outcomes stored (one per loan id), and
    those naming loans ``model``'s log does not know."""

    model_config = ConfigDict(frozen=True)

    model: str
    received: int
    stored: int
    unknown_loans: int
    #: Log files skipped while counting the unknown loans (unreadable ones).
    problems: list[Problem] = []


def summary(
    stored: pd.DataFrame,
    known_ids: Any,
    *,
    model: str,
    problems: list[Problem] | None = None,
) -> OutcomesStored:
    """How many outcomes were stored, and how many name loans the log does not know (of
    the log files read: ``problems`` names those skipped)."""
    unique = stored["loan_id"].drop_duplicates()
    unknown = int((~unique.isin(set(known_ids))).sum())
    return OutcomesStored(
        model=model,
        received=len(stored),
        stored=len(unique),
        unknown_loans=unknown,
        problems=problems or [],
    )
