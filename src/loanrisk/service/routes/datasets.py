"""``/v1/datasets``: process raw loans into a dataset (a job); list; manifest; quality; tuning
studies on a dataset (a job) and their results."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_serializer
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import STUDY_NAME, DatasetManifest, LabelRates, RowCounts, TuneOptions
from loanrisk.data.characteristics import Characteristics, characteristics, limits_of
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import InvalidInput, NotFound, naming
from loanrisk.requests import process_data_job, tune_job
from loanrisk.schema import header_name, schema_from_doc
from loanrisk.schema.quality import QualityReport
from loanrisk.schema.rawcsv import stored_columns
from loanrisk.service.auth import require
from loanrisk.service.bodies import JSON, MULTIPART, parse_json, parse_model, require_media_type
from loanrisk.service.deps import ServicesDep, StorageDep
from loanrisk.service.routes.jobs import accepted
from loanrisk.serving.auth import ADMIN
from loanrisk.serving.state import Services
from loanrisk.serving.uploads import named_schema, upload_job
from loanrisk.storage.problems import Problem
from loanrisk.training.tune import Study, load_study

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], dependencies=[require(ADMIN)])

Directory = Annotated[str, Query(description="Folder of the storage holding datasets.")]


class FromStorage(BaseModel):
    """Process a raw loan CSV already on the storage."""

    source: str = Field(description="Path (or URI inside the storage root) of the raw CSV.")
    size: StrictInt | None = Field(None, ge=1, description="Expand to this many rows (benchmarks).")
    directory: str = Field("data", description="Folder of the storage for the dataset.")
    keep_columns: list[str] = Field(
        [], max_length=32, description="Extra columns to carry (not features)."
    )
    loan_schema: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="The loans' declared schema, inline (docs/schema.md); default built-in.",
    )
    schema_name: str | None = Field(
        None, description="Or the name of a stored schema (PUT /v1/schemas/{name})."
    )

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {"source": "raw/credit_risk_dataset.csv", "size": 1_000_000, "directory": "data"}
            ]
        },
    }


OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": FromStorage.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The raw loan CSV.",
                        },
                        "size": {"type": "integer", "minimum": 1},
                        "directory": {"type": "string"},
                        "keep_columns": {"type": "string", "description": "Comma-separated."},
                        "schema": {"type": "string", "description": "A schema, JSON or YAML."},
                        "schema_name": {"type": "string", "description": "A stored schema."},
                    },
                }
            },
        },
    }
}


def _check_kept(services: Services, source: str, keep: Sequence[str]) -> None:
    with naming("source"):
        header = {header_name(c) for c in stored_columns(services.storage, source)}
    absent = [k for k in keep if k.strip().lower() not in header]  # as validation reads it
    if absent:
        raise InvalidInput(
            f"kept column(s) not in the file: {', '.join(absent)}",
            details={"field": "keep_columns", "columns": absent},
        )


@router.post("", status_code=202, openapi_extra=OPENAPI, summary="Process raw loans (a job)")
async def create_dataset(request: Request, services: ServicesDep) -> JSONResponse:
    """Validate, expand (``size``), split and fit the preprocessing: a job, answered 202 with
    its record; the job's result holds the dataset manifest. Upload the CSV as ``file``
    (multipart, streamed to the storage) or name one on the storage (JSON ``source``)."""
    content_type = require_media_type(request, (MULTIPART, JSON), default=JSON)
    if content_type == MULTIPART:
        async with request.form(max_files=1, max_fields=16) as form:
            params = await upload_job(services, form)
    else:
        body = parse_model(FromStorage, parse_json(await request.body()))
        inline = (
            schema_from_doc(body.loan_schema, source="schema")
            if body.loan_schema is not None
            else None
        )
        schema = await named_schema(services, inline, body.schema_name)
        job = process_data_job(  # refuses a size over the ceiling before the file is read
            services.settings,
            source=body.source,
            source_name=body.source,
            size=body.size,
            directory=services.storage.resolve(body.directory),
            keep_columns=body.keep_columns,
            loan_schema=schema,
        )
        source = await run_in_threadpool(services.locations.existing, body.source)
        if body.keep_columns:  # what the job would refuse, refused before it is queued
            await run_in_threadpool(_check_kept, services, source, body.keep_columns)
        params = job.model_copy(update={"source": source})
    record, _ = await run_in_threadpool(services.jobs.submit, params)
    return accepted(record)


class DatasetSummary(BaseModel):
    """A dataset in the listing: what tells it from the others (the manifest has the rest)."""

    model_config = ConfigDict(frozen=True)

    id: str
    directory: str
    source: str
    requested_size: int | None
    rows: RowCounts
    label_rate: LabelRates
    schema_name: str
    created_at: str

    @classmethod
    def of(cls, manifest: DatasetManifest) -> DatasetSummary:
        return cls(
            id=manifest.id,
            directory=manifest.directory,
            source=manifest.source,
            requested_size=manifest.requested_size,
            rows=manifest.rows,
            label_rate=manifest.label_rate,
            schema_name=manifest.schema_name,
            created_at=manifest.created_at,
        )


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]
    problems: list[Problem] = Field(
        [],
        description="Datasets skipped (a corrupt manifest, a link out of the storage), each "
        "with its path and what is wrong; empty when none.",
    )


def _listing(catalogue: DatasetCatalogue) -> DatasetList:
    """Every complete dataset, oldest first; one that cannot be read is named, not fatal."""
    manifests, problems = catalogue.listing()
    return DatasetList(datasets=[DatasetSummary.of(m) for m in manifests], problems=problems)


@router.get("", summary="List datasets (oldest first)")
async def list_datasets(services: ServicesDep, directory: Directory = "data") -> DatasetList:
    """Every complete dataset. One that cannot be read (a corrupt manifest, a symlink
    leading out of the storage) is skipped and named in ``problems`` (and in the
    ``loanrisk_bad_items`` gauge); the rest is served."""
    storage = services.storage
    catalogue = DatasetCatalogue(storage, storage.resolve(directory))
    answer = await run_in_threadpool(_listing, catalogue)
    services.metrics.bad_items("datasets", answer.problems)
    return answer


@router.get("/{dataset_id}", summary="A dataset's manifest")
async def get_dataset(
    dataset_id: str, storage: StorageDep, directory: Directory = "data"
) -> DatasetManifest:
    """Rows, label rates, column statistics, the quality report, files with hashes, timings.
    ``latest`` names the newest."""
    catalogue = DatasetCatalogue(storage, storage.resolve(directory))
    return await run_in_threadpool(catalogue.resolve, dataset_id)


class DatasetQuality(BaseModel):
    id: str
    quality: QualityReport


@router.get("/{dataset_id}/quality", summary="A dataset's data-quality report")
async def get_quality(
    dataset_id: str, storage: StorageDep, directory: Directory = "data"
) -> DatasetQuality:
    """What validation cleaned, flagged (implausible but kept), dropped and found missing."""
    catalogue = DatasetCatalogue(storage, storage.resolve(directory))
    manifest = await run_in_threadpool(catalogue.resolve, dataset_id)
    return DatasetQuality(id=manifest.id, quality=manifest.quality)


@router.get(
    "/{dataset_id}/characteristics",
    summary="A dataset's characteristic analysis (bins, WoE, IV)",
    responses={404: {"description": "no such dataset"}},
)
async def get_characteristics(
    dataset_id: str, services: ServicesDep, directory: Directory = "data"
) -> Characteristics:
    """Each feature attribute of the train split binned (optimal binning with optbinning,
    constrained to the schema's declared direction of risk; special codes and missing in bins
    of their own): counts, event rate, WoE, IV, Gini and quality flags, with the attributes
    ranked by IV (docs/scorecard.md#characteristic-analysis). Computed on the first request
    (on at most ``LOANRISK_BINNING_MAX_ROWS`` loans) and stored with the dataset; later
    requests read it. ``latest`` names the newest dataset."""
    storage = services.storage
    with naming("directory"):
        root = storage.resolve(directory)
    catalogue = DatasetCatalogue(storage, root)
    limits = limits_of(services.settings)
    with naming("dataset_id"):
        return await run_in_threadpool(characteristics, catalogue, dataset_id, limits=limits)


class TuneBody(TuneOptions):
    """A hyperparameter search on the dataset's training split (see ``loanrisk tune``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"study": "q4", "trials": 30, "objective": "auc-per-cost"}]
        },
    )


