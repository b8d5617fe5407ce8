"""The files of a model's log: its day partitions, and one file read in the log's format."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import pyarrow as pa

from loanrisk.errors import NotFound
from loanrisk.monitoring.log import COLUMNS
from loanrisk.storage.base import Storage
from loanrisk.storage.parquet import read_parquet, read_parquet_or_skip
from loanrisk.storage.problems import Problem


def day_files(
    storage: Storage, directory: str, model: str, *, problems: list[Problem] | None = None
) -> Iterator[tuple[date, str, list[str]]]:
    """Each day partition of ``model``'s log: its date, folder and Parquet file names.
    Entries left out of a listing (a symlink leading out of the storage) are appended to
    ``problems``, when given."""
    root = storage.join(directory, f"model={model}")
    try:
        found = storage.listing(root)
    except NotFound:
        return
    skipped = list(found.problems)
    for entry in found.names:
        day = _day(entry)
        if day is not None:
            folder = storage.join(root, entry)
            files = storage.listing(folder)
            skipped.extend(files.problems)
            yield day, folder, [n for n in files.names if n.endswith(".parquet")]
    if problems is not None:
        problems.extend(p.model_copy(update={"kind": "log_file"}) for p in skipped)


def read_file_or_skip(
    storage: Storage, path: str, columns: Sequence[str] | None, problems: list[Problem]
) -> pa.Table | None:
    """:func:`read_file`, or None with a problem appended when the file is not a readable
    log file (truncated, not Parquet, another schema): one bad file never fails a report."""
    return read_parquet_or_skip(
        storage,
        path,
        problems=problems,
        kind="log_file",
        advice="a prediction-log file skipped; move it out of the log to keep its rows for "
        "inspection",
        schema=COLUMNS,
        columns=columns,
    )


def read_file(storage: Storage, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The log file ``path`` in the log's format (``columns``: only those), read from memory
    Arrow owns (:mod:`loanrisk.storage.parquet` says why)."""
    return read_parquet(storage, path, schema=COLUMNS, columns=columns)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.removeprefix("day="))
    except ValueError:
        return None
