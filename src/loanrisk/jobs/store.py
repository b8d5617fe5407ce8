"""Job records on the shared storage, so that every replica answers for every job.

A record is one JSON file, ``<directory>/<id>.json``, rewritten whole (atomically) by the
replica running the job: at each state change and on every heartbeat. A queued or running job
whose heartbeat is older than ``stale_after`` seconds belongs to a replica that died (or can no
longer write to the storage): readers report it as failed, so no job stays "running" forever.
Reading never writes: the record on the storage stays the running replica's own. A cancel
request from any replica is a marker file the running replica notices on its next heartbeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from pydantic import ValidationError

from loanrisk.contracts import ACTIVE, TERMINAL, ErrorDoc, JobKind, JobRecord
from loanrisk.errors import Conflict, InvalidInput, NotFound, StorageError
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

__all__ = ["ACTIVE", "TERMINAL", "JobListing", "JobStore", "new_job_id", "now", "stamp"]
KINDS: tuple[str, ...] = get_args(JobKind)
_log = logging.getLogger("loanrisk.jobs")


@dataclass(frozen=True)
class JobListing:
    """The newest job records, and the stored items skipped while listing them."""

    records: list[JobRecord]
    problems: list[Problem]


class _CorruptRecord(StorageError):
    """A job record that does not parse: one bad file, not a storage outage."""


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def new_job_id(kind: str) -> str:
    return f"job-{now():%Y%m%dT%H%M%SZ}-{kind.replace('_', '-')}-{secrets.token_hex(4)}"


class JobStore:
    """Job records under ``directory`` of ``storage``."""

    def __init__(self, storage: Storage, directory: str = "jobs", *, stale_after: float = 30.0):
        self.storage = storage
        self.directory = directory
        self.stale_after = stale_after

    def _path(self, job_id: str, suffix: str = ".json") -> str:
        if not job_id.startswith("job-") or "/" in job_id or ".." in job_id:
            raise InvalidInput(f"invalid job id {job_id!r}")
        return self.storage.join(self.directory, job_id + suffix)

    def new(self, kind: str, params: dict[str, object], *, owner: str) -> JobRecord:
        """A fresh queued record (not saved yet)."""
        if kind not in KINDS:
            raise InvalidInput(f"unknown job kind {kind!r}")
        created = stamp(now())
        return JobRecord.model_validate(
            {
                "id": new_job_id(kind),
                "kind": kind,
                "state": "queued",
                "params": params,
                "owner": owner,
                "created_at": created,
                "heartbeat_at": created,
            }
        )

    def save(self, record: JobRecord) -> None:
        self.storage.write_bytes(self._path(record.id), record.model_dump_json().encode())

    def get(self, job_id: str) -> JobRecord:
        """The record, with a dead replica's job reported as failed (not stored: reading
        never writes)."""
        try:
            data = self.storage.read_bytes(self._path(job_id))
        except NotFound:
            raise NotFound(f"no job {job_id!r}") from None
        try:
            record = JobRecord.model_validate_json(data)
        except ValidationError:
            raise _CorruptRecord(f"the record of job {job_id!r} is corrupt") from None
        return self._expire(record)

    def list(self, *, limit: int = 100) -> list[JobRecord]:
        """The records of :meth:`listing`."""
        return self.listing(limit=limit).records

    def listing(self, *, limit: int = 100) -> JobListing:
        """The newest ``limit`` jobs, newest first. A record that does not parse, a file
        whose name is no job id, or a symlink leading out of the storage is left out, logged
        and named in ``problems``: one bad file never takes the listing down (reading that
        job alone still names the fault)."""
        found = self.storage.listing(self.directory)
        problems = list(found.problems)
        # Ids start with their creation time, so name order is age order.
        names = sorted((n for n in found.names if n.endswith(".json")), reverse=True)
        records = []
        for name in names[:limit]:
            try:
                records.append(self.get(name.removesuffix(".json")))
            except NotFound:
                continue
            except (_CorruptRecord, InvalidInput) as exc:
                _log.warning("the job listing leaves out %s: %s", name, exc)
                problems.append(
                    Problem(
                        kind="job",
                        path=self.storage.join(self.directory, name),
                        message=f"{exc.message}: skipped; remove the file (what the job "
                        "published, if anything, stays in the registry or catalogue)",
                    )
                )
        return JobListing(records, problems)

    def _expire(self, record: JobRecord) -> JobRecord:
        if record.state not in ACTIVE:
            return record
        silent = (now() - datetime.fromisoformat(record.heartbeat_at)).total_seconds()
        if silent <= self.stale_after:
            return record
        message = (
            f"the replica running this job ({record.owner}) stopped or cannot write to the "
            f"storage: no heartbeat for {silent:.0f} s; nothing it was writing was published"
        )
        return record.model_copy(
            update={
                "state": "failed",
                "finished_at": stamp(now()),
                "error": ErrorDoc(code="worker_lost", message=message),
            }
        )

    def request_cancel(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record.state in TERMINAL:
            raise Conflict(f"job {job_id} already {record.state}; nothing to cancel")
        self.storage.write_bytes(self._path(job_id, ".cancel"), b"{}")
        return record

    def cancel_requested(self, job_id: str) -> bool:
        return self.storage.exists(self._path(job_id, ".cancel"))

    def clear_cancel(self, job_id: str) -> None:
        self.storage.delete(self._path(job_id, ".cancel"))

    def lock_path(self, scope: str) -> str:
        digest = hashlib.sha256(scope.encode()).hexdigest()[:24]
        return self.storage.join(self.directory, "locks", f"{digest}.json")

    def acquire(self, scope: str, job_id: str) -> None:
        """Take the lock on ``scope`` for ``job_id`` (exclusive across replicas); a lock
        held by a finished or dead job is taken over. :class:`Conflict` names the holder."""
        path = self.lock_path(scope)
        body = json.dumps({"scope": scope, "job": job_id}).encode()
        for _attempt in range(2):
            if self.storage.create_exclusive(path, body):
                return
            try:
                holder = json.loads(self.storage.read_bytes(path))["job"]
            except NotFound:
                continue  # released in between
            try:
                state = self.get(holder).state
            except (NotFound, StorageError):
                state = "failed"
            if state in ACTIVE:
                raise Conflict(
                    f"{scope} is busy: job {holder} is {state}; retry when it ends",
                    details={"job": holder},
                )
            self.storage.delete(path)
        raise Conflict(f"{scope} is busy; retry shortly")

    def release(self, scope: str, job_id: str) -> None:
        path = self.lock_path(scope)
        try:
            holder = json.loads(self.storage.read_bytes(path))["job"]
        except NotFound:
            return
        if holder == job_id:
            self.storage.delete(path)
