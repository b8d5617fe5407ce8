"""Recovery of the write-ahead files of dead writers into the prediction log, once.

Run where a service starts (every worker of every replica may run it at once, beside live
writers): for each lock file of the directory, the lock is tried without waiting; only a
lock nobody holds (its owner has ended: the kernel released it) is taken, and the segments of
that writer are turned into log files while it is held, so two recoveries never take one
writer's files. Each segment becomes, per model and day, one file with a name made from the
segment's (``recovered-<writer>-<n>.parquet``), written whole before the segment is deleted:
a recovery killed half-way is redone by the next one over the same names, never adding a row
twice. A line that is not whole (the writer was killed in the middle of writing it, before it
answered) is skipped and counted; a segment that cannot be read as write-ahead lines at all
is renamed ``.bad`` and kept for inspection.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from loanrisk.errors import LoanRiskError
from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log._partitions import write_partitions
from loanrisk.monitoring.log.wal import LOCK_SUFFIX, SEGMENT_SUFFIX, decode_header
from loanrisk.storage.base import Storage

log = logging.getLogger("loanrisk.monitoring")


@dataclass
class Recovered:
    """What a recovery did: dead writers' segments turned into log files, their rows, and
    lines skipped (torn by a kill mid-write)."""

    writers: int = 0
    segments: int = 0
    rows: int = 0
    torn_lines: int = 0


#: Appends the rows of one line (given its segment's header) to columns of the log; raises
#: ValueError for a line that is not one (the log's writer provides it).
RowsOf = Callable[[bytes, Mapping[str, Sequence[str]], dict[str, list[Any]]], None]


def read_segment(path: str, rows_of: RowsOf) -> tuple[pa.Table, int]:
    """The log rows of one segment, and how many of its lines were not whole. Raises
    ValueError when its first line does not say what its lines hold (not a segment)."""
    with open(path, "rb") as stream:
        data = stream.read()
    unwritten = data.find(b"\0")  # lines hold no zero byte: the segment's unused rest
    if unwritten >= 0:
        data = data[:unwritten]
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS.names}
    lines = data.split(b"\n")
    torn = 1 if lines[-1] else 0  # a last line without its newline: killed writing it
    whole = lines[:-1]
    if not whole:  # killed before its first line was whole: it holds no row
        return pa.Table.from_pydict(columns, schema=COLUMNS), torn
    header = decode_header(whole[0])
    for line in whole[1:]:
        call: dict[str, list[Any]] = {name: [] for name in COLUMNS.names}
        try:
            rows_of(line, header, call)
        except ValueError:
            torn += 1
            continue
        for name, values in call.items():
            columns[name] += values
    return pa.Table.from_pydict(columns, schema=COLUMNS), torn


def recover(
    directory: str,
    storage: Storage,
    log_directory: str,
    rows_of: RowsOf,
    *,
    own: str | None = None,
) -> Recovered:
    """Turn the segments of every dead writer in ``directory`` into files of the log in
    ``log_directory`` of ``storage`` (each line's rows by ``rows_of``) and delete them
    (``own``: this process's writer, never touched). A storage failure leaves the writer's
    remaining segments for the next start."""
    done = Recovered()
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return done
    for name in names:
        if not name.endswith(LOCK_SUFFIX) or name == f"{own}{LOCK_SUFFIX}":
            continue
        writer = name.removesuffix(LOCK_SUFFIX)
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # recovered by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner lives (or another recovery holds it)
            _recover_writer(directory, writer, storage, log_directory, rows_of, done)
        finally:
            os.close(fd)
    if done.segments or done.torn_lines:
        log.info(
            "prediction log: recovered %d row(s) from %d write-ahead segment(s) of %d ended "
            "process(es); %d torn line(s) skipped",
            done.rows,
            done.segments,
            done.writers,
            done.torn_lines,
        )
    return done


def _named(name: str) -> Callable[[str, str], str]:
    return lambda _model, _day: name


def _recover_writer(
    directory: str,
    writer: str,
    storage: Storage,
    log_directory: str,
    rows_of: RowsOf,
    done: Recovered,
) -> None:
    """With ``writer``'s lock held: its segments into the log, in order, then its lock file."""
    prefix = writer + "."
    segments = sorted(
        n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(SEGMENT_SUFFIX)
    )
    done.writers += 1
    for segment in segments:
        path = os.path.join(directory, segment)
        number = segment.removeprefix(prefix).removesuffix(SEGMENT_SUFFIX)
        try:
            table, torn = read_segment(path, rows_of)
        except (OSError, pa.ArrowException, ValueError):
            log.exception("prediction log: write-ahead segment %s is unreadable; kept", path)
            with contextlib.suppress(OSError):
                os.replace(path, path + ".bad")
            continue
        try:
            # The same names at every try: a segment is written once, whatever happens.
            write_partitions(storage, log_directory, table, _named(f"recovered-{writer}-{number}"))
        except (LoanRiskError, OSError):
            log.exception("prediction log: recovering %s failed; retried at the next start", path)
            return  # the lock file stays: the next start takes it up again
        os.unlink(path)
        done.segments += 1
        done.rows += table.num_rows
        done.torn_lines += torn
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, writer + LOCK_SUFFIX))
