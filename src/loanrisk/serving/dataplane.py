"""The Open Inference Protocol's data plane: what OIP over REST (:mod:`loanrisk.oip.rest`) and
over gRPC (:mod:`loanrisk.oip.grpc_service`) do, whatever carries the request (as MLServer's
``DataPlane`` sits under its REST and gRPC servers): find the model's cache, say whether it
is ready, describe it, and score a parsed request with the served alias's version (one
routing snapshot: canary and shadow included, as ``/v1/predict``) or with exactly the
version named."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from loanrisk._version import __version__
from loanrisk.errors import LoanRiskError, NotFound
from loanrisk.inference.cache import ModelCache
from loanrisk.interop import oip_tensors as tensors
from loanrisk.interop.oip_tensors import (
    BadTensor,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
)
from loanrisk.monitoring.log import CHAMPION, DIRECT
from loanrisk.registry.models import check_name
from loanrisk.serving.cancel import Cancellation
from loanrisk.serving.scoring import score_records, score_version
from loanrisk.serving.state import Services
from loanrisk.serving.threads import off_loop


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The server's name, version and the protocol extensions it understands."""

    name: str
    version: str
    extensions: list[str]

    def to_json(self) -> dict[str, str | list[str]]:
        return {"name": self.name, "version": self.version, "extensions": self.extensions}


SERVER = ServerMetadata("loanrisk", __version__, ["binary_tensor_data"])
SOURCE = "oip"
_VERSION = re.compile(r"^[0-9]{1,9}$")


async def cache_of(services: Services, name: str) -> ModelCache:
    directory = services.settings.model_directory
    cached = services.models.cached(directory, check_name("model", name))
    if cached is not None:
        return cached
    return await off_loop(services.models.cache_of, directory, name)


def version_number(text: str) -> int:
    if not _VERSION.match(text):
        raise BadTensor(f"invalid version {text[:20]!r}: a version number")
    return int(text)


async def metadata(services: Services, name: str, version: str | None) -> ModelMetadata:
    cache = await cache_of(services, name)
    if version is None:
        scorer = cache.current()
    else:
        scorer = await off_loop(cache.version_scorer, version_number(version))
    versions = await off_loop(cache.registry.versions, cache.name)
    return tensors.model_metadata(cache.name, versions, scorer.schema)


async def model_ready(services: Services, name: str, version: str | None) -> bool:
    """Whether the model (that version) can score now; NotFound when it does not exist."""
    cache = await cache_of(services, name)
    try:
        if version is None:
            cache.current()
        else:
            await off_loop(cache.version_scorer, version_number(version))
    except NotFound:
        raise
    except LoanRiskError:
        return False
    return True


async def infer(
    services: Services,
    name: str,
    version: str | None,
    parsed: InferenceRequest,
    binary: Mapping[str, bytes],
    *,
    cancel: Cancellation | None = None,
) -> InferenceResponse:
    """The inference response (the outputs asked for). Bounded by ``max_request_work`` and
    cancellable by ``cancel`` as :func:`~loanrisk.serving.scoring.score_records`."""
    if parsed.model_name not in (None, name) or parsed.model_version not in (None, version):
        raise BadTensor(
            f"the body names model {parsed.model_name!r} version "
            f"{parsed.model_version!r}; the path names {name!r} version {version!r}"
        )
    names = tensors.requested(parsed)
    explain, decline = "reasons" in names, "decline_reasons" in names
    cache = await cache_of(services, name)
    max_records = services.settings.max_records
    if version is None:
        routing = cache.snapshot()
        champion = routing.champion
        records = tensors.loans(parsed, champion.schema, max_records=max_records, binary=binary)
        answer = await score_records(
            services,
            cache,
            routing,
            records,
            source=SOURCE,
            explain=explain,
            decline_reasons=decline,
            cancel=cancel,
        )
        results, served = answer.result.results, champion.version
        versions = sorted({r.version for r in results})
    else:
        scorer = await off_loop(cache.version_scorer, version_number(version))
        records = tensors.loans(parsed, scorer.schema, max_records=max_records, binary=binary)
        role = CHAMPION if scorer is cache.serving() else DIRECT
        result = await score_version(
            services,
            scorer,
            records,
            role=role,
            source=SOURCE,
            explain=explain,
            decline_reasons=decline,
            cancel=cancel,
        )
        results, served, versions = result.results, scorer.version, [scorer.version]
    return InferenceResponse(
        cache.name,
        str(served),
        tensors.outputs(results, names),
        id=parsed.id,
        # a canary answered some loans
        versions=",".join(map(str, versions)) if versions != [served] else None,
    )
