"""What both flavours of the reference's routes share: reading the fields, the reference's
loose values (``"None"``, ``size`` as text), running a job to its end, scoring a CSV into a
results file with a bounded head for the answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import pandas as pd
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from loanrisk.errors import InvalidInput
from loanrisk.inference.cache import ModelCache
from loanrisk.inference.results import BatchSummary
from loanrisk.inference.scorer import BatchOptions
from loanrisk.requests import process_data_job
from loanrisk.service.bodies import (
    JSON,
    MULTIPART,
    URLENCODED,
    parse_json,
    parse_model,
    require_media_type,
)
from loanrisk.service.routes.reference.fields import ReferenceFields
from loanrisk.service.waiting import outcome
from loanrisk.serving.cancel import Cancellation, holding
from loanrisk.serving.scoring import score_csv_request
from loanrisk.serving.state import Services, services_of

CLASSES = ("Non-Default", "Default", "accuracy", "macro avg", "weighted avg")
Flavour = Literal["azure", "aws"]


def _no_body() -> InvalidInput:
    """The reference's clients always send their fields; ``/train`` with none would train."""
    return InvalidInput(
        "the request has no fields: send them as JSON or as a form", details={"field": "body"}
    )


@contextlib.asynccontextmanager
async def read_fields(request: Request) -> AsyncIterator[tuple[Flavour, ReferenceFields]]:
    """``("azure", fields)`` for a form, ``("aws", fields)`` for JSON, typed (its bytes held
    in the worker's parse budget until the block ends); an uploaded file's spool is closed
    when the block ends. A request with no body is refused (422):
    the reference's clients always send their fields, and ``/train`` with none would train."""
    content_type = require_media_type(request, (MULTIPART, URLENCODED, JSON), default=JSON)
    if content_type in (MULTIPART, URLENCODED):
        async with request.form(max_files=1, max_fields=32) as form:
            if not form:
                raise _no_body()
            yield "azure", parse_model(ReferenceFields, dict(form), prefix="")
        return
    body = await request.body()
    if not body.strip():
        raise _no_body()
    async with holding(services_of(request.app).parsing, len(body)):
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise InvalidInput("the body must be a JSON object of fields")
        yield "aws", parse_model(ReferenceFields, doc, prefix="")


async def process(
    services: Services, source: str, name: str, *, directory: str, size: int | None, staged: bool
) -> dict[str, Any]:
    params = process_data_job(
        services.settings,
        source=source,
        source_name=name,
        size=size,
        directory=directory,
        staged=staged,
    )
    record, _ = await run_in_threadpool(services.jobs.submit, params)
    result = await outcome(services, record)
    manifest = result["dataset"]
    return {
        "dataset": {
            "id": manifest["id"],
            "directory": directory,
            "rows": manifest["rows"],
            "quality": manifest["quality"],
        },
        "job": record.id,
    }


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """The version a training request published, and the job that trained it."""

    name: str
    version: int
    job: str

    def to_json(self) -> dict[str, str | int]:
        return {"name": self.name, "version": self.version, "job": self.job}


@dataclass
class Scored:
    """A CSV scored into a results file: the counts, and the first rows for the answer."""

    summary: BatchSummary
    head: pd.DataFrame
    path: str

    @property
    def truncated(self) -> bool:
        return len(self.head) < self.summary.scored

    def describe(self) -> dict[str, str | int | bool]:
        return {
            "results_path": self.path,
            "rows": self.summary.scored,
            "inline_rows": len(self.head),
            "truncated": self.truncated,
        }


def score_into(
    services: Services,
    cache: ModelCache,
    stream: IO[bytes],
    path: str,
    *,
    inline: int,
    decline_reasons: bool = False,
    cancel: Cancellation | None = None,
) -> Scored:
    """Stream a CSV of loans through ``cache``'s champion into a new results file at ``path``
    (every row; with ``decline_reasons``, its ``decline_codes`` and ``decline_reasons``
    columns), keeping only the first ``inline`` results in memory for the answer; the
    chunks go to the prediction log and the shadow. Bounded and cancellable as
    :func:`~loanrisk.serving.scoring.score_csv_request` (a cancelled request leaves no
    results file)."""
    head: list[pd.DataFrame] = []
    kept = 0

    def keep(results: pd.DataFrame) -> None:
        nonlocal kept
        if kept < inline:
            head.append(results.iloc[: inline - kept])
            kept += len(head[-1])

    routing = cache.snapshot()
    with services.storage.open_write(path) as sink:
        options = BatchOptions(on_results=keep, decline_reasons=decline_reasons)
        summary = score_csv_request(
            services, cache, routing, stream, sink, options, source="reference", cancel=cancel
        )
    frame = pd.concat(head) if head else pd.DataFrame({"probability": [], "label": []})
    return Scored(summary, frame, path)


def score_stored(
    services: Services,
    cache: ModelCache,
    path: str,
    *,
    decline_reasons: bool = False,
    cancel: Cancellation | None = None,
) -> Scored:
    """A stored CSV scored into a new file of the results area."""
    output = services.locations.output(None, path)
    with services.storage.open_read(path) as stream:
        return score_into(
            services,
            cache,
            stream,
            output,
            inline=services.settings.max_inline_rows,
            decline_reasons=decline_reasons,
            cancel=cancel,
        )


def inline_notices(head: pd.DataFrame) -> dict[str, list[str]]:
    """The decline columns of a scored head (``; ``-separated text per row, empty for an
    approved loan), for an answer that asked for them."""
    return {
        name: [str(v) for v in head[name]] if name in head else []
        for name in ("decline_codes", "decline_reasons")
    }
