"""The Open Inference Protocol v2 over gRPC (``oip.proto``), on ``LOANRISK_GRPC_PORT`` when it
is set. Each worker runs a gRPC server on the same port (``SO_REUSEPORT``: the kernel spreads
connections, as it does for HTTP); its threads hand each call to the worker's event loop, so
the call is scored exactly as an HTTP request is (batching, canary, shadow, log,
metrics). Keys travel as ``authorization: Bearer <key>`` (or ``x-api-key``) metadata.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
import numpy as np

from loanrisk import errors
from loanrisk.interop import oip_tensors as tensors
from loanrisk.interop.oip_tensors import BadTensor
from loanrisk.oip import oip_pb2 as pb
from loanrisk.oip import oip_pb2_grpc as pb_grpc
from loanrisk.serving import dataplane
from loanrisk.serving.auth import SCORE, presented_key
from loanrisk.serving.cancel import Cancellation
from loanrisk.serving.state import Services

T = TypeVar("T")
#: Calls handled at once per worker (each waits on the event loop, which does the work).
THREADS = 16
#: gRPC's code for each error of loanrisk's tree (the nearest class's; others: INTERNAL).
CODES: dict[type[errors.LoanRiskError], grpc.StatusCode] = {
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.PathNotAllowed: grpc.StatusCode.PERMISSION_DENIED,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnsupportedMediaType: grpc.StatusCode.INVALID_ARGUMENT,
    errors.TooBusy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Cancelled: grpc.StatusCode.FAILED_PRECONDITION,
    errors.StorageError: grpc.StatusCode.UNAVAILABLE,
    errors.NotInstalled: grpc.StatusCode.UNIMPLEMENTED,
}
_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def code_of(exc: errors.LoanRiskError) -> grpc.StatusCode:
    """The gRPC status code of ``exc``: its nearest class's in :data:`CODES`."""
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def _key(context: grpc.ServicerContext) -> str | None:
    metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
    return presented_key(metadata)


def parse(request: Any) -> tuple[tensors.InferenceRequest, dict[str, bytes]]:
    """A ``ModelInferRequest`` as the REST body's typed request, plus raw inputs by name."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadTensor(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    inputs, binary = [], {}
    for i, tensor in enumerate(request.inputs):
        doc: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if raw:
            binary[tensor.name] = raw[i]
        else:
            field = _FIELDS.get(tensor.datatype)
            values = list(getattr(tensor.contents, field)) if field else []
            doc["data"] = (
                [v.decode("utf-8", "replace") for v in values]
                if tensor.datatype == "BYTES"
                else values
            )
        inputs.append(doc)
    outputs = [{"name": o.name} for o in request.outputs] or None
    parsed = tensors.parse_request({"id": request.id or None, "inputs": inputs, "outputs": outputs})
    return parsed, binary


def _raw(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in (x.encode() for x in values))
    return np.asarray(values, dtype=tensors.NUMPY[datatype]).tobytes()


def response(answer: tensors.InferenceResponse) -> Any:
    """The response, its tensors as ``raw_output_contents`` (as Triton answers, and what
    tritonclient.grpc reads)."""
    out = pb.ModelInferResponse(
        model_name=answer.model_name, id=answer.id or "", model_version=answer.model_version
    )
    for tensor in answer.outputs:
        out.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        out.raw_output_contents.append(_raw(tensor.datatype, tensor.data))
    return out


def _tensor_metadata(tensor: tensors.TensorMetadata) -> Any:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor.name, datatype=tensor.datatype, shape=tensor.shape
    )


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop) -> None:
        self.services = services
        self.loop = loop

    def _run(
        self,
        context: grpc.ServicerContext,
        scope: str | None,
        work: Callable[[], Coroutine[Any, Any, T]],
    ) -> T:
        """Check the key, run ``work`` on the worker's event loop, map errors to codes."""
        try:
            if scope is not None:
                self.services.keys.check(_key(context), scope)

            return asyncio.run_coroutine_threadsafe(work(), self.loop).result()
        except errors.LoanRiskError as exc:
            context.abort(code_of(exc), exc.message)
            raise  # abort raises; this satisfies the type checker

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self.services.models.served.serving() is not None)

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        async def work() -> Any:
            server = dataplane.SERVER
            return pb.ServerMetadataResponse(
                name=server.name, version=server.version, extensions=server.extensions
            )

        return self._run(context, SCORE, work)

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        async def work() -> Any:
            up = await dataplane.model_ready(self.services, request.name, request.version or None)
            return pb.ModelReadyResponse(ready=up)

        return self._run(context, SCORE, work)

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        async def work() -> Any:
            meta = await dataplane.metadata(self.services, request.name, request.version or None)
            return pb.ModelMetadataResponse(
                name=meta.name,
                versions=meta.versions,
                platform=meta.platform,
                inputs=[_tensor_metadata(t) for t in meta.inputs],
                outputs=[_tensor_metadata(t) for t in meta.outputs],
                properties={"schema": meta.schema},
            )

        return self._run(context, SCORE, work)

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        cancel = Cancellation()  # set when the call ends: a big request stops at its next chunk
        context.add_callback(cancel.cancel)

        async def work() -> Any:
            parsed, binary = parse(request)
            body = await dataplane.infer(
                self.services,
                request.model_name,
                request.model_version or None,
                parsed,
                binary,
                cancel=cancel,
            )
            return response(body)

        return self._run(context, SCORE, work)


def start(services: Services, loop: asyncio.AbstractEventLoop) -> grpc.Server:
    """A gRPC server for this worker on ``host:grpc_port`` (shared by every worker)."""
    settings = services.settings
    limit = settings.max_request_bytes
    server = grpc.server(
        ThreadPoolExecutor(THREADS, thread_name_prefix="oip-grpc"),
        options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", limit)],
        maximum_concurrent_rpcs=THREADS * 4,
    )
    add: Callable[[Any, grpc.Server], None] = pb_grpc.add_GRPCInferenceServiceServicer_to_server
    add(InferenceService(services, loop), server)
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise errors.InvalidInput(f"cannot listen for gRPC on {address}")
    server.start()
    return server
