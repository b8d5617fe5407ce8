"""A batch job whose replica died never ran its cleanup: the next manager to start finishes
it (issue 26, item 6). Planted here as a dead job's record (a stale heartbeat) and its staging
folder under the log: published when its results file exists, removed when not; the folder of
a job still running elsewhere is left alone."""

from __future__ import annotations

import time
from datetime import timedelta

from loanrisk.contracts import JobRecord, ScoreJob
from loanrisk.jobs.manager import JobManager
from loanrisk.jobs.store import JobStore, now, stamp
from loanrisk.monitoring.log.staging import staging_directory
from loanrisk.settings import Settings
from loanrisk.storage import MemoryStorage

LOG = "prediction-log"
ROW_FILE = "model=loan-default/day=2026-12-01/rows.parquet"


def plant(storage: MemoryStorage, output: str, *, alive: bool) -> tuple[JobRecord, ScoreJob]:
    """A score job's record (dead: heartbeat an hour old) and one staged file of its rows."""
    params = ScoreJob(
        source="batch.csv",
        output=output,
        model_name="loan-default",
        model_directory="models",
        ref="production",
        version=1,
    )
    store = JobStore(storage, "jobs")
    beat = now() if alive else now() - timedelta(hours=1)
    record = store.new("score", params.model_dump(mode="json"), owner="gone:1").model_copy(
        update={"state": "running", "heartbeat_at": stamp(beat), "started_at": stamp(beat)}
    )
    store.save(record)
    folder = staging_directory(storage, LOG, params.log_staging)
    storage.write_bytes(storage.join(folder, ROW_FILE), b"rows of " + output.encode())
    return record, params


def start(storage: MemoryStorage) -> JobManager:
    manager = JobManager(Settings(storage="memory://"), storage)
    manager.recovery.join(timeout=30)
    return manager


def test_a_dead_job_s_staged_rows_are_published_with_results_and_removed_without() -> None:
    storage = MemoryStorage()
    _, published = plant(storage, "results/done.csv", alive=False)
    storage.write_bytes("results/done.csv", b"loan_id,probability\n")
    _, lost = plant(storage, "results/never.csv", alive=False)
    manager = start(storage)
    try:
        # published: the rows are in the log under their own name, the folder gone
        assert storage.read_bytes(f"{LOG}/{ROW_FILE}") == b"rows of results/done.csv"
        for params in (published, lost):
            assert not storage.exists(staging_directory(storage, LOG, params.log_staging))
        assert manager.recover_staged() == 0  # nothing left: a second start changes nothing
    finally:
        manager.shutdown()


def test_a_job_still_running_elsewhere_keeps_its_staged_rows() -> None:
    storage = MemoryStorage()
    _, running = plant(storage, "results/running.csv", alive=True)
    manager = start(storage)
    try:
        folder = staging_directory(storage, LOG, running.log_staging)
        assert storage.exists(storage.join(folder, ROW_FILE))
        assert not storage.exists(f"{LOG}/{ROW_FILE}")
    finally:
        manager.shutdown()


def test_a_staged_folder_without_a_readable_record_is_left_and_start_up_goes_on() -> None:
    storage = MemoryStorage()
    folder = staging_directory(storage, LOG, "0123456789abcdef")
    storage.write_bytes(storage.join(folder, ROW_FILE), b"rows")
    storage.write_bytes("jobs/job-20261201T000000-score-garbage.json", b"{not json")
    began = time.monotonic()
    manager = start(storage)
    try:
        assert storage.exists(storage.join(folder, ROW_FILE))
        assert manager.recover_staged() == 0
        assert time.monotonic() - began < 30
    finally:
        manager.shutdown()
