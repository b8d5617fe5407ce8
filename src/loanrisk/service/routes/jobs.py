"""``/v1/jobs``: the state, progress, timings, result or error of any replica's job; cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import JobRecord
from loanrisk.service.auth import require
from loanrisk.service.deps import JobsDep, ServicesDep
from loanrisk.serving.auth import ADMIN
from loanrisk.storage.problems import Problem

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[require(ADMIN)])

EXAMPLE = {
    "id": "job-20261122T130501Z-train-1f2e3d4c",
    "kind": "train",
    "state": "running",
    "owner": "loanrisk-7d9f-abcde:41",
    "created_at": "2026-11-22T13:05:01.120+00:00",
    "started_at": "2026-11-22T13:05:01.130+00:00",
    "finished_at": None,
    "heartbeat_at": "2026-11-22T13:05:41.200+00:00",
    "progress": {"stage": "train", "done": 212, "total": 500, "elapsed": 40.1, "eta": 54.5},
    "params": {"model_name": "loan-default", "rounds": 500},
    "result": None,
    "error": None,
    "timings": {},
}


def accepted(record: JobRecord) -> JSONResponse:
    """202 with the job record and where to follow it."""
    body = record.model_dump(mode="json")
    return JSONResponse(body, 202, headers={"Location": f"/v1/jobs/{record.id}"})


class JobList(BaseModel):
    jobs: list[JobRecord]
    problems: list[Problem] = Field(
        [],
        description="Job records skipped (one that does not parse, a file whose name is no "
        "job id, a link out of the storage), each with its path and what is wrong; empty "
        "when none.",
    )


@router.get("", summary="List jobs (newest first)")
async def list_jobs(
    jobs: JobsDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JobList:
    """The newest ``limit`` jobs of every replica. One record that cannot be read (it does
    not parse, its name is no job id, it is a symlink leading out of the storage) is skipped
    and named in ``problems`` (and in the ``loanrisk_bad_items`` gauge); the rest is served."""
    found = await run_in_threadpool(jobs.listing, limit=limit)
    services.metrics.bad_items("jobs", found.problems)
    return JobList(jobs=found.records, problems=found.problems)


@router.get(
    "/{job_id}",
    summary="A job's state",
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        404: {"description": "no such job"},
    },
)
async def get_job(job_id: str, jobs: JobsDep) -> JobRecord:
    """State (queued, running, succeeded, failed, cancelled), progress, timings, and the
    result or error. A job whose replica died is reported failed (no heartbeat)."""
    return await run_in_threadpool(jobs.get, job_id)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job",
    responses={409: {"description": "the job already ended"}},
)
async def cancel_job(job_id: str, jobs: JobsDep) -> JobRecord:
    """Ask the job to stop (whichever replica runs it); it publishes nothing. Follow
    ``GET /v1/jobs/{id}`` until its state is ``cancelled``."""
    return await run_in_threadpool(jobs.cancel, job_id)
