"""Liveness and readiness, with their Open Inference Protocol v2 aliases (whose clients read
``live`` and ``ready``). Both are open to anyone, so they tell an anonymous caller nothing
about where the data lives: readiness names the storage's kind (``file``, ``s3``, ``az``)
and its full URL only to a caller with a valid API key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from loanrisk.errors import Conflict, LoanRiskError
from loanrisk.inference.results import ScorerDescription
from loanrisk.service.deps import MetricsDep, ModelsDep, ServicesDep, SettingsDep, StorageDep
from loanrisk.serving.auth import ApiKeys, presented_key
from loanrisk.storage.base import Storage

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["ok"] = "ok"
    live: Literal[True] = True


class Readiness(BaseModel):
    """A ready replica: its storage (its kind, or its URL for a caller with a key), the model
    it serves (None before one loaded) and why that is not the version the alias names (None
    when it is)."""

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


def _known_caller(keys: ApiKeys, request: Request) -> bool:
    """Whether the request carries a valid API key (an open service has none to carry)."""
    if keys.open:
        return False
    try:
        keys.identify(presented_key(request.headers))
    except LoanRiskError:
        return False
    return True


def _storage_shown(storage: Storage, known: bool) -> str:
    """The storage as a caller may see it: its URL for a known caller, else its kind only."""
    return storage.url if known else storage.url.partition("://")[0]


@router.get("/readyz", responses={503: {"description": "storage unreachable"}})
@router.get("/v2/health/ready", include_in_schema=False)
async def ready(
    request: Request,
    services: ServicesDep,
    storage: StorageDep,
    settings: SettingsDep,
    models: ModelsDep,
) -> JSONResponse:
    """Ready: the storage answers. Reports the storage (its kind; its URL to a caller with an
    API key), the model loaded, and in ``model_problem`` why it is not the version the alias
    names (a version that failed to load: the replica keeps serving the last good one). A
    missing model does not make the replica unready (scoring answers 409; data and training
    still work)."""
    known = _known_caller(services.keys, request)
    try:
        await run_in_threadpool(storage.list, settings.model_directory)
    except LoanRiskError as exc:
        reason = exc.message if known else "the storage does not answer"
        return JSONResponse({"status": "unready", "ready": False, "reason": reason}, 503)
    try:
        model: ScorerDescription | None = models.served.current().describe()
    except Conflict:
        model = None
    body = Readiness(
        storage=_storage_shown(storage, known), model=model, model_problem=models.served.problem
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(recorded: MetricsDep) -> Response:
    """Requests by route and status, latency histograms, predictions by model version and
    label, jobs by kind and state with durations, and the served model version and backend
    (``loanrisk_model_info``); summed over every worker of this replica."""
    body = await run_in_threadpool(recorded.exposition)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
