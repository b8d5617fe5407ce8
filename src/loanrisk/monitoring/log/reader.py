"""Reading the prediction log: windows of a model's logged loans, for reports.

A window is every row asked for (a time range, versions, columns), filtered file by file as it
is read; bounded by ``max_rows``, a uniform sample of them that keeps both sides of a shadowed
loan (:func:`read_window`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loanrisk.errors import InvalidInput
from loanrisk.monitoring.log import CHAMPION, COLUMNS
from loanrisk.monitoring.log._files import day_files, read_file_or_skip
from loanrisk.schema import header_name
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem


@dataclass(frozen=True)
class LogWindow:
    """A window of the log as a report reads it: ``frame`` holds every row asked for, or a
    uniform sample of them when there were more than the bound; ``rows`` counts them all,
    ``days`` per UTC day and ``versions`` per version; ``problems`` names the files skipped
    (unreadable, or links leading out of the storage)."""

    frame: pd.DataFrame
    rows: int
    days: dict[date, int]
    versions: dict[int, int]
    problems: list[Problem] = field(default_factory=list)

    @property
    def sampled(self) -> int | None:
        """How many rows the sample holds (None: every row is there)."""
        return len(self.frame) if len(self.frame) < self.rows else None


#: The log columns that decide whether a row is in a sample: a loan as received and its
#: request, so the rows of one loan (a champion's and its shadow's) are in or out together.
SAMPLE_KEY = ("request_id", "features")
_HASH = "_hash"
_MAX_SHIFT = 60


def logged_features(texts: Iterable[str]) -> pd.DataFrame:
    """The loans of a log window's ``features`` column (JSON objects, one per row) as one
    frame, each key matched as validation matches a header (:func:`header_name`: trimmed,
    lower case). Loans scored from a file keep its header's spelling (``ID_SHOP``) and loans
    sent as JSON their own (``id_shop``); read as they are, one window holding both would
    have every attribute twice."""
    return pd.DataFrame.from_records(
        [{header_name(key): value for key, value in json.loads(text).items()} for text in texts]
    )


def read_log(
    storage: Storage,
    directory: str,
    *,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
    version: int | None = None,
    versions: Collection[int] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every logged loan of ``model`` scored in ``[since, until)`` (of ``version``, or of
    ``versions``, when given), oldest first, as one frame with the log's columns (or with
    ``columns`` and ``time``, ``version`` and ``role``). Each file is filtered as it is
    read, so memory holds only the rows and columns asked for. Unreadable files are skipped
    (:func:`read_window` names them)."""
    return read_window(
        storage,
        directory,
        model=model,
        since=since,
        until=until,
        version=version,
        versions=versions,
        columns=columns,
    ).frame


def read_window(
    storage: Storage,
    directory: str,
    *,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
    version: int | None = None,
    versions: Collection[int] | None = None,
    columns: Sequence[str] | None = None,
    max_rows: int | None = None,
) -> LogWindow:
    """:func:`read_log`, counted, and bounded by ``max_rows``: past it, the rows kept are
    those whose hash of :data:`SAMPLE_KEY` falls under a threshold, halved each time the
    rows kept pass the bound. That is a uniform sample, the same on every read of the same
    rows, holding both sides of a shadowed loan; memory holds at most ``max_rows`` rows and
    one file. A file that cannot be read is skipped and named in the window's
    ``problems``."""
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until")
    extra = SAMPLE_KEY if max_rows is not None else ()
    wanted = (
        None
        if columns is None
        else list(dict.fromkeys(["time", "version", "role", *extra, *columns]))
    )
    chosen = [version] if version is not None else versions
    gathered = _Gathered(max_rows)
    problems: list[Problem] = []
    for day, folder, names in _days_within(storage, directory, model, since, until, problems):
        for name in names:
            table = read_file_or_skip(storage, storage.join(folder, name), wanted, problems)
            if table is not None:
                gathered.add(day, table.filter(_within(table, since, until, chosen)))
    schema = COLUMNS if wanted is None else pa.schema([COLUMNS.field(c) for c in wanted])
    return gathered.window(schema, problems)


def _days_within(
    storage: Storage,
    directory: str,
    model: str,
    since: datetime | None,
    until: datetime | None,
    problems: list[Problem],
) -> Iterable[tuple[date, str, list[str]]]:
    """The day partitions of ``model``'s log that may hold rows of ``[since, until)``."""
    first = since.date() if since is not None else None
    last = (until - timedelta(microseconds=1)).date() if until is not None else None
    for day, folder, names in day_files(storage, directory, model, problems=problems):
        if (first is None or day >= first) and (last is None or day <= last):
            yield day, folder, names


