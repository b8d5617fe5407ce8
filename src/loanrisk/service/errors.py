"""The service's error answers: loanrisk's errors with their HTTP status
(:func:`loanrisk.serving.errors.status_of`) as an ``{"error": {...}}`` body, and the
framework's own errors (unknown routes, invalid requests) in the same shape."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loanrisk import errors
from loanrisk.serving.errors import invalid_fields, status_of

log = logging.getLogger("loanrisk.service")

#: Error codes of the HTTP errors the framework raises itself.
HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LoanRiskError)
    async def loanrisk_error(request: Request, exc: errors.LoanRiskError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, errors.TooBusy):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown routes, wrong methods and unparseable bodies, in the one error shape."""
        if exc.status_code < 400:  # not an error (e.g. 304)
            return Response(status_code=exc.status_code, headers=exc.headers)
        code = HTTP_CODES.get(exc.status_code, "invalid_request")
        return JSONResponse(
            error_body(code, str(exc.detail)), exc.status_code, getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid_request", message, {"fields": problems}), 422)

    @app.exception_handler(ValidationError)
    async def model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        """A typed model built from request values refused them (a safety net: routes
        validate their input first)."""
        error = invalid_fields(exc, "request")
        return JSONResponse(error_body(error.code, error.message, error.details), 422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        body = error_body(
            "internal", f"unexpected error; quote error id {error_id}", {"error_id": error_id}
        )
        return JSONResponse(body, 500)
