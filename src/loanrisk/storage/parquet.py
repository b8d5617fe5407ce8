"""Reading a stored Parquet file whole, in memory that Arrow owns.

Why not ``pq.read_table(pa.BufferReader(data))`` on the ``bytes`` a storage returns: Arrow
wraps Python ``bytes`` (or a Python file object) in a buffer that holds a reference to the
Python object, and ``read_table`` decodes the file on Arrow's CPU thread pool. A pool thread
can drop the last reference to that buffer *after* ``read_table`` has returned (its task's
closure dies after the future it completed); releasing a Python object takes the GIL. When
that happens while the interpreter finalizes (a short command that reads one file and exits,
on a loaded machine), CPython 3.11 ends the thread that asks for the GIL with
``pthread_exit`` inside that C++ destructor (``noexcept``), and the process aborts:
"terminate called without an active exception", exit 134 (issue 26: ``loanrisk storage
check``; core dumps show ``PyBuffer::~PyBuffer`` -> ``PyGILState_Ensure`` -> ``take_gil``
-> ``PyThread_exit_thread`` on an ``arrow::internal::ThreadPool`` worker).

A copy in memory Arrow allocated holds no Python object, so whichever thread frees it, and
whenever, never touches the interpreter. The copy costs one ``memcpy`` of the file, small
next to decoding it. Every whole-file Parquet read of stored bytes goes through here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from loanrisk.errors import NotFound, StorageError, describe_error
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem, ProblemKind


def arrow_owned(data: bytes) -> pa.Buffer:
    """``data`` copied into a buffer Arrow allocated: no Python object behind it, so Arrow's
    threads may release it at any time, interpreter exit included."""
    buffer = pa.allocate_buffer(len(data))
    memoryview(buffer).cast("B")[:] = data
    return buffer


def parquet_table(
    data: bytes,
    *,
    schema: pa.Schema | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The Parquet file ``data`` as a table, read as ``pq.read_table`` reads it (``schema``:
    the schema to read it with; ``columns``: only those) from an :func:`arrow_owned` copy.

    Raises what ``pq.read_table`` raises for a file that is not Parquet, is truncated or
    does not fit ``schema`` (:class:`pyarrow.ArrowException`, :class:`OSError`,
    :class:`ValueError`)."""
    reader = pa.BufferReader(arrow_owned(data))
    return pq.read_table(reader, schema=schema, columns=None if columns is None else list(columns))


def read_parquet(
    storage: Storage,
    path: str,
    *,
    schema: pa.Schema | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The stored Parquet file ``path`` of ``storage``, whole (:func:`parquet_table`).
    Raises what :meth:`Storage.read_bytes` raises (:class:`~loanrisk.errors.NotFound`,
    :class:`~loanrisk.errors.PathNotAllowed`, :class:`~loanrisk.errors.StorageError`) and
    what :func:`parquet_table` raises."""
    return parquet_table(storage.read_bytes(path), schema=schema, columns=columns)


def read_parquet_or_skip(
    storage: Storage,
    path: str,
    *,
    problems: list[Problem],
    kind: ProblemKind,
    advice: str,
    schema: pa.Schema | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table | None:
    """:func:`read_parquet`, or None when the file cannot serve: gone since it was listed
    (nothing appended), or not a readable file of ``schema`` (truncated, not Parquet, another
    schema; a ``kind`` problem naming it and ending with ``advice`` is appended to
    ``problems``). One bad file never fails a listing or a report."""
    try:
        return read_parquet(storage, path, schema=schema, columns=columns)
    except NotFound:
        return None
    except (pa.ArrowException, OSError, ValueError, StorageError) as exc:
        problems.append(
            Problem(kind=kind, path=path, message=f"not readable ({describe_error(exc)}): {advice}")
        )
        return None


__all__ = ["arrow_owned", "parquet_table", "read_parquet", "read_parquet_or_skip"]
