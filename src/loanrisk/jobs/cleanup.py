"""What a job leaves behind, removed once it ended however it ended (a killed child cannot)."""

from __future__ import annotations

from loanrisk.contracts import JobParams, ProcessDataJob, ScoreJob
from loanrisk.monitoring.log.staging import discard_staged, publish_staged
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage


def clean_up(params: JobParams, storage: Storage, settings: Settings | None = None) -> None:
    """Remove a data job's staged upload (absent already is fine). For a batch-scoring job
    (given the ``settings``): when its results file was published, its staged log rows are
    moved into the prediction log (what a child killed between the two left); otherwise they
    are removed, never counted."""
    if isinstance(params, ProcessDataJob) and params.staged:
        storage.delete(params.source)
    if isinstance(params, ScoreJob) and settings is not None:
        log_directory = storage.resolve(settings.log_directory)
        if storage.exists(params.output):
            publish_staged(storage, log_directory, params.log_staging)
        else:
            discard_staged(storage, log_directory, params.log_staging)
