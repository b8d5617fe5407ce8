"""The prediction log's write-ahead files: what a worker answered, on a local disk before the
answer leaves, so that a process killed before its buffer reached the log loses nothing.

Each writing process (a server worker) owns, in one directory (:func:`wal_directory`):

- ``<writer>.lock``, which it holds an exclusive ``flock`` on for its whole life (created
  locked, then renamed into place, so no one ever sees it unlocked while its owner lives): the
  kernel releases it when the process ends, however it ends;
- segments ``<writer>.<n>.wal``: one line per scoring call. A segment is a file of
  :data:`SEGMENT_BYTES` (its blocks reserved when it is made, so a full disk refuses a new
  segment instead of failing a write later) mapped into memory (``MAP_SHARED``): a line is
  appended by copying it into the mapping, a memory copy that never gives up the
  interpreter's lock (a ``write()`` call does, and the thread answering requests then waits
  for it back: ten times the copy's cost on a busy worker). The pages belong to the file:
  the operating system keeps them through a kill of the process (no fsync: not through a
  crash of the machine). The unwritten rest of a segment is zero bytes, where reading stops.
  The log's writer starts a new segment at each write of its buffer (and when one is full)
  and deletes a segment once every row in it is in the log's Parquet files; a clean shutdown
  leaves none (and removes the lock file).

A segment's first line says what its lines hold (``{"columns": [...], "results": [...]}``:
the log's :data:`~loanrisk.monitoring.log.COLUMNS` and the score fields a call carries when it
was written). Each further line is one call, as a JSON list, in one of two forms the log's
writer makes (:mod:`~loanrisk.monitoring.log.writer`) and rebuilds rows from through its own
row builder: ``["r", ...]``, a JSON call as scored (its loans with their personal fields
already dropped or hashed, and each loan's score fields; the calls of a batch of requests
scored together as one, its request id then a list of each loan's): little to serialise on
the request path; or ``["c", rows, ...]``, the log's columns made already (a frame's rows), a
column whose values are all one value written once. Times are exact (float seconds as Python
reads them back, or integer microseconds), so a line rebuilds exactly the rows the buffered
writer would have written. :mod:`~loanrisk.monitoring.log.recovery` turns the segments of
dead writers into log files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import mmap
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from loanrisk import jsontext
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage
from loanrisk.storage.fs import FsspecStorage

log = logging.getLogger("loanrisk.monitoring")

#: A segment's file name: ``<writer>.<number, 8 digits>.wal``.
SEGMENT_SUFFIX = ".wal"
#: A segment's size (a call whose line is bigger gets a segment of its own, as big as it).
SEGMENT_BYTES = 8 * 2**20
LOCK_SUFFIX = ".lock"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _plain(value: Any) -> Any:
    """A cell JSON cannot hold as it is: a time as integer microseconds (exact, unlike a
    float of seconds), anything else as its text."""
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MICROSECOND
    return str(value)


#: Encodes a line orjson cannot (:mod:`loanrisk.jsontext`): a ``"c"`` line's times, text with a
#: lone surrogate (written escaped, never refused). Built once, without the circular-reference
#: check: a line holds parsed JSON and scores, never a cycle.
_ENCODER = json.JSONEncoder(default=_plain, separators=(",", ":"), check_circular=False)


def header_line(doc: Mapping[str, Sequence[str]]) -> bytes:
    """A segment's first line: what its lines hold (names of columns and fields, in order)."""
    return (json.dumps(dict(doc)) + "\n").encode("ascii")


def decode_header(line: bytes) -> dict[str, list[str]]:
    """What a segment's first line says its lines hold; ValueError if it is not a header."""
    doc = json.loads(line)
    if not isinstance(doc, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in doc.values()
    ):
        raise ValueError("not a write-ahead segment's header")
    return doc


def encode(line: Sequence[Any]) -> bytes:
    """A line as written (UTF-8 JSON and a newline)."""
    return jsontext.dumps(line, _encode_slowly) + b"\n"


def _encode_slowly(line: Sequence[Any]) -> bytes:
    return _ENCODER.encode(line).encode("ascii")


def columns_line(
    columns: Mapping[str, Sequence[Any]], names: Sequence[str], rows: int
) -> list[Any]:
    """One call's rows (``columns``: name -> a value per row) as a ``"c"`` line of the
    columns ``names``: ``["c", rows, value | [values] ...]``, a column whose values are all
    one value written once."""
    line: list[Any] = ["c", rows]
    if rows == 1:
        line += [columns[name][0] for name in names]
        return line
    for name in names:
        values = columns[name]
        first = values[0]
        line.append([first] if values.count(first) == rows else values)
    return line


