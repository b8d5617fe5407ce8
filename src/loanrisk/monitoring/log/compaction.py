"""Compaction of the prediction log: a past day's files of a model merged into one."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from loanrisk.monitoring.log._files import day_files, read_file
from loanrisk.storage.base import Storage


def compact_log(
    storage: Storage, directory: str, *, model: str, before: date | None = None
) -> dict[str, int]:
    """Merge each past day's files of ``model`` into one (days before ``before``, default
    today in UTC: writers only ever add to the current day). The merged file is written
    first and only the files it holds are removed, so a reader sees every row at every
    moment (at worst some twice, for an instant) and a late file written meanwhile stays.
    Returns how many days were compacted and files removed."""
    cutoff = before or datetime.now(UTC).date()
    compacted = removed = 0
    for day, folder, names in day_files(storage, directory, model):
        if day >= cutoff or len(names) < 2:
            continue
        tables = [read_file(storage, storage.join(folder, name)) for name in names]
        merged = pa.concat_tables(tables).sort_by("time")
        buffer = io.BytesIO()
        pq.write_table(merged, buffer, compression="zstd")
        name = f"compacted-{secrets.token_hex(6)}.parquet"
        storage.write_bytes(storage.join(folder, name), buffer.getvalue())
        for old in names:
            storage.delete(storage.join(folder, old))
        compacted += 1
        removed += len(names)
    return {"days": compacted, "files_removed": removed}
