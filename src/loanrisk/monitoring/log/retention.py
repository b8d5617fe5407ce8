"""Retention of the prediction log: rows older than a model's retention period are removed.

Regulation B (12 CFR 1002.12(b)) has a lender keep the records of a credit application for 25
months after notifying the applicant of the action taken; data-protection law (GDPR
Art. 5(1)(e)) asks that personal data be kept no longer than needed. The period is a setting
(``log_retention_days``, 762 days: 25 months at their longest, and a per-model override), and
the daily compaction job enforces it (:func:`enforce_retention`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log._files import day_files, read_file
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

log = logging.getLogger("loanrisk.monitoring")


class Retention(BaseModel):
    """What one enforcement of the retention period did: rows older than ``cutoff`` removed,
    in files deleted whole and files rewritten without them (a file that straddles the
    cutoff); ``problems`` names the files that could not be read (left as they are)."""

    model_config = ConfigDict(frozen=True)

    model: str
    days: int
    cutoff: datetime
    files_deleted: int = 0
    files_rewritten: int = 0
    rows_removed: int = 0
    problems: list[Problem] = []


def enforce_retention(
    storage: Storage,
    directory: str,
    *,
    model: str,
    days: int,
    now: datetime | None = None,
    refresh: Callable[[], None] = lambda: None,
) -> Retention:
    """Remove ``model``'s log rows scored more than ``days`` days before ``now`` (default: the
    current time): a file whose every row is older is deleted; a file holding older and newer
    rows is rewritten without the older ones, atomically (the storage's atomic write: a
    reader, or a process killed meanwhile, sees the old file or the new one, never a part).
    Only the day partitions up to the cutoff's day are read. A file that cannot be read is
    named in ``problems`` and left alone. Run it under the log's maintenance lock (as
    :func:`~loanrisk.monitoring.log.compaction.compact_log` does; ``refresh`` keeps it)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    limit = pa.scalar(cutoff, COLUMNS.field("time").type)
    deleted = rewritten = removed = 0
    problems: list[Problem] = []
    for day, folder, names in day_files(storage, directory, model):
        if day > cutoff.date():
            continue
        for name in names:
            refresh()
            path = storage.join(folder, name)
            try:
                times = read_file(storage, path, ["time"])["time"]
            except Exception as exc:  # one bad file never stops the rest (reported)
                log.warning("retention: %s could not be read: %s", path, exc)
                message = f"unreadable ({type(exc).__name__}); left as it is: remove it by hand"
                problems.append(Problem(kind="log_file", path=path, message=message))
                continue
            old = int(pc.sum(pc.fill_null(pc.less(times, limit), True)).as_py() or 0)
            if old == 0:
                continue
            if old == len(times):
                storage.delete(path)
                deleted += 1
            else:
                table = read_file(storage, path)
                keep = pc.fill_null(pc.greater_equal(table["time"], limit), False)
                buffer = io.BytesIO()
                pq.write_table(table.filter(keep), buffer, compression="zstd")
                storage.write_bytes(path, buffer.getvalue())
                rewritten += 1
            removed += old
    return Retention(
        model=model,
        days=days,
        cutoff=cutoff,
        files_deleted=deleted,
        files_rewritten=rewritten,
        rows_removed=removed,
        problems=problems,
    )
