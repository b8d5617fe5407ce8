"""ASGI middleware: request ids, access logs, request metrics, body-size limits and one value
per query parameter.

Pure ASGI (no ``BaseHTTPMiddleware``): it adds a few microseconds, not a task per request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loanrisk.errors import TooLarge
from loanrisk.oip.rest import is_oip
from loanrisk.service.bodies import CSV, MULTIPART, media_type
from loanrisk.serving.logs import request_id
from loanrisk.serving.metrics import Metrics
from loanrisk.settings import Settings

log = logging.getLogger("loanrisk.access")

#: The routes that read an upload, and the media type each reads it as: only these get the
#: upload limit. Any other body (whatever it claims to be) gets the request-body limit.
UPLOAD_ROUTES: dict[str, str] = {
    "/v1/predict": CSV,
    "/v1/datasets": MULTIPART,
    "/console/datasets": MULTIPART,
    "/data_processing": MULTIPART,
    "/predict": MULTIPART,
}
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class BodyLimit:
    """413 for bodies over the limit: at once from ``Content-Length``, else while reading.
    Uploads (the media type a route of :data:`UPLOAD_ROUTES` reads as one) get
    ``max_upload_bytes``; every other body ``max_request_bytes``, so a JSON document sent as
    ``application/octet-stream`` or ``TEXT/CSV`` is held to the JSON limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = media_type(_header(scope, b"content-type"))
        upload = UPLOAD_ROUTES.get(scope["path"].rstrip("/")) == kind
        limit = self.settings.max_upload_bytes if upload else self.settings.max_request_bytes
        what = "upload" if upload else "request body"
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            message = f"{what} of {int(length):,} bytes: at most {limit:,}"
            await _reject(send, message, oip=is_oip(scope["path"]))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(f"{what} over {limit:,} bytes")
            return message

        await self.app(scope, limited, send)


def repeated_parameter(query: bytes) -> str | None:
    """The first query parameter ``query`` gives more than once (None: each at most once)."""
    if b"&" not in query:
        return None
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


class OneValuePerParameter:
    """422 naming the parameter for a query that gives one more than once: no route takes a
    list in its query, and which of two values a framework keeps is not the client's to
    guess."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = scope["type"] == "http"
        name = repeated_parameter(scope.get("query_string", b"")) if http else None
        if name is None:
            await self.app(scope, receive, send)
            return
        field = f"query.{name}"
        await _reject(
            send,
            f"{field}: given more than once; send each query parameter once",
            oip=is_oip(scope["path"]),
            status=422,
            code="invalid_request",
            details={"field": field},
        )


async def _reject(
    send: Send,
    message: str,
    *,
    oip: bool,
    status: int = 413,
    code: str = "too_large",
    details: dict[str, str] | None = None,
) -> None:
    error = message if oip else {"code": code, "message": message, "details": details or {}}
    body = json.dumps({"error": error})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


class Observe:
    """Gives each request an id (the client's ``X-Request-ID`` when sane), echoes it in the
    response with the time the app took (``Server-Timing: app;dur=<ms>``), logs one JSON
    access line and records the request metrics by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given.decode() if given and _SAFE_ID.match(given) else os.urandom(8).hex()
        token = request_id.set(rid)
        status = 500
        clock = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                spent = (time.perf_counter() - clock) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode()),
                    (b"server-timing", f"app;dur={spent:.3f}".encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - clock
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(seconds)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(seconds * 1000, 3),
                },
            )
            request_id.reset(token)
