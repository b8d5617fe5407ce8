"""The service's error answers: loanrisk's errors with their HTTP status
(:func:`loanrisk.serving.errors.status_of`) as an ``{"error": {...}}`` body, and the
framework's own errors (unknown routes, invalid requests) in the same shape. Under ``/v2``
every error, the framework's and unexpected ones too, is in the Open Inference Protocol's
shape, ``{"error": "..."}`` (:func:`loanrisk.oip.rest.oip_error`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Router

from loanrisk import errors
from loanrisk.oip.rest import is_oip, oip_error
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


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path. (Starlette's 405 names only
    the first route that matched the path, where a path has a route per method.)"""
    path = request.scope["path"]
    methods: set[str] = set()

    def visit(routes: Iterable[object]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", route)  # an included router
            if isinstance(inner, APIRouter | Router):
                visit(inner.routes)
                continue
            regex = getattr(route, "path_regex", None)
            if regex is not None and regex.match(path):
                methods.update(getattr(route, "methods", None) or ())

    visit(request.app.router.routes)
    return sorted(methods)


def _answer(
    request: Request,
    status: int,
    error: dict[str, object],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``error`` (``error_body``'s) in the shape of the request's route family."""
    if is_oip(request.url.path):
        inner = error["error"]
        message = inner["message"] if isinstance(inner, dict) else str(inner)
        return JSONResponse({"error": message}, status, headers)
    return JSONResponse(error, status, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.LoanRiskError)
    async def loanrisk_error(request: Request, exc: errors.LoanRiskError) -> JSONResponse:
        if is_oip(request.url.path):
            return oip_error(exc)
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
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return _answer(request, exc.status_code, error_body(code, str(exc.detail)), headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return _answer(request, 422, error_body("invalid_request", message, {"fields": problems}))

    @app.exception_handler(ValidationError)
    async def model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        """A typed model built from request values refused them (a safety net: routes
        validate their input first)."""
        error = invalid_fields(exc, "request")
        return _answer(request, 422, error_body(error.code, error.message, error.details))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        body = error_body(
            "internal", f"unexpected error; quote error id {error_id}", {"error_id": error_id}
        )
        return _answer(request, 500, body)
