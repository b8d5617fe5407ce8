"""Erasure of one applicant's rows from a model's prediction log and the outcomes (GDPR
Art. 17; docs/monitoring.md), for admin keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loanrisk.monitoring.log.erasure import Erasure, ErasureRequest, erase_loan
from loanrisk.registry.models import check_name
from loanrisk.service.auth import caller, require
from loanrisk.service.bodies import JSON, parse_json, parse_model, require_media_type
from loanrisk.service.deps import ServicesDep
from loanrisk.serving.auth import ADMIN

router = APIRouter(tags=["monitoring"], dependencies=[require(ADMIN)])


@router.post(
    "/v1/models/{name}/erasures",
    summary="Erase one applicant's loan from the log",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": ErasureRequest.model_json_schema()}},
        }
    },
)
async def post_erasure(name: str, request: Request, services: ServicesDep) -> Erasure:
    """Erase every row of ``loan_id`` from the model's prediction log (champion, canary and
    shadow rows) and from the outcomes: each file that holds it is rewritten atomically,
    others are not touched. The answer is the audit record kept under
    ``<log directory>/erasures/``: the loan id's hash (never the id), when, by whom (the API
    key's name), and the rows and files changed; ``problems`` names files that could not be
    read. An empty, blank or over-long (> 128 characters) loan id is refused (422, naming
    ``body.loan_id``). Idempotent: running it again completes an interrupted erasure."""
    require_media_type(request, (JSON,), default=JSON)
    body = parse_model(ErasureRequest, parse_json(await request.body()))
    model = check_name("model", name)
    settings, storage = services.settings, services.storage
    key = settings.log_pii_key
    erasure = await run_in_threadpool(
        erase_loan,
        storage,
        log_directory=storage.resolve(settings.log_directory),
        outcome_directory=storage.resolve(settings.outcome_directory),
        model=model,
        request=body,
        by=caller(request),
        key=None if key is None else key.get_secret_value().encode(),
    )
    return erasure
