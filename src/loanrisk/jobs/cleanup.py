"""What a job leaves behind, removed once it ended however it ended (a killed child cannot)."""

from __future__ import annotations

from loanrisk.contracts import JobParams, ProcessDataJob
from loanrisk.storage.base import Storage


def clean_up(params: JobParams, storage: Storage) -> None:
    """Remove a data job's staged upload (absent already is fine)."""
    if isinstance(params, ProcessDataJob) and params.staged:
        storage.delete(params.source)
