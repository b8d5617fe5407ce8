"""``POST /v1/predict``: loans in (JSON records, or CSV), probabilities of default out."""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, cast

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field, StrictBool, ValidationError
from starlette.concurrency import run_in_threadpool

from loanrisk import jsontext
from loanrisk.contracts import MAX_REASONS, OnError, PredictOptions
from loanrisk.errors import InvalidInput, TooLarge, naming
from loanrisk.inference.cache import ModelCache, Routing
from loanrisk.inference.distributed import results_folder
from loanrisk.inference.results import rejection_json, score_json
from loanrisk.inference.scorer import BatchOptions, Scorer
from loanrisk.registry.models import check_name
from loanrisk.requests import score_job
from loanrisk.schema import builtin_schema
from loanrisk.schema.rawcsv import stored_columns
from loanrisk.service.auth import authorize, require
from loanrisk.service.bodies import (
    CSV,
    JSON,
    SPOOL_BYTES,
    parse_json,
    parse_model,
    require_media_type,
    spool_body,
)
from loanrisk.service.deps import ServicesDep
from loanrisk.service.direct import direct_post
from loanrisk.service.disconnect import cancellation
from loanrisk.service.loan_docs import predict_body
from loanrisk.service.routes.jobs import accepted
from loanrisk.serving.auth import ADMIN, SCORE
from loanrisk.serving.cancel import holding
from loanrisk.serving.logs import request_id
from loanrisk.serving.scoring import (
    SMALL_REQUEST,
    batch_version,
    score_csv_request,
    score_records,
)
from loanrisk.serving.state import Services, services_of

router = APIRouter(tags=["scoring"])

CHUNK_BYTES = 2**20
#: Encodes a JSON answer of the route where orjson cannot (:mod:`loanrisk.jsontext`), as
#: Starlette's JSONResponse does, built once and without the circular-reference check that
#: answers made of scores never need.
_ANSWER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False
)


class _Answer(JSONResponse):
    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content, _encode_slowly)


def _encode_slowly(content: Any) -> bytes:
    return _ANSWER.encode(content).encode("utf-8")


#: A CSV body over this size (about SMALL_REQUEST loans) is watched for its client leaving.
WATCHED_CSV_BYTES = SMALL_REQUEST * 128


class BatchBody(BaseModel):
    """Score a CSV or Parquet file on the storage into a results CSV on the storage."""

    source: str = Field(description="Path (or URI inside the storage root) of the loans.")
    output: str | None = Field(
        None,
        description=(
            "Results CSV path inside the results directory (setting results_directory, "
            "default predictions/); refused when the file exists. Default: a new name."
        ),
    )
    model: str | None = Field(None, description="Model name (default: the served model).")
    model_directory: str | None = Field(None, description="Folder of the storage with models.")
    on_error: OnError = Field("raise", description="Refuse or skip bad rows.")
    id_column: str | None = Field(None, description="An input column to carry along.")
    explain: StrictBool = Field(
        False, description="Add reason_<i>, reason_<i>_code and reason_<i>_value columns."
    )
    decline_reasons: StrictBool = Field(
        False,
        description="Add decline_codes and decline_reasons: for each loan over the "
        "threshold, what its adverse-action notice states.",
    )

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "source": "incoming/loans-2026-11.csv",
                    "output": "predictions/loans-2026-11.csv",
                    "on_error": "skip",
                    "id_column": "application_id",
                }
            ]
        },
    }


def _query_flag(value: object) -> object:
    """A query flag: ``true`` or ``false`` (any case), nothing else (``yes``, ``1`` and
    ``on`` are refused, as JSON's options refuse ``"true"``)."""
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"true or false, not {value[:20]!r}")
    return value


QueryFlag = Annotated[bool | None, BeforeValidator(_query_flag)]


class CsvQuery(BaseModel):
    """The options of a CSV body, given as query parameters (a JSON body carries its own).
    Read by the route itself, not declared to FastAPI one by one: a JSON request, which has
    no query, then pays nothing for them (FastAPI's per-parameter work cost about a quarter
    of the route's framework time)."""

    on_error: OnError = Field(
        "raise", description="CSV bodies: refuse the batch, or skip bad rows."
    )
    explain: QueryFlag = Field(
        None,
        description="CSV bodies: add reason_<i>, reason_<i>_code and reason_<i>_value columns "
        "(true or false; a JSON body sets explain in the body).",
    )
    top_k: int | None = Field(
        None, ge=1, le=MAX_REASONS, description="CSV bodies: reasons per loan (default 4)."
    )
    decline_reasons: QueryFlag = Field(
        None,
        description="CSV bodies: add decline_codes and decline_reasons columns, for each loan "
        "over the threshold what its adverse-action notice states (true or false; a JSON body "
        "sets decline_reasons in the body).",
    )
    id_column: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="CSV bodies: the column naming each loan (default: the schema's id column, "
        "else an 'id' column); its value leads each result row and is the loan id the "
        "prediction log keeps, for outcomes to join.",
    )


