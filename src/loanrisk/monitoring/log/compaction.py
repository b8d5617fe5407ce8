"""Compaction of the prediction log: a past day's files of a model merged into one, and the
model's retention period enforced first (:mod:`~loanrisk.monitoring.log.retention`)."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from loanrisk.monitoring.log._files import day_files, read_file
from loanrisk.monitoring.log._lock import maintaining
from loanrisk.monitoring.log.retention import Retention, enforce_retention
from loanrisk.storage.base import Storage


class Compaction(BaseModel):
    """What a compaction did: days merged and the files they held, and the retention it
    enforced first (None: not asked)."""

    model_config = ConfigDict(frozen=True)

    days: int
    files_removed: int
    retention: Retention | None = None


def compact_log(
    storage: Storage,
    directory: str,
    *,
    model: str,
    before: date | None = None,
    retention_days: int | None = None,
) -> Compaction:
    """Merge each past day's files of ``model`` into one (days before ``before``, default
    today in UTC: writers only ever add to the current day); with ``retention_days``, first
    remove the rows older than that (:func:`.retention.enforce_retention`). The merged file
    is written first and only the files it holds are removed, so a reader sees every row at
    every moment (at worst some twice, for an instant) and a late file written meanwhile
    stays. It holds the model's log maintenance lock (an erasure waits for it, and it for
    an erasure: :class:`~loanrisk.errors.Conflict` after 30 s).
    Returns how many days were compacted and files removed, and what retention removed."""
    with maintaining(storage, directory, model) as refresh:
        retention = (
            None
            if retention_days is None
            else enforce_retention(
                storage, directory, model=model, days=retention_days, refresh=refresh
            )
        )
        compacted, removed = _merge_days(
            storage, directory, model, before or datetime.now(UTC).date(), refresh
        )
    return Compaction(days=compacted, files_removed=removed, retention=retention)


def _merge_days(
    storage: Storage, directory: str, model: str, cutoff: date, refresh: Callable[[], None]
) -> tuple[int, int]:
    """Merge the files of each day before ``cutoff``: (days merged, files removed)."""
    compacted = removed = 0
    for day, folder, names in day_files(storage, directory, model):
        if day >= cutoff or len(names) < 2:
            continue
        refresh()
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
    return compacted, removed
