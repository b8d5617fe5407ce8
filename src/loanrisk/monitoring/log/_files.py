"""The files of a model's log: its day partitions, and one file read in the log's format."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from loanrisk.errors import NotFound
from loanrisk.monitoring.log import COLUMNS
from loanrisk.storage.base import Storage


def day_files(
    storage: Storage, directory: str, model: str
) -> Iterator[tuple[date, str, list[str]]]:
    """Each day partition of ``model``'s log: its date, folder and Parquet file names."""
    root = storage.join(directory, f"model={model}")
    try:
        entries = storage.list(root)
    except NotFound:
        return
    for entry in entries:
        day = _day(entry)
        if day is not None:
            folder = storage.join(root, entry)
            yield day, folder, [n for n in storage.list(folder) if n.endswith(".parquet")]


def read_file(storage: Storage, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.read_bytes(path)), schema=COLUMNS, columns=columns)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.removeprefix("day="))
    except ValueError:
        return None