#: The query parameters a JSON body must not send (it carries them in the body).
CSV_ONLY = ("explain", "top_k", "decline_reasons", "id_column")
NO_QUERY = CsvQuery()


def _csv_query(request: Request) -> CsvQuery:
    """The request's query as :class:`CsvQuery` (other parameters ignored; a repeated one
    is refused before, by the middleware); a bad value is the framework's 422, as a declared
    parameter's."""
    if not request.scope.get("query_string"):
        return NO_QUERY
    try:
        return CsvQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``model``'s fields as OpenAPI query parameters (as FastAPI describes declared ones)."""
    parameters = []
    for name, schema in model.model_json_schema()["properties"].items():
        if schema.get("default", "") is None:
            schema = {k: v for k, v in schema.items() if k != "default"}
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": schema.get("description"),
            }
        )
    return parameters


#: The options of a body that is a loan or a list of loans (nothing to validate but the list).
DEFAULT_OPTIONS = PredictOptions(records=[])


def _parse_request(body: bytes) -> tuple[list[Any], PredictOptions]:
    """A loan object, a list of loans, or ``{"records": [...], options}``: the loans, and
    the options typed (:data:`DEFAULT_OPTIONS` for a loan or a list)."""
    doc = parse_json(body)
    if isinstance(doc, list):
        return doc, DEFAULT_OPTIONS
    if isinstance(doc, dict) and "records" in doc:
        options = parse_model(PredictOptions, doc)
        return options.records, options
    if isinstance(doc, dict):
        return [doc], DEFAULT_OPTIONS
    raise InvalidInput('send a loan object, a list of loans, or {"records": [...]}')