@router.post(
    "/{dataset_id}/studies",
    status_code=202,
    summary="Tune on the dataset (a job)",
    responses={409: {"description": "this study is already being tuned"}},
)
async def tune(
    dataset_id: str, body: TuneBody, services: ServicesDep, directory: Directory = "data"
) -> JSONResponse:
    """Starts (or resumes) a tuning study as a job; the job's result is the study's summary
    (frontier, best, lean). One run per study at a time, across replicas. A search for a less
    discriminatory alternative without ``threshold`` counts approvals at the threshold the
    served model's champion decides at (else ``LOANRISK_THRESHOLD``); the job's
    ``threshold_source`` says which."""
    folder = services.storage.resolve(directory)
    catalogue = DatasetCatalogue(services.storage, folder)
    manifest = await run_in_threadpool(catalogue.resolve, dataset_id)
    settings = services.settings
    params = await run_in_threadpool(  # reads the champion's threshold off the registry
        functools.partial(
            tune_job,
            body,
            settings,
            services.storage,
            dataset=manifest.id,
            data_directory=folder,
            model_name=settings.model_name,
            model_directory=services.storage.resolve(settings.model_directory),
        )
    )
    scope = f"tuning study {body.study!r} of dataset {manifest.id!r} in {folder!r}"
    record, _ = await run_in_threadpool(
        functools.partial(services.jobs.submit, params, lock_scope=scope)
    )
    return accepted(record)


class StudyAnswer(BaseModel):
    """A stored study as the API answers it: its fields, then its ``summary``."""

    model_config = ConfigDict(frozen=True)

    study: Study

    @model_serializer
    def _with_summary(self) -> dict[str, object]:
        doc: dict[str, object] = self.study.model_dump(mode="json")
        doc["summary"] = self.study.result().model_dump(mode="json")
        return doc


@router.get("/{dataset_id}/studies/{study}", summary="A tuning study")
async def get_study(
    dataset_id: str, study: str, storage: StorageDep, directory: Directory = "data"
) -> StudyAnswer:
    """The stored study: every complete trial, and its summary (frontier, best, lean)."""
    if not re.match(STUDY_NAME, study):
        raise InvalidInput(
            "invalid study name: letters, digits, '.', '_' or '-' (max 64)",
            details={"field": "study"},
        )
    catalogue = DatasetCatalogue(storage, storage.resolve(directory))
    manifest = await run_in_threadpool(catalogue.resolve, dataset_id)
    stored = await run_in_threadpool(load_study, catalogue, manifest.id, study)
    if stored is None or not stored.trials:
        raise NotFound(f"dataset {manifest.id} has no tuning study {study!r}")
    return StudyAnswer(study=stored)
