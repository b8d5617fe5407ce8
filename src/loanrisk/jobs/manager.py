"""The job manager of one replica: queue, concurrency limit, heartbeats, cancellation.

Each job gets a thread that waits for one of ``max_jobs`` slots, then runs the task in a child
process (CPU work never touches the server's event loop or its GIL). The record on the shared
storage is rewritten at every state change and on every heartbeat, with the latest progress.
Jobs that must not interleave (two trainings of one model) take a storage lock when they are
submitted: the second is refused with :class:`~loanrisk.errors.Conflict` naming the first.

On start, a manager finishes in a background thread the cleanup that replicas which died never
ran (:meth:`JobManager.recover_staged`): the staged log rows of batch jobs that no longer run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loanrisk.contracts import (
    JOB_KINDS,
    ErrorDoc,
    JobParams,
    JobProgress,
    JobRecord,
    JobState,
    ScoreJob,
)
from loanrisk.errors import Cancelled, LoanRiskError, TooBusy
from loanrisk.jobs.child import run_in_process
from loanrisk.jobs.cleanup import clean_up
from loanrisk.jobs.store import ACTIVE, TERMINAL, JobListing, JobStore, now, stamp
from loanrisk.monitoring.log.staging import STAGING
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage

if TYPE_CHECKING:
    from pydantic import JsonValue

log = logging.getLogger("loanrisk.jobs")

#: Seconds a client refused for a full queue is asked to wait before it retries.
RETRY_AFTER = 10
#: The newest job records :meth:`JobManager.recover_staged` looks through for staged rows.
RECOVER_RECORDS = 10_000


@dataclass
class _Running:
    """A job this replica runs: its latest record (replaced whole, under ``guard``)."""

    record: JobRecord
    params: JobParams
    lock_scope: str | None
    cancel: threading.Event = field(default_factory=threading.Event)
    done: Future[JobRecord] = field(default_factory=Future)
    guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.record.id


class JobManager:
    """Runs this replica's jobs; answers for every replica's through the :class:`JobStore`."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        on_finish: Callable[[JobRecord], None] | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.store = JobStore(storage, settings.job_directory, stale_after=settings.job_stale_after)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._on_finish = on_finish
        self._slots = threading.Semaphore(settings.max_jobs)
        self._running: dict[str, _Running] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeats, name="job-heartbeat", daemon=True)
        self._beat.start()
        self.recovery = threading.Thread(
            target=self._recover_quietly, name="job-recovery", daemon=True
        )
        self.recovery.start()

    def recover_staged(self) -> int:
        """Finish the cleanup of batch-scoring jobs that no longer run, whose replica died
        before running it: each staging folder of the prediction log whose job (among the
        newest :data:`RECOVER_RECORDS` records) is no longer queued or running (finished,
        failed, cancelled, or lost: its heartbeat stale) is published into the log when the
        job's results file exists and removed otherwise, the rule of
        :func:`~loanrisk.jobs.cleanup.clean_up`. A folder whose job is still active, runs
        here, or has no readable record is left alone. Returns the folders cleaned."""
        log_directory = self.storage.resolve(self.settings.log_directory)
        found = self.storage.listing(self.storage.join(log_directory, STAGING))
        tokens = set(found.names)
        if not tokens:
            return 0
        cleaned = 0
        for record in self.store.listing(limit=RECOVER_RECORDS).records:
            if record.kind != "score" or record.state in ACTIVE or record.id in self._running:
                continue
            try:
                params = ScoreJob.model_validate(record.params)
            except ValidationError:
                continue
            if params.log_staging not in tokens:
                continue
            clean_up(params, self.storage, self.settings)
            tokens.discard(params.log_staging)
            cleaned += 1
            log.info("cleaned up the staged log rows of job %s (%s)", record.id, record.state)
        return cleaned

    def _recover_quietly(self) -> None:
        try:
            self.recover_staged()
        except Exception:  # a storage fault here must not take the replica's start-up down
            log.exception("cleaning up the staged log rows of jobs that no longer run")

    def submit(
        self,
        params: JobParams,
        *,
        lock_scope: str | None = None,
    ) -> tuple[JobRecord, Future[JobRecord]]:
        """Queue a job; returns its record and a future of its final record. When this
        replica already holds ``max_jobs`` running and ``max_queued_jobs`` waiting jobs, the
        job is refused with :class:`TooBusy` (429, ``Retry-After``). A refused job leaves
        nothing behind (its staged upload is removed)."""
        try:
            return self._submit(params, lock_scope)
        except BaseException:
            clean_up(params, self.storage, self.settings)
            raise

    def _submit(
        self, params: JobParams, lock_scope: str | None
    ) -> tuple[JobRecord, Future[JobRecord]]:
        with self._mutex:
            waiting = len(self._running)
        if waiting >= self.settings.max_jobs + self.settings.max_queued_jobs:
            raise TooBusy(
                f"{waiting} jobs are running or queued on this replica (at most "
                f"{self.settings.max_jobs} running and {self.settings.max_queued_jobs} queued); "
                "retry later",
                retry_after=RETRY_AFTER,
            )
        record = self.store.new(
            JOB_KINDS[type(params)], params.model_dump(mode="json"), owner=self.owner
        )
        if lock_scope is not None:
            self.store.acquire(lock_scope, record.id)
        try:
            self.store.save(record)
        except LoanRiskError:
            if lock_scope is not None:
                self.store.release(lock_scope, record.id)
            raise
        job = _Running(record, params, lock_scope)
        with self._mutex:
            self._running[record.id] = job
        threading.Thread(target=self._run, args=(job,), name=record.id, daemon=True).start()
        return record, job.done

    def get(self, job_id: str) -> JobRecord:
        job = self._running.get(job_id)
        if job is not None:
            return job.record  # one read of an immutable record
        return self.store.get(job_id)

    def list(self, *, limit: int = 100) -> list[JobRecord]:
        """The newest ``limit`` jobs of every replica, newest first; this replica's own jobs
        as it knows them (so a heartbeat that could not be stored never makes them stale)."""
        return self.listing(limit=limit).records

    def listing(self, *, limit: int = 100) -> JobListing:
        """:meth:`list`, with the stored items skipped named (:meth:`JobStore.listing`)."""
        found = self.store.listing(limit=limit)
        with self._mutex:
            own = dict(self._running)
        records = [own[r.id].record if r.id in own else r for r in found.records]
        return JobListing(records, found.problems)

    def future(self, job_id: str) -> Future[JobRecord] | None:
        """The future of a job this replica runs (None for other replicas' jobs)."""
        job = self._running.get(job_id)
        return job.done if job is not None else None

    def cancel(self, job_id: str) -> JobRecord:
        """Ask a job to stop, whichever replica runs it; returns its record as it stands."""
        record = self.store.request_cancel(job_id)
        job = self._running.get(job_id)
        if job is not None:
            job.cancel.set()
        return record

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel this replica's jobs and wait for them to record their end."""
        self._stop.set()
        with self._mutex:
            jobs = list(self._running.values())
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for job in jobs:
            try:
                job.done.result(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("job %s did not stop within %.0f s", job.id, timeout)

    def _update(self, job: _Running, **changes: Any) -> None:
        with job.guard:
            job.record = job.record.model_copy(update={**changes, "heartbeat_at": stamp(now())})
            self.store.save(job.record)

    def _progress(self, job: _Running, step: JobProgress) -> None:
        with job.guard:  # stored on the next heartbeat
            job.record = job.record.model_copy(update={"progress": step})

    def _run(self, job: _Running) -> None:
        took_slot = False
        queued = 0.0
        clock = time.monotonic()
        state: JobState = "succeeded"
        result: dict[str, JsonValue] | None = None
        error: ErrorDoc | None = None
        try:
            while not self._slots.acquire(timeout=0.2):
                if job.cancel.is_set():
                    raise Cancelled("cancelled while queued; it never ran")
            took_slot = True
            queued = time.monotonic() - clock
            self._update(job, state="running", started_at=stamp(now()))
            result = run_in_process(
                job.params,
                self.settings,
                on_progress=lambda step: self._progress(job, step),
                cancel=job.cancel,
            )
        except Cancelled as exc:
            state, error = "cancelled", ErrorDoc(**exc.to_dict())
        except LoanRiskError as exc:
            state, error = "failed", ErrorDoc(**exc.to_dict())
        except Exception:
            error_id = uuid.uuid4().hex
            log.exception("job %s failed unexpectedly (error id %s)", job.id, error_id)
            state, error = (
                "failed",
                ErrorDoc(
                    code="internal",
                    message=f"unexpected error; error id {error_id}",
                    details={"error_id": error_id},
                ),
            )
        finally:
            if took_slot:
                self._slots.release()
        total = time.monotonic() - clock
        timings = {"queued_s": round(queued if took_slot else total, 3), "total_s": round(total, 3)}
        self._release(job)  # before the record says it ended: a client may go on at once
        try:
            self._update(
                job,
                state=state,
                result=result,
                error=error,
                finished_at=stamp(now()),
                timings=timings,
            )
        except LoanRiskError:
            log.exception("could not record the end of job %s", job.id)
        finally:
            self._finish(job)

    def _release(self, job: _Running) -> None:
        if job.lock_scope is None:
            return
        try:
            self.store.release(job.lock_scope, job.id)
        except LoanRiskError:
            log.exception("releasing the lock of job %s", job.id)

    def _finish(self, job: _Running) -> None:
        job_id = job.id
        try:
            clean_up(job.params, self.storage, self.settings)
            self.store.clear_cancel(job_id)
        except LoanRiskError:
            log.exception("cleaning up after job %s", job_id)
        with self._mutex:
            self._running.pop(job_id, None)
        if self._on_finish is not None:
            self._on_finish(job.record)
        job.done.set_result(job.record)
        log.info("job %s %s", job_id, job.record.state)

    def _heartbeats(self) -> None:
        while not self._stop.wait(self.settings.job_heartbeat):
            with self._mutex:
                jobs = list(self._running.values())
            for job in jobs:
                try:
                    if self.store.cancel_requested(job.id):
                        job.cancel.set()
                    with job.guard:
                        if job.record.state not in TERMINAL:
                            job.record = job.record.model_copy(
                                update={"heartbeat_at": stamp(now())}
                            )
                            self.store.save(job.record)
                except LoanRiskError:
                    log.exception("heartbeat of job %s failed", job.id)