class _Gathered:
    """The tables of a window as its files are read, counted (per day and per version) and,
    with ``max_rows``, sampled down to the bound as they come."""

    def __init__(self, max_rows: int | None) -> None:
        self.max_rows = max_rows
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.days: dict[date, int] = {}
        self.versions: dict[int, int] = {}
        #: Rows kept, and the sample's threshold: hashes below 2 ** (64 - shift).
        self.kept = 0
        self.shift = 0

    def add(self, day: date, table: pa.Table) -> None:
        """Count a file's rows of the window and keep them (those of the sample)."""
        self.rows += table.num_rows
        self.days[day] = self.days.get(day, 0) + table.num_rows
        for item in pc.value_counts(table["version"]).to_pylist():
            self.versions[item["values"]] = self.versions.get(item["values"], 0) + item["counts"]
        if self.max_rows is None:
            self.tables.append(table)
            return
        table = _under(table.append_column(_HASH, _sample_hash(table)), self.shift)
        self.tables.append(table)
        self.kept += table.num_rows
        self._bound(self.max_rows)

    def _bound(self, max_rows: int) -> None:
        """Halve the sample until it holds at most ``max_rows`` rows."""
        while self.kept > max_rows:
            fewer = [_under(t, self.shift + 1) for t in self.tables]
            if self.shift + 1 > _MAX_SHIFT or not any(t.num_rows for t in fewer):
                # One loan logged over and over (one hash): cut to the bound instead.
                self.tables = [pa.concat_tables(self.tables).slice(0, max_rows)]
                self.kept = max_rows
                return
            self.shift += 1
            self.tables, self.kept = fewer, sum(t.num_rows for t in fewer)

    def window(self, schema: pa.Schema, problems: list[Problem]) -> LogWindow:
        """The window read: the rows kept (the log's ``schema`` if none), oldest first."""
        table = pa.concat_tables(self.tables) if self.tables else schema.empty_table()
        if _HASH in table.column_names:
            table = table.drop_columns([_HASH])
        frame: pd.DataFrame = table.to_pandas()
        frame["role"] = frame["role"].fillna(CHAMPION)
        selected: pd.DataFrame = frame.sort_values("time", kind="stable")
        return LogWindow(
            selected.reset_index(drop=True), self.rows, self.days, self.versions, problems
        )


def known_loan_ids(
    storage: Storage,
    directory: str,
    *,
    model: str,
    among: Iterable[str],
    problems: list[Problem] | None = None,
) -> set[str]:
    """Which of the loan ids ``among`` ``model``'s log holds, read a file at a time (memory
    holds one file's ids and the answer, however long the log). Files that cannot be read
    are skipped, and appended to ``problems`` when given."""
    wanted = pa.array(list(dict.fromkeys(among)), pa.string())
    found: set[str] = set()
    skipped: list[Problem] = [] if problems is None else problems
    for _day, folder, names in day_files(storage, directory, model, problems=skipped):
        for name in names:
            table = read_file_or_skip(storage, storage.join(folder, name), ["loan_id"], skipped)
            if table is not None:
                ids = table["loan_id"]
                found.update(ids.filter(pc.is_in(ids, value_set=wanted)).to_pylist())
    return found


def _sample_hash(table: pa.Table) -> pa.Array:
    keys = pd.DataFrame({name: table[name].to_pandas() for name in SAMPLE_KEY})
    return pa.array(pd.util.hash_pandas_object(keys, index=False).to_numpy(), pa.uint64())


def _under(table: pa.Table, shift: int) -> pa.Table:
    """The rows whose hash is below 2 ** (64 - shift) (all of them at shift 0)."""
    if shift == 0:
        return table
    return table.filter(pc.less(table[_HASH], pa.scalar(2 ** (64 - shift), pa.uint64())))


def _within(
    table: pa.Table,
    since: datetime | None,
    until: datetime | None,
    versions: Collection[int] | None,
) -> pa.ChunkedArray | pa.Array:
    keep = pc.is_valid(table["time"])
    if since is not None:
        keep = pc.and_(
            keep, pc.greater_equal(table["time"], pa.scalar(since, COLUMNS.field("time").type))
        )
    if until is not None:
        keep = pc.and_(keep, pc.less(table["time"], pa.scalar(until, COLUMNS.field("time").type)))
    if versions is not None:
        keep = pc.and_(keep, pc.is_in(table["version"], pa.array(list(versions), pa.int64())))
    return keep
