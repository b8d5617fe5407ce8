"""The one place that maps loanrisk's errors to HTTP: status and ``{"error": {...}}`` body."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from loanrisk import errors

log = logging.getLogger("loanrisk.service")

STATUS: dict[type[errors.LoanRiskError], int] = {
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.PathNotAllowed: 403,
    errors.TooLarge: 413,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Cancelled: 409,
    errors.StorageError: 503,
}


def status_of(exc: errors.LoanRiskError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LoanRiskError)
    async def loanrisk_error(request: Request, exc: errors.LoanRiskError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status, headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid_request", message, {"fields": problems}), 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        body = error_body(
            "internal", f"unexpected error; quote error id {error_id}", {"error_id": error_id}
        )
        return JSONResponse(body, 500)
