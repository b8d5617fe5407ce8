"""The prediction log's writer (:class:`PredictionLog`, one per process).

Scoring never waits on the log's storage: :meth:`PredictionLog.record` appends a scoring call
to a bounded buffer (a pointer to what was scored); a background thread turns the buffer into
Arrow tables ten times a second and writes them every ``flush_seconds`` (or at ``flush_rows``
rows). With a write-ahead directory (a server's workers: :mod:`~loanrisk.monitoring.log.wal`),
the call is also written, as one line (its loans with their personal fields dropped or
hashed, and their scores), to a local file before :meth:`~PredictionLog.record` returns, so
before the answer leaves: a process killed with SIGKILL loses nothing it answered (the next
start rebuilds the rows from the file through the same row builder,
:mod:`~loanrisk.monitoring.log.recovery`). Without one (a CLI run, the shadow process), a
clean shutdown (:meth:`PredictionLog.close`) writes what is buffered and a kill loses at most
what arrived since the last write. When the buffer is full, new rows are dropped and counted
(``on_dropped``), never waited for; a failed write is kept and retried at the next one (the
bound still holds meanwhile).

Fields the scoring schema declares ``pii: true`` are dropped or hashed as each row is made
(:mod:`~loanrisk.monitoring.log.personal`), so they never reach the log, nor a write-ahead
file, in clear.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loanrisk import jsontext
from loanrisk.errors import StorageError
from loanrisk.inference.results import LoanScore
from loanrisk.monitoring.log import CHAMPION, COLUMNS
from loanrisk.monitoring.log._partitions import write_partitions
from loanrisk.monitoring.log.personal import PersonalFields
from loanrisk.monitoring.log.recovery import Recovered, recover
from loanrisk.monitoring.log.wal import (
    WriteAhead,
    columns_line,
    decode_columns,
    encode,
    header_line,
    wal_directory,
)
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage

if TYPE_CHECKING:
    from loanrisk.inference import results as scores
    from loanrisk.inference.scorer import Scorer

log = logging.getLogger("loanrisk.monitoring")


@dataclass(frozen=True)
class Scored:
    """What one scoring call produced, as the front end saw it (serialised off the request
    path). ``loans`` are the raw records (or a raw frame); ``results`` their scores."""

    at: float
    request_id: str | None
    model: str
    version: int
    backend: str
    source: str
    loans: Sequence[Mapping[str, Any]] | pd.DataFrame
    results: Sequence[scores.LoanScore] | pd.DataFrame
    #: Fields (columns) holding the caller's loan id, the first present wins.
    id_fields: tuple[str, ...]
    #: Row number of the frame's first loan minus one (``results["row"]`` counts from 1).
    offset: int = 0
    role: str = CHAMPION
    #: Fields the schema declares personal: dropped or hashed as the log is written.
    personal: frozenset[str] = frozenset()
    #: Several requests scored together (a batch): each result's request id, and ``loans``
    #: holds each result's loan in the results' order. None: one request (``request_id``),
    #: whose results name their loans by index (``record``).
    request_ids: Sequence[str | None] | None = None

    @property
    def rows(self) -> int:
        return len(self.results)

    def scored_loans(self) -> Iterator[Mapping[str, Any]]:
        """Each result's loan, in the results' order (a call of JSON loans)."""
        loans = self.loans
        assert not isinstance(loans, pd.DataFrame)
        assert not isinstance(self.results, pd.DataFrame)
        if self.request_ids is not None:
            return iter(loans)
        return (loans[result.record] for result in self.results)


def _id_fields(*names: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))


#: Personal fields dropped: the default, which needs no key.
_DROP = PersonalFields()

#: Encodes a row's loan where orjson cannot (:mod:`loanrisk.jsontext`); built once
#: (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def _encode_slowly(record: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(record).encode("ascii")  # a lone surrogate is written escaped


def _loan_text(record: Mapping[str, Any]) -> str:
    """A loan as the log's ``features`` column holds it: JSON, read back as sent."""
    return jsontext.dumps(record, _encode_slowly).decode("utf-8")