@direct_post(
    router,
    "/v1/predict",
    # The served model's fields replace these when the description is asked for.
    openapi_extra={
        "requestBody": predict_body(builtin_schema()),
        "parameters": _query_parameters(CsvQuery),
    },
    summary="Score loans",
    responses={
        200: {
            "description": "The scores: JSON, or CSV for a CSV body (unless Accept asks JSON).",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def predict(request: Request) -> Response:
    """Score loans given as JSON (one object, a list, or ``{"records": [...], "explain",
    "top_k", "on_error", "decline_reasons"}``) or as CSV (``Content-Type: text/csv``, the
    same options as query parameters; CSV back unless ``Accept: application/json``). Each
    result: probability of default, label, band, grade (of the version's master scale),
    score (whole points of the version's scaling), warnings; with ``explain``, the reasons
    (each with the points it cost); with ``decline_reasons``, what a declined loan's
    adverse-action notice states. Bad loans:
    422 naming record and field, or, with ``on_error: "skip"``, scored without them and
    listed in ``rejected``. No model: 409."""
    # a direct route (no dependencies solved per request): the key is checked here
    authorize(request, SCORE)
    services = services_of(request.app)
    query = _csv_query(request)
    if require_media_type(request, (JSON, CSV), default=JSON) == CSV:
        return await _score_csv_body(
            request,
            services,
            query.on_error,
            explain=bool(query.explain),
            top_k=query.top_k or 4,
            decline_reasons=bool(query.decline_reasons),
            id_column=query.id_column,
        )
    given = [n for n in CSV_ONLY if getattr(query, n) is not None]
    if given:
        raise InvalidInput(
            f"query.{given[0]}: a JSON body carries its options in the body "
            f'({{"records": [...], "{given[0]}": ...}}); the query parameter is for CSV bodies',
            details={"field": f"query.{given[0]}"},
        )
    body = await request.body()
    served = services.models.served
    routing = served.snapshot()  # the request's versions; no model: 409 before parsing
    async with holding(services.parsing, len(body)):
        try:
            return await _score_json_body(request, services, served, routing, body)
        except InvalidInput as exc:
            # its frames hold the parsed loans: let them go before the refusal is sent
            raise exc.with_traceback(None) from None


async def _score_json_body(
    request: Request, services: Services, served: ModelCache, routing: Routing, body: bytes
) -> Response:
    """The JSON body parsed, scored and answered, while its share of the worker's parse
    budget is held (the parsed loans live until the answer is rendered)."""
    records, options = _parse_request(body)
    if len(records) > services.settings.max_records:
        raise TooLarge(f"{len(records)} records: at most {services.settings.max_records} a request")
    # a big request stops at its next chunk if its client goes away
    cancel = cancellation(request) if len(records) > SMALL_REQUEST else None
    try:
        answer = await score_records(
            services,
            served,
            routing,
            records,
            source="v1",
            on_error=options.on_error,
            explain=options.explain,
            top_k=options.top_k,
            decline_reasons=options.decline_reasons,
            cancel=cancel,
        )
    finally:
        if cancel is not None:
            cancel.stop()
    scored = answer.result
    doc: dict[str, Any] = {
        "model": _described(answer.champion),
        "results": list(map(score_json, scored.results)),
        "rejected": list(map(rejection_json, scored.rejected)),
    }
    versions = str(answer.champion.version)
    if answer.canary is not None:
        doc["canary"] = _described(answer.canary)
        versions += f",{answer.canary.version}"
    return _Answer(doc, headers={"X-Loanrisk-Model-Version": versions})


def _described(scorer: Scorer) -> dict[str, str | int]:
    return {"name": scorer.model.name, "version": scorer.version, "backend": scorer.backend.name}


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _size(stream: IO[bytes]) -> int:
    size = stream.seek(0, 2)
    stream.seek(0)
    return size


def _chunks(output: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := output.read(CHUNK_BYTES):
            yield chunk
    finally:
        output.close()


async def _score_csv_body(
    request: Request,
    services: Services,
    on_error: OnError,
    *,
    explain: bool,
    top_k: int,
    decline_reasons: bool,
    id_column: str | None,
) -> Response:
    """CSV in, streamed through the model; CSV out (or JSON with ``Accept: application/json``),
    with reason and decline columns when asked (:meth:`Scorer.score_csv`). Both sides go
    through temporary files, so a big batch does not sit in memory."""
    source = await spool_body(request)
    output = cast(IO[bytes], tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 (closed by _chunks or below)
    cancel = cancellation(request)
    if _size(source) > WATCHED_CSV_BYTES:
        cancel.watch()  # scored off the loop, where the core cannot start it
    try:
        served = services.models.served
        routing = served.snapshot()
        scorer = routing.champion
        summary = await run_in_threadpool(
            functools.partial(
                score_csv_request,
                services,
                served,
                routing,
                source,
                output,
                BatchOptions(
                    on_error=on_error,
                    id_column=id_column,
                    explain=explain,
                    top_k=top_k,
                    decline_reasons=decline_reasons,
                ),
                source="v1-csv",
                cancel=cancel,
                max_rows=services.settings.max_records if _wants_json(request) else None,
            )
        )
        output.seek(0)
    except BaseException:
        output.close()
        raise
    finally:
        cancel.stop()
        source.close()
    services.metrics.predicted_batch(scorer.model.name, scorer.version, summary)
    if _wants_json(request):
        limit = services.settings.max_records
        if summary.scored > limit:  # a JSON answer is held whole: CSV streams instead
            output.close()
            raise TooLarge(
                f"{summary.scored:,} loans scored: a JSON answer holds at most {limit:,}; "
                "ask for CSV (Accept: text/csv) to stream them all",
                details={"max": limit},
            )
        with output:
            text = output.read().decode()
        return JSONResponse({"summary": summary.to_json(), "csv": text})
    return StreamingResponse(
        _chunks(output),
        media_type="text/csv",
        headers={"X-Loanrisk-Model-Version": str(scorer.version)},
    )


@router.post(
    "/v1/batch-predictions",
    status_code=202,
    summary="Score a stored file (a job)",
    dependencies=[require(ADMIN)],
    responses={
        403: {"description": "output among the models, datasets or job records"},
        409: {"description": "the output file exists already"},
    },
)
async def batch_predict(body: BatchBody, services: ServicesDep) -> JSONResponse:
    """Stream a CSV or Parquet file of any size through the model; the results CSV is written
    atomically (a failed batch leaves no output). Answers 202 with the job record."""
    s = services.settings
    source = await run_in_threadpool(services.locations.existing, body.source)
    output = await run_in_threadpool(services.locations.output, body.output, source)
    if s.dask_scheduler is not None and source.endswith(".parquet"):  # results: a folder
        await run_in_threadpool(results_folder, services.storage, output)
    directory = services.storage.resolve(body.model_directory or s.model_directory)
    with naming("model"):  # what the job would refuse, refused before it is queued
        name = check_name("model", body.model or s.model_name)
        # resolved once, here: the job scores with the version the service scores with now
        version = await run_in_threadpool(batch_version, services, directory, name)
    if body.id_column is not None:
        with naming("source"):
            columns = await run_in_threadpool(stored_columns, services.storage, source)
        if body.id_column not in columns:
            raise InvalidInput(
                f"id column {body.id_column!r} is not in {body.source}",
                details={"field": "id_column"},
            )
    params = score_job(
        s,
        source=source,
        output=output,
        model_name=name,
        model_directory=directory,
        version=version,
        on_error=body.on_error,
        id_column=body.id_column,
        request_id=request_id.get(),
        explain=body.explain,
        decline_reasons=body.decline_reasons,
    )
    record, _ = await run_in_threadpool(services.jobs.submit, params)
    return accepted(record)
