"""Open Inference Protocol v2 over HTTP (``/v2``), as KServe, Triton and MLServer clients
speak it (docs/oip.md). Errors are OIP's ``{"error": "..."}``: 400 for tensors that do not
fit, 422 for loans that fail the schema's rules (as ``/v1/predict``), 401/403/404/409/413 as
everywhere else. Auth scopes and metrics are v1's: health (``/v2/health/live`` and ``/ready``,
the service's ``/healthz`` and ``/readyz``) is open, the rest needs ``score``.

Triton's binary tensor data extension is understood: a request whose
``Inference-Header-Content-Length`` header gives the JSON's length, followed by each input
marked ``"parameters": {"binary_data_size": n}`` as raw little-endian bytes (tritonclient's
default). Outputs are always JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive

from loanrisk.errors import LoanRiskError, TooBusy
from loanrisk.interop import oip_tensors as tensors
from loanrisk.interop.oip_tensors import BadTensor
from loanrisk.schema import Column, LoanSchema, builtin_schema
from loanrisk.serving import dataplane
from loanrisk.serving.auth import SCORE, presented_key
from loanrisk.serving.cancel import Cancellation, holding
from loanrisk.serving.errors import status_of
from loanrisk.serving.state import Services, services_of

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])
HEADER_LENGTH = "inference-header-content-length"


def is_oip(path: str) -> bool:
    """Whether ``path`` is one of this protocol's, answered in its error shape."""
    return path == "/v2" or path.startswith("/v2/")


def oip_error(exc: LoanRiskError) -> JSONResponse:
    """``exc`` in OIP's error shape: 400 for tensors that do not fit, else its usual status."""
    status = 400 if isinstance(exc, BadTensor) else status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooBusy):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"error": exc.message}, status, headers)


async def _guard(
    request: Request, scope: str | None, work: Callable[[Services], Awaitable[Response]]
) -> Response:
    """Check the key (when ``scope``), run, and answer any loanrisk error in OIP's shape."""
    services = services_of(request.app)
    try:
        if scope is not None:
            request.state.caller = services.keys.check(presented_key(request.headers), scope)
        return await work(services)
    except LoanRiskError as exc:
        return oip_error(exc)


# -- health and metadata -----------------------------------------------------------------


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> Response:
    async def work(_: Services) -> Response:
        return JSONResponse(dataplane.SERVER.to_json())

    return await _guard(request, SCORE, work)


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    async def work(services: Services) -> Response:
        return JSONResponse((await dataplane.metadata(services, name, version)).to_json())

    return await _guard(request, SCORE, work)


@router.get("/models/{name}", summary="Model metadata (the served alias's version)")
async def model_metadata(name: str, request: Request) -> Response:
    return await _metadata(request, name, None)


@router.get("/models/{name}/versions/{version}", summary="Model metadata (one version)")
async def version_metadata(name: str, version: str, request: Request) -> Response:
    return await _metadata(request, name, version)


async def _ready(request: Request, name: str, version: str | None) -> Response:
    async def work(services: Services) -> Response:
        up = await dataplane.model_ready(services, name, version)
        return JSONResponse({"name": name, "ready": up}, 200 if up else 503)

    return await _guard(request, SCORE, work)


@router.get("/models/{name}/ready", summary="Model ready")
async def model_ready(name: str, request: Request) -> Response:
    return await _ready(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", summary="Model version ready")
async def version_ready(name: str, version: str, request: Request) -> Response:
    return await _ready(request, name, version)


# -- inference ---------------------------------------------------------------------------


def split_binary(request: tensors.InferenceRequest, raw: bytes) -> dict[str, bytes]:
    """The raw bytes of each input marked ``binary_data_size``, in the inputs' order."""
    out, offset = {}, 0
    for tensor in request.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(raw):
            raise BadTensor(
                f"input {tensor.name!r}: binary_data_size {size!r} does not fit "
                f"the {len(raw)} bytes after the JSON header"
            )
        out[tensor.name] = raw[offset : offset + size]
        offset += size
    if offset != len(raw):
        raise BadTensor(f"{len(raw) - offset} bytes after the inputs' binary data")
    return out


def parse_body(
    body: bytes, header: str | None
) -> tuple[tensors.InferenceRequest, dict[str, bytes]]:
    """The request (and its binary inputs) of a body whose JSON part is ``header`` bytes
    long (the binary extension's framing), or all of it (no header)."""
    if header is None:
        return tensors.parse_request_json(body), {}
    # ASCII digits only: str.isdigit() also takes superscripts (which int() refuses) and
    # other scripts' digits (which int() reads).
    if not (header.isascii() and header.isdigit()) or int(header) > len(body):
        raise BadTensor(f"{HEADER_LENGTH} {header[:20]!r} does not fit a {len(body)}-byte body")
    length = int(header)
    parsed = tensors.parse_request_json(body[:length])
    return parsed, split_binary(parsed, body[length:])


async def _until_disconnect(receive: Receive) -> None:
    """Return once the client has gone (as :mod:`loanrisk.service.disconnect`'s, which this
    layer cannot import)."""
    while (await receive())["type"] != "http.disconnect":
        pass  # the body is read: nothing but a disconnect can come


async def _infer(request: Request, name: str, version: str | None) -> Response:
    async def work(services: Services) -> Response:
        body = await request.body()
        async with holding(services.parsing, len(body)):
            parsed, binary = parse_body(body, request.headers.get(HEADER_LENGTH))
            # the body is read: a big request stops at its next chunk if its client goes away
            receive = request.receive
            cancel = Cancellation(lambda: _until_disconnect(receive))
            try:
                answer = await dataplane.infer(
                    services, name, version, parsed, binary, cancel=cancel
                )
            finally:
                cancel.stop()
            return JSONResponse(answer.to_json())

    return await _guard(request, SCORE, work)


def _datatype(column: Column) -> tensors.Datatype:
    if column.type in tensors.TEXT:
        return "BYTES"
    return "BOOL" if column.type == "boolean" else "FP64"


def infer_example(schema: LoanSchema) -> tensors.InferenceRequest:
    """One loan of ``schema`` as an inference request: one input per attribute, named after
    it, with the schema's example value (built as given: it documents, it is not a request)."""
    inputs = [
        tensors.RequestInput.model_construct(
            name=c.name, shape=[1], datatype=_datatype(c), data=[c.example_value()]
        )
        for c in schema.features
    ]
    outputs = [tensors.RequestOutput.model_construct(name=n) for n in ("probability", "band")]
    return tensors.InferenceRequest.model_construct(id="42", inputs=inputs, outputs=outputs)


def infer_body(schema: LoanSchema) -> dict[str, Any]:
    """The request body of the infer routes as the OpenAPI description shows it, for a model
    of ``schema`` (the route reads the body itself, also in the binary extension's framing;
    ``service/openapi.py`` swaps in the served model's)."""
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": tensors.InferenceRequest.model_json_schema(),
                "example": infer_example(schema).model_dump(exclude_unset=True),
            }
        },
    }


INFER_BODY = {"requestBody": infer_body(builtin_schema())}


@router.post(
    "/models/{name}/infer",
    summary="Score loans (the served alias's version)",
    openapi_extra=INFER_BODY,
)
async def infer(name: str, request: Request) -> Response:
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Score loans with one version",
    openapi_extra=INFER_BODY,
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    return await _infer(request, name, version)