def decode_columns(
    doc: Sequence[Any], written: Sequence[str], names: Sequence[str]
) -> dict[str, list[Any]]:
    """The columns ``names`` of a ``"c"`` line (``doc``, parsed) of the columns ``written``
    (its segment's header). A column the line lacks is all null (a line of an older version
    of the log). Raises ValueError for a line that is not one."""
    if len(doc) != len(written) + 2:
        raise ValueError("not a write-ahead line of its segment's columns")
    rows = doc[1]
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise ValueError("a write-ahead line without its row count")
    packed = dict(zip(written, doc[2:], strict=True))
    out: dict[str, list[Any]] = {}
    for name in names:
        if name not in packed:
            out[name] = [None] * rows
            continue
        values = [packed[name]] if rows == 1 else packed[name]
        if not isinstance(values, list) or len(values) not in (1, rows):
            raise ValueError(f"column {name!r} does not hold {rows} values")
        out[name] = values * rows if len(values) == 1 else values
    return out


def wal_directory(settings: Settings, storage: Storage, log_directory: str) -> str | None:
    """Where this service's write-ahead files live, or None when there are none (the setting
    is off, or the storage is in memory: nothing would survive the process anyway).

    The setting ``log_wal_directory``, else ``.wal`` in a local storage's directory, else
    ``loanrisk-wal`` in the system's temporary directory; then a folder named after the
    storage and log directory, so services sharing a disk never recover each other's files."""
    if not settings.log_write_ahead or not isinstance(storage, FsspecStorage):
        return None
    if settings.log_wal_directory is not None:
        base = os.path.abspath(settings.log_wal_directory)
    elif storage.is_local:
        base = os.path.join(storage.local_path(""), ".wal")
    else:
        base = os.path.join(tempfile.gettempdir(), "loanrisk-wal")
    key = hashlib.sha256(f"{storage.url}\x00{log_directory}".encode()).hexdigest()[:16]
    return os.path.join(base, key)


def segment_name(writer: str, number: int) -> str:
    return f"{writer}.{number:08d}{SEGMENT_SUFFIX}"


class WriteAhead:
    """One process's write-ahead files in ``directory`` (see the module's docstring).

    :meth:`append` and :meth:`rotate` must not run concurrently (the log's writer calls
    both under its lock); :meth:`discard` may run beside them (it only deletes sealed
    segments). Never raises on a failed append: the rows stay in the writer's buffer, only
    not safe from a kill (counted in :attr:`failed` and logged)."""

    def __init__(self, directory: str, writer: str, header: bytes) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.writer = writer
        #: Each segment's first line (:func:`header_line`).
        self._header = header
        self.lock_path = os.path.join(directory, writer + LOCK_SUFFIX)
        fresh = self.lock_path + "-new"  # locked before anyone can see it under its name
        self._lock_fd = os.open(fresh, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(fresh, self.lock_path)
        #: The segment lines go to now (made at its first line), mapped, and where the next
        #: line goes in it.
        self._number = 1
        self._map: mmap.mmap | None = None
        self._at = 0
        self._discarded = 0
        #: Appends that failed (a full disk): those rows are only in memory.
        self.failed = 0

    def _path(self, number: int) -> str:
        return os.path.join(self.directory, segment_name(self.writer, number))

    def _start(self, size: int) -> mmap.mmap:
        """Make the current segment (``size`` bytes at least, reserved) and map it."""
        size = max(SEGMENT_BYTES, -(-size // mmap.PAGESIZE) * mmap.PAGESIZE)
        fd = os.open(self._path(self._number), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)  # ENOSPC now, never a SIGBUS on a later copy
            mapped = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        mapped[: len(self._header)] = self._header
        self._map, self._at = mapped, len(self._header)
        return mapped

    def append(self, line: bytes) -> bool:
        """Append one line to the current segment; False if the disk refused it."""
        try:
            mapped = self._map
            if mapped is not None and self._at + len(line) > len(mapped):
                self.rotate()
                mapped = None
            if mapped is None:
                mapped = self._start(len(self._header) + len(line))
            end = self._at + len(line)
            mapped[self._at : end] = line
            self._at = end
        except OSError:
            self.failed += 1
            if self.failed == 1 or self.failed % 1000 == 0:
                log.exception(
                    "prediction log: the write-ahead file could not be appended to (%d "
                    "times): those rows are kept in memory only until written",
                    self.failed,
                )
            self.rotate()  # the next line tries a new segment
            return False
        return True

    def rotate(self) -> int:
        """Seal the current segment (later lines go to the next); the number of the last
        sealed segment: once every row appended so far is in the log, :meth:`discard` it."""
        if self._map is not None:
            with contextlib.suppress(OSError):
                self._map.close()  # unmapped: its pages stay the file's, written back later
            self._map = None
            self._number += 1
        return self._number - 1

    def discard(self, upto: int) -> None:
        """Delete the sealed segments numbered up to ``upto`` (their rows are in the log)."""
        for number in range(self._discarded + 1, upto + 1):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(number))
        self._discarded = max(self._discarded, upto)

    def close(self) -> None:
        """Seal the current segment and let go of the lock. The lock file is removed when no
        segment is left (everything is in the log); else the next start recovers them."""
        self.rotate()
        left = any(
            name.startswith(self.writer + ".") and name.endswith(SEGMENT_SUFFIX)
            for name in os.listdir(self.directory)
        )
        if not left:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
        os.close(self._lock_fd)