def _loan_id(record: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """The loan's id: its first of ``fields`` that is not null, as text."""
    for field in fields:
        value = record.get(field)
        if value is not None:
            return str(value)
    return None


def _clean(value: Any) -> Any:
    """A cell of a raw frame as JSON can hold it (NaN and missing become null)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _append_rows(item: Scored, out: dict[str, list[Any]], personal: PersonalFields = _DROP) -> None:
    """Append the log rows of one scoring call to the columns ``out`` (its personal fields
    as ``personal`` says)."""
    if isinstance(item.results, pd.DataFrame):
        frame = item.loans
        assert isinstance(frame, pd.DataFrame)
        results = item.results
        positions = results["row"].to_numpy() - 1 - item.offset
        raw = frame.iloc[positions]
        names = [str(c) for c in raw.columns]
        records: list[Mapping[str, Any]] = [
            dict(zip(names, map(_clean, row), strict=True)) for row in raw.to_numpy(dtype=object)
        ]
        out["probability"] += results["probability"].to_numpy(dtype=np.float64).tolist()
        out["label"] += results["label"].to_numpy(dtype=bool).tolist()
        out["band"] += results["band"].astype(str).tolist()
        out["grade"] += (
            results["grade"].astype(str).tolist() if "grade" in results else [None] * len(results)
        )
        out["score"] += (
            results["score"].to_numpy(dtype=np.int64).tolist()
            if "score" in results
            else [None] * len(results)
        )
    else:
        assert not isinstance(item.results, pd.DataFrame)
        records = list(item.scored_loans())
        scores = item.results
        out["probability"] += [result.probability for result in scores]
        out["label"] += [result.label for result in scores]
        out["band"] += [result.band for result in scores]
        out["grade"] += [result.grade for result in scores]
        out["score"] += [result.score for result in scores]
    out["loan_id"] += [_loan_id(record, item.id_fields) for record in records]
    if item.personal:
        records = [personal.protect(record, item.personal) for record in records]
    out["features"] += map(_loan_text, records)
    n = len(records)
    at = datetime.fromtimestamp(item.at, UTC)
    out["request_id"] += [item.request_id] * n if item.request_ids is None else item.request_ids
    for name, value in (
        ("time", at),
        ("model", item.model),
        ("version", item.version),
        ("backend", item.backend),
        ("source", item.source),
        ("role", item.role),
    ):
        out[name] += [value] * n


#: Rows of a batch's chunk converted at a time (bounds the Python objects made for it).
SLICE_ROWS = 10_000


#: One call's log rows, made: column name -> a value per row.
Columns = dict[str, list[Any]]


def _columns(item: Scored, personal: PersonalFields = _DROP) -> Columns:
    """The log rows of one call, as :func:`_append_rows` makes them."""
    columns: Columns = {name: [] for name in COLUMNS.names}
    _append_rows(item, columns, personal)
    return columns


#: The score fields a written-ahead JSON call carries for each loan: all but its index (the
#: line renumbers them), warnings and reasons (the log holds none of them).
_CARRIED = tuple(
    f.name
    for f in dataclasses.fields(LoanScore)
    if f.name not in {"record", "warnings", "reasons", "decline_reasons"}
)
#: The first line of each of this version's write-ahead segments.
_HEADER = {"columns": list(COLUMNS.names), "results": list(_CARRIED)}


def _written_ahead(item: Scored, personal: PersonalFields) -> bytes:
    """One call as a write-ahead line (:mod:`~loanrisk.monitoring.log.wal`), its personal
    fields dropped or hashed. A JSON call is written as scored, its rows made later (one
    JSON encoding of its loans: little work on the request path); a frame, or a call whose
    loan id is a personal field, as the log's rows made now."""
    names = item.personal
    frame = isinstance(item.results, pd.DataFrame) or isinstance(item.loans, pd.DataFrame)
    if frame or (names and any(str(f).strip().lower() in names for f in item.id_fields)):
        return encode(columns_line(_columns(item, personal), COLUMNS.names, item.rows))
    assert not isinstance(item.results, pd.DataFrame)
    records = list(item.scored_loans())
    if names:
        records = [personal.protect(record, names) for record in records]
    results = [[getattr(result, f) for f in _CARRIED] for result in item.results]
    # a batch's line carries each loan's request id
    ids = item.request_id if item.request_ids is None else list(item.request_ids)
    call = [item.at, ids, item.model, item.version, item.backend, item.source]
    return encode(["r", *call, item.role, list(item.id_fields), item.offset, results, records])


def _score(index: int, fields: Sequence[str], values: Sequence[Any]) -> LoanScore:
    """A loan's score as a line carried it (a field the line lacks is null; one this
    version no longer has is left out)."""
    known: dict[str, Any] = dict.fromkeys(_CARRIED)
    known.update((f, v) for f, v in zip(fields, values, strict=True) if f in known)
    return LoanScore(record=index, warnings=[], **known)


def _rows_of(line: bytes, header: Mapping[str, Sequence[str]], out: Columns) -> None:
    """Append the log's rows of one write-ahead line (of a segment whose first line is
    ``header``) to ``out``, through the same row builder as a call buffered in memory.
    Raises ValueError for a line that is not one."""
    try:
        doc = json.loads(line)
        if doc[0] == "c":
            for name, values in decode_columns(doc, header["columns"], COLUMNS.names).items():
                out[name] += values
            return
        if doc[0] != "r" or len(doc) != 12:
            raise ValueError("not a write-ahead line")
        at, request_id, model, version, backend, source, role, ids, offset = doc[1:10]
        fields = header["results"]
        results = [_score(i, fields, values) for i, values in enumerate(doc[10])]
        batch = isinstance(request_id, list)  # a batch's: each loan's request id
        item = Scored(
            at,
            None if batch else request_id,
            model,
            version,
            backend,
            source,
            doc[11],
            results,
            tuple(ids),
            offset,
            role,
            request_ids=request_id if batch else None,
        )
        _append_rows(item, out)  # personal fields were dropped or hashed before it was written
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a write-ahead line ({exc})") from exc


def recover_written_ahead(
    directory: str, storage: Storage, log_directory: str, *, own: str | None = None
) -> Recovered:
    """:func:`~loanrisk.monitoring.log.recovery.recover` with this writer's lines."""
    return recover(directory, storage, log_directory, _rows_of, own=own)


def _table(items: Sequence[Scored], personal: PersonalFields = _DROP) -> pa.Table:
    columns: Columns = {name: [] for name in COLUMNS.names}
    for item in items:
        _append_rows(item, columns, personal)
    return pa.Table.from_pydict(columns, schema=COLUMNS)


def _slices(item: Scored) -> list[Scored]:
    """A chunk's call as calls of at most :data:`SLICE_ROWS` results each."""
    results = item.results
    if not isinstance(results, pd.DataFrame) or len(results) <= SLICE_ROWS:
        return [item]
    return [
        dataclasses.replace(item, results=results.iloc[start : start + SLICE_ROWS])
        for start in range(0, len(results), SLICE_ROWS)
    ]


def _write_ahead(directory: str, writer: str) -> WriteAhead:
    try:
        return WriteAhead(directory, writer, header_line(_HEADER))
    except OSError as exc:  # refuse to serve rather than lose what is answered
        raise StorageError(
            f"the prediction log's write-ahead directory {directory} cannot be written "
            f"({exc.strerror or exc}): set LOANRISK_LOG_WAL_DIRECTORY to a writable local "
            "directory (or LOANRISK_LOG_WRITE_AHEAD=false)"
        ) from exc


class PredictionLog:
    """A buffered writer of the prediction log (thread-safe; one per process). With
    ``write_ahead`` (a local directory), each call's rows go to a write-ahead file before
    :meth:`record` returns, and the files of ended processes there are recovered into the
    log (in a thread of their own, as the writer starts: :attr:`recovered`)."""

    def __init__(
        self,
        storage: Storage,
        directory: str,
        *,
        flush_seconds: float = 5.0,
        flush_rows: int = 10_000,
        max_buffered_rows: int = 200_000,
        on_dropped: Callable[[int], None] | None = None,
        on_written: Callable[[int], None] | None = None,
        personal: PersonalFields | None = None,
        write_ahead: str | None = None,
    ) -> None:
        self.storage = storage
        #: How personal fields are stored (default: dropped).
        self.personal = personal or PersonalFields()
        self.directory = directory
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_buffered_rows = max_buffered_rows
        self._on_dropped = on_dropped or (lambda n: None)
        self._on_written = on_written or (lambda n: None)
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._items: deque[Scored] = deque()
        #: Rows held (buffered calls and converted tables) until written: the bound's count.
        self._buffered = 0
        self._converted: list[pa.Table] = []
        self._converted_rows = 0
        self._last_write = time.monotonic()
        #: Buffered calls are converted this often (and written every flush_seconds): each
        #: conversion holds the interpreter for a few milliseconds at most.
        self.convert_seconds = min(0.1, flush_seconds)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._flushing = threading.Lock()
        self._sequence = 0
        #: The file name of a write that failed part-way, reused by its retry (see _write).
        self._retry_name: str | None = None
        self.dropped = 0
        #: This process's write-ahead files (None: rows are only in memory until written).
        self.wal = _write_ahead(write_ahead, self.writer) if write_ahead is not None else None
        #: What the recovery of ended processes' write-ahead files did, once it is done.
        self.recovered: Recovered | None = None
        self._recovery: threading.Thread | None = None
        if write_ahead is not None:
            self._recovery = threading.Thread(
                target=self._recover, name="prediction-log-recovery", daemon=True
            )
            self._recovery.start()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _recover(self) -> None:
        assert self.wal is not None
        try:
            self.recovered = recover_written_ahead(
                self.wal.directory, self.storage, self.directory, own=self.writer
            )
        except Exception:  # a start must never fail on it: the next start tries again
            log.exception("prediction log: recovering write-ahead files failed")
            self.recovered = Recovered()
        if self.recovered.rows:
            self._on_written(self.recovered.rows)

    def wait_recovered(self, timeout: float | None = None) -> Recovered | None:
        """Wait for the start's recovery (None: no write-ahead files, or still running)."""
        if self._recovery is not None:
            self._recovery.join(timeout)
        return self.recovered

    # -- the request path ----------------------------------------------------------------

    def scored_records(
        self,
        scorer: Scorer,
        records: Sequence[Mapping[str, Any]],
        result: scores.Scored,
        *,
        source: str,
        request_id: str | None = None,
        role: str = CHAMPION,
    ) -> None:
        """Log the loans of :meth:`Scorer.score_records`; the loan id is the record's
        ``id`` field, or the schema's id column."""
        self.record(
            Scored(
                time.time(),
                request_id,
                scorer.model.name,
                scorer.version,
                scorer.backend.name,
                source,
                records,
                result.results,
                _id_fields(scorer.schema.id_name, "id"),
                role=role,
                personal=scorer.schema.personal,
            )
        )

    def scored_loans(
        self,
        scorer: Scorer,
        loans: Sequence[Mapping[str, Any]],
        results: Sequence[scores.LoanScore],
        *,
        source: str,
        request_ids: Sequence[str | None],
        role: str = CHAMPION,
    ) -> None:
        """Log the loans several requests had ``scorer`` score together (a batch): each
        result's loan and request id, in the results' order, as one item."""
        self.record(
            Scored(
                time.time(),
                None,
                scorer.model.name,
                scorer.version,
                scorer.backend.name,
                source,
                loans,
                results,
                _id_fields(scorer.schema.id_name, "id"),
                role=role,
                personal=scorer.schema.personal,
                request_ids=request_ids,
            )
        )

    def chunk_recorder(
        self,
        scorer: Scorer,
        *,
        source: str,
        request_id: str | None = None,
        id_column: str | None = None,
        role: str = CHAMPION,
    ) -> Callable[[int, pd.DataFrame, pd.DataFrame], None]:
        """An ``on_scored`` callback for :meth:`Scorer.score_csv` / ``score_parquet``: logs
        each chunk's loans (the loan id from ``id_column``, the schema's id column, or an
        ``id`` column, as JSON loans name theirs)."""
        id_fields = _id_fields(id_column, scorer.schema.id_name, "id")
        personal = scorer.schema.personal

        def on_scored(offset: int, chunk: pd.DataFrame, results: pd.DataFrame) -> None:
            self.write_now(
                Scored(
                    time.time(),
                    request_id,
                    scorer.model.name,
                    scorer.version,
                    scorer.backend.name,
                    source,
                    chunk,
                    results,
                    id_fields,
                    offset,
                    role,
                    personal,
                )
            )

        return on_scored

    def write_now(self, item: Scored) -> None:
        """Write a batch's chunk as one file, in the caller's thread (a batch job, the CLI, or
        a CSV body scored off the event loop): nothing of it waits in memory, and nothing is
        dropped unless the storage fails (then counted, and the scoring goes on). It is
        converted and written :data:`SLICE_ROWS` rows at a time (a row group
        each), so a 100,000-row chunk never exists as Python objects or as one table."""
        if item.rows == 0:
            return
        day = datetime.fromtimestamp(item.at, UTC).strftime("%Y-%m-%d")
        try:
            with self.storage.open_write(self._path(item.model, day)) as out:
                writer = pq.ParquetWriter(out, COLUMNS, compression="zstd")
                for part in _slices(item):
                    writer.write_table(_table([part], self.personal))
                writer.close()
        except Exception:  # the log must never fail the scoring it records
            log.exception("prediction log: a batch chunk could not be written; counted dropped")
            with self._lock:
                self.dropped += item.rows
            self._on_dropped(item.rows)
            return
        self._on_written(item.rows)

    def _path(self, model: str, day: str) -> str:
        """A new file's path (its number taken under the lock: batches write concurrently)."""
        name = self._name(model, day) + ".parquet"
        return self.storage.join(self.directory, f"model={model}", f"day={day}", name)

    def _name(self, _model: str = "", _day: str = "") -> str:
        with self._lock:
            self._sequence += 1
            number = self._sequence
        return f"{self.writer}-{number:08d}"

    def record(self, item: Scored) -> None:
        """Buffer one scoring call's rows; never blocks on storage. With write-ahead files,
        the rows are in this process's file when it returns (a plain append: the caller
        answers after it). Over the buffer's bound the rows are dropped and counted (and not
        written ahead)."""
        if item.rows == 0:
            return
        line: bytes | None = None
        if self.wal is not None:
            try:
                line = _written_ahead(item, self.personal)
            except Exception:  # the log must never fail the scoring it records
                log.exception("prediction log: a call's rows could not be written ahead")
        with self._lock:
            if self._closed or self._buffered + item.rows > self.max_buffered_rows:
                self.dropped += item.rows
                dropped = True
            else:
                if line is not None:
                    assert self.wal is not None
                    self.wal.append(line)  # under the lock: a rotation sees it on one side
                self._items.append(item)  # converted as scored: cheaper than the line
                self._buffered += item.rows
                dropped = False
            wake = self._buffered >= self.flush_rows
        if dropped:
            self._on_dropped(item.rows)
        elif wake:
            self._wake.set()

    # -- the background writer -------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.convert_seconds)
            self._wake.clear()
            if self._closed:
                break
            with self._flushing:
                self._convert()
                due = time.monotonic() - self._last_write >= self.flush_seconds
                if due or self._converted_rows >= self.flush_rows:
                    self._write_converted(self._convert(seal=True))

    def _convert(self, *, seal: bool = False) -> int:
        """Turn the buffered calls into an Arrow table now: the Python objects of requests
        die young (a long-lived backlog would make the collector's full passes, and one big
        conversion, stall requests), and what waits for the write is compact. With ``seal``,
        the write-ahead segment is sealed at the same instant: every row of the sealed
        segments is then converted (or was before); the last sealed segment's number (0:
        none)."""
        sealed = 0
        with self._lock:
            items = list(self._items)
            self._items.clear()
            if seal and self.wal is not None:
                sealed = self.wal.rotate()
        if not items:
            return sealed
        table = _table(items, self.personal)
        with self._lock:
            self._converted.append(table)
            self._converted_rows += table.num_rows
        return sealed

    def flush(self) -> int:
        """Write what is buffered now; the number of rows written."""
        with self._flushing:
            return self._write_converted(self._convert(seal=True))

    def _write_converted(self, sealed: int = 0) -> int:
        """Write every converted table; once written, the write-ahead segments up to
        ``sealed`` are deleted (each of their rows was in these tables, or written before).
        After a failure, the tables and the segments are kept for the next write."""
        with self._lock:
            tables, self._converted = self._converted, []
        self._last_write = time.monotonic()
        written = 0
        if tables:
            try:
                written = self._write(pa.concat_tables(tables))
            except Exception:
                log.exception("prediction log: a write failed; retrying at the next flush")
                with self._lock:
                    self._converted = tables + self._converted
                return 0
            with self._lock:
                self._converted_rows -= written
                self._buffered -= written
            self._on_written(written)
        if sealed and self.wal is not None:
            self.wal.discard(sealed)
        return written

    def _write(self, table: pa.Table) -> int:
        """Write ``table`` as one file per model and day, every file of one write under one
        name. A write that fails part-way (its first day written, its second refused) keeps
        its name: the retry, whose table holds the same rows and any converted since,
        replaces the files already written instead of adding a second copy of their rows."""
        name = self._retry_name or self._name()
        self._retry_name = name
        written = write_partitions(self.storage, self.directory, table, lambda _m, _d: name)
        self._retry_name = None
        return written

    def close(self) -> None:
        """Stop the background writer and write what is buffered (a clean shutdown: no
        write-ahead segment is left)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=max(self.flush_seconds, 1.0) + 5)
        self.flush()
        if self.wal is not None:
            self._close_wal()

    def _close_wal(self) -> None:
        """Let go of the write-ahead files (after the last write), once the start's recovery
        has ended (a recovery cut short is redone, without duplicates, at the next start)."""
        assert self.wal is not None
        if self._recovery is not None:
            self._recovery.join(timeout=30)
        self.wal.close()


def prediction_log(
    settings: Settings,
    storage: Storage,
    *,
    on_dropped: Callable[[int], None] | None = None,
    on_written: Callable[[int], None] | None = None,
    write_ahead: bool = False,
    directory: str | None = None,
) -> PredictionLog:
    """The writer the settings describe (directory, flush interval and rows, buffer bound,
    how personal fields are stored). With ``write_ahead`` (a server's worker: what it answers
    is acknowledged), rows are written ahead to the local directory the settings name
    (:func:`~loanrisk.monitoring.log.wal.wal_directory`; none when the setting is off or the
    storage is in memory), and the files ended processes left there are recovered.
    ``directory``: a storage folder to write to instead of the log (a batch job stages its
    rows there until its results are published)."""
    log_directory = storage.resolve(settings.log_directory)
    wal = wal_directory(settings, storage, log_directory) if write_ahead else None
    return PredictionLog(
        storage,
        directory or log_directory,
        flush_seconds=settings.log_flush_seconds,
        flush_rows=settings.log_flush_rows,
        max_buffered_rows=settings.log_max_buffered_rows,
        on_dropped=on_dropped,
        on_written=on_written,
        personal=PersonalFields.from_settings(settings),
        write_ahead=wal,
    )
