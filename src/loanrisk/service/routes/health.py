"""Liveness and readiness, with their Open Inference Protocol v2 aliases (whose clients read
``live`` and ``ready``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from loanrisk.errors import Conflict, LoanRiskError
from loanrisk.inference.results import ScorerDescription
from loanrisk.service.deps import MetricsDep, ModelsDep, SettingsDep, StorageDep

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["ok"] = "ok"
    live: Literal[True] = True


class Readiness(BaseModel):
    """A ready replica: its storage, the model it serves (None before one loaded) and why
    that is not the version the alias names (None when it is)."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ready"] = "ready"
    ready: Literal[True] = True
    storage: str
    model: ScorerDescription | None
    model_problem: str | None


@router.get("/healthz")
@router.get("/v2/health/live", include_in_schema=False)
async def live() -> Liveness:
    """The process is up and answering (nothing else: no model or storage state makes a
    replica fail its liveness check)."""
    return Liveness()


@router.get("/readyz", responses={503: {"description": "storage unreachable"}})
@router.get("/v2/health/ready", include_in_schema=False)
async def ready(storage: StorageDep, settings: SettingsDep, models: ModelsDep) -> JSONResponse:
    """Ready: the storage answers. Reports the model loaded, and in ``model_problem`` why it
    is not the version the alias names (a version that failed to load: the replica keeps
    serving the last good one). A missing model does not make the replica unready (scoring
    answers 409; data and training still work)."""
    try:
        await run_in_threadpool(storage.list, settings.model_directory)
    except LoanRiskError as exc:
        return JSONResponse({"status": "unready", "ready": False, "reason": exc.message}, 503)
    try:
        model: ScorerDescription | None = models.served.current().describe()
    except Conflict:
        model = None
    body = Readiness(storage=storage.url, model=model, model_problem=models.served.problem)
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(recorded: MetricsDep) -> Response:
    """Requests by route and status, latency histograms, predictions by model version and
    label, jobs by kind and state with durations, and the served model version and backend
    (``loanrisk_model_info``); summed over every worker of this replica."""
    body = await run_in_threadpool(recorded.exposition)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
