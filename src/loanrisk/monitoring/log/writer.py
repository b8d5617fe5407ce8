"""The prediction log's writer (:class:`PredictionLog`, one per process).

Scoring never waits on the log: :meth:`PredictionLog.record` appends to a bounded buffer (a
pointer to what was scored; nothing is serialised on the request path). A background thread
turns the buffer into Arrow tables ten times a second (a few milliseconds each, so requests
are never held up for long) and writes them every ``flush_seconds``
(or at ``flush_rows`` rows). A clean shutdown (:meth:`PredictionLog.close`) writes what is
buffered; a process killed with SIGKILL loses at most what arrived since the last write. When
the buffer is full, new rows are dropped and counted (``on_dropped``), never waited for; a
failed write is kept and retried at the next one (the bound still holds meanwhile).

Fields the scoring schema declares ``pii: true`` are dropped or hashed as each row is
serialised (:mod:`~loanrisk.monitoring.log.personal`), so they never reach the log in clear.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loanrisk.monitoring.log import CHAMPION, COLUMNS
from loanrisk.monitoring.log.personal import PersonalFields
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

    @property
    def rows(self) -> int:
        return len(self.results)


def _id_fields(*names: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))


#: Personal fields dropped: the default, which needs no key.
_DROP = PersonalFields()

#: One encoder for every row (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


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
    else:
        loans = item.loans
        assert not isinstance(loans, pd.DataFrame)
        records = []
        for result in item.results:
            records.append(loans[result.record])
            out["probability"].append(result.probability)
            out["label"].append(result.label)
            out["band"].append(result.band)
    encode = _ENCODER.encode
    for record in records:
        loan_id = next((record[f] for f in item.id_fields if record.get(f) is not None), None)
        out["loan_id"].append(None if loan_id is None else str(loan_id))
        if item.personal:
            record = personal.protect(record, item.personal)
        out["features"].append(encode(record))
    n = len(records)
    at = datetime.fromtimestamp(item.at, UTC)
    for name, value in (
        ("time", at),
        ("request_id", item.request_id),
        ("model", item.model),
        ("version", item.version),
        ("backend", item.backend),
        ("source", item.source),
        ("role", item.role),
    ):
        out[name] += [value] * n


#: Rows of a batch's chunk converted at a time (bounds the Python objects made for it).
SLICE_ROWS = 10_000


def _table(items: Sequence[Scored], personal: PersonalFields = _DROP) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS.names}
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


class PredictionLog:
    """A buffered writer of the prediction log (thread-safe; one per process)."""

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
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

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
        with self._lock:
            self._sequence += 1
            number = self._sequence
        name = f"{self.writer}-{number:08d}.parquet"
        return self.storage.join(self.directory, f"model={model}", f"day={day}", name)

    def record(self, item: Scored) -> None:
        """Buffer one scoring call's rows; never blocks on storage. Over the buffer's
        bound the rows are dropped and counted."""
        if item.rows == 0:
            return
        with self._lock:
            if self._closed or self._buffered + item.rows > self.max_buffered_rows:
                self.dropped += item.rows
                dropped = True
            else:
                self._items.append(item)
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
                    self._write_converted()

    def _convert(self) -> None:
        """Turn the buffered calls into an Arrow table now: the Python objects of requests
        die young (a long-lived backlog would make the collector's full passes, and one big
        conversion, stall requests), and what waits for the write is compact."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        if not items:
            return
        table = _table(items, self.personal)
        with self._lock:
            self._converted.append(table)
            self._converted_rows += table.num_rows

    def flush(self) -> int:
        """Write what is buffered now; the number of rows written."""
        with self._flushing:
            self._convert()
            return self._write_converted()

    def _write_converted(self) -> int:
        with self._lock:
            tables, self._converted = self._converted, []
        self._last_write = time.monotonic()
        if not tables:
            return 0
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
        return written

    def _write(self, table: pa.Table) -> int:
        days = pc.strftime(table["time"], format="%Y-%m-%d")
        keys = pc.binary_join_element_wise(table["model"], days, "\x00")
        for key in pc.unique(keys).to_pylist():
            model, day = key.split("\x00")
            part = table.filter(pc.equal(keys, key))
            buffer = io.BytesIO()
            pq.write_table(part, buffer, compression="zstd")
            self.storage.write_bytes(self._path(model, day), buffer.getvalue())
        return int(table.num_rows)

    def close(self) -> None:
        """Stop the background writer and write what is buffered (a clean shutdown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=max(self.flush_seconds, 1.0) + 5)
        self.flush()


def prediction_log(
    settings: Settings,
    storage: Storage,
    *,
    on_dropped: Callable[[int], None] | None = None,
    on_written: Callable[[int], None] | None = None,
) -> PredictionLog:
    """The writer the settings describe (directory, flush interval and rows, buffer bound,
    how personal fields are stored)."""
    return PredictionLog(
        storage,
        storage.resolve(settings.log_directory),
        flush_seconds=settings.log_flush_seconds,
        flush_rows=settings.log_flush_rows,
        max_buffered_rows=settings.log_max_buffered_rows,
        on_dropped=on_dropped,
        on_written=on_written,
        personal=PersonalFields.from_settings(settings),
    )
