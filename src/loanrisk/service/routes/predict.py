"""``POST /v1/predict``: loans in (JSON records, or CSV), probabilities of default out."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.schema import EXAMPLE_LOAN
from loanrisk.service.deps import ServicesDep

router = APIRouter(tags=["scoring"])


OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "one loan": {"value": EXAMPLE_LOAN},
                    "many, with reasons": {
                        "value": {
                            "records": [EXAMPLE_LOAN],
                            "explain": True,
                            "top_k": 4,
                            "on_error": "skip",
                        }
                    },
                },
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "person_age,person_income,...\n22,59000,...",
            },
        },
    }
}


def _parse_json(body: bytes) -> tuple[list[Any], dict[str, Any]]:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    if isinstance(doc, list):
        return doc, {}
    if isinstance(doc, dict) and "records" in doc:
        records = doc["records"]
        if not isinstance(records, list):
            raise InvalidInput("'records' must be a list of loans")
        options = {k: doc[k] for k in ("explain", "top_k", "on_error") if k in doc}
        return records, options
    if isinstance(doc, dict):
        return [doc], {}
    raise InvalidInput('send a loan object, a list of loans, or {"records": [...]}')


@router.post("/v1/predict", openapi_extra=OPENAPI, summary="Score loans")
async def predict(request: Request, services: ServicesDep) -> Response:
    """Score loans given as JSON (one object, a list, or ``{"records": [...], "explain",
    "top_k", "on_error"}``) or as CSV (``Content-Type: text/csv``; CSV back unless
    ``Accept: application/json``). Each result: probability of default, label, band, warnings
    (and reasons when asked). Bad loans: 422 naming record and field, or, with
    ``on_error: "skip"``, scored without them and listed in ``rejected``. No model: 409."""
    scorer = services.cache().current()
    body = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    if content_type == "text/csv":
        output = io.BytesIO()
        on_error = request.query_params.get("on_error", "raise")
        if on_error not in ("raise", "skip"):
            raise InvalidInput("on_error must be 'raise' or 'skip'")
        summary = await run_in_threadpool(
            scorer.score_csv,
            io.BytesIO(body),
            output,
            on_error=on_error,  # type: ignore[arg-type]
        )
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"summary": summary, "csv": output.getvalue().decode()})
        return Response(output.getvalue(), media_type="text/csv",
                        headers={"X-Loanrisk-Model-Version": str(scorer.version)})  # fmt: skip
    records, options = _parse_json(body)
    if len(records) > services.settings.max_records:
        raise TooLarge(f"{len(records)} records: at most {services.settings.max_records} a request")
    if options.get("on_error", "raise") not in ("raise", "skip"):
        raise InvalidInput("on_error must be 'raise' or 'skip'")
    result = await run_in_threadpool(
        scorer.score_records, records, on_error=options.get("on_error", "raise"),
        explain=bool(options.get("explain", False)), top_k=int(options.get("top_k", 4)),
    )  # fmt: skip
    model = {"name": scorer.model.name, "version": scorer.version, "backend": scorer.backend.name}
    return JSONResponse({"model": model, **result})
