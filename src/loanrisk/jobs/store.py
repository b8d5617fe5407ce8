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
import secrets
from datetime import UTC, datetime
from typing import Any

from loanrisk.errors import Conflict, InvalidInput, NotFound
from loanrisk.storage.base import Storage

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
KINDS = ("process_data", "train", "score")


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

    def new(self, kind: str, params: dict[str, Any], *, owner: str) -> dict[str, Any]:
        """A fresh queued record (not saved yet)."""
        if kind not in KINDS:
            raise InvalidInput(f"unknown job kind {kind!r}")
        created = stamp(now())
        record = {
            "id": new_job_id(kind),
            "kind": kind,
            "state": "queued",
            "params": params,
            "owner": owner,
            "created_at": created,
            "started_at": None,
            "finished_at": None,
            "heartbeat_at": created,
            "progress": None,
            "result": None,
            "error": None,
            "timings": {},
        }
        return record

    def save(self, record: dict[str, Any]) -> None:
        self.storage.write_bytes(self._path(record["id"]), json.dumps(record).encode())

    def get(self, job_id: str) -> dict[str, Any]:
        """The record, with a dead replica's job reported as failed (not stored: reading
        never writes)."""
        try:
            record: dict[str, Any] = json.loads(self.storage.read_bytes(self._path(job_id)))
        except NotFound:
            raise NotFound(f"no job {job_id!r}") from None
        return self._expire(record)

    def list(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` jobs, newest first."""
        # Ids start with their creation time, so name order is age order.
        names = sorted(
            (n for n in self.storage.list(self.directory) if n.endswith(".json")), reverse=True
        )
        records = []
        for name in names[:limit]:
            try:
                records.append(self.get(name.removesuffix(".json")))
            except NotFound:
                continue
        return records

    def _expire(self, record: dict[str, Any]) -> dict[str, Any]:
        if record["state"] not in ACTIVE:
            return record
        beat = datetime.fromisoformat(record["heartbeat_at"])
        silent = (now() - beat).total_seconds()
        if silent <= self.stale_after:
            return record
        record.update(
            state="failed",
            finished_at=stamp(now()),
            error={
                "code": "worker_lost",
                "message": (
                    f"the replica running this job ({record['owner']}) stopped or cannot write "
                    f"to the storage: no heartbeat for {silent:.0f} s; nothing it was writing "
                    "was published"
                ),
                "details": {},
            },
        )
        return record

    def request_cancel(self, job_id: str) -> dict[str, Any]:
        record = self.get(job_id)
        if record["state"] in TERMINAL:
            raise Conflict(f"job {job_id} already {record['state']}; nothing to cancel")
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
                state = self.get(holder)["state"]
            except NotFound:
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
