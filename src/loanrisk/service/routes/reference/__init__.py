"""The reference system's routes, unchanged for its clients, answered in its shapes.

Both flavours share the paths: the Azure flavour (:mod:`.azure`) sends multipart forms
(``az_file_path`` is the file-share mount), the AWS flavour (:mod:`.aws`) JSON (``bucket``/
``key`` or local paths); each route dispatches on the content type. Responses carry the
reference's keys (``Message``/``msg`` ...) plus ours (dataset, model version, job id). Work
runs as a background job the request waits on, so the server keeps answering while it trains;
paths are confined to the storage.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import TrainingOptions, TrainingResult, check_size
from loanrisk.defaults import PRODUCTION
from loanrisk.errors import InvalidInput
from loanrisk.registry.models import check_name
from loanrisk.requests import training_request
from loanrisk.service.auth import require
from loanrisk.service.deps import ServicesDep
from loanrisk.service.disconnect import cancellation
from loanrisk.service.routes.reference import aws, azure
from loanrisk.service.routes.reference.bodies import DATA, DATA_PROCESSING, PREDICT, TRAIN
from loanrisk.service.routes.reference.common import TrainedModel, read_fields
from loanrisk.service.waiting import outcome
from loanrisk.serving.auth import ADMIN, SCORE
from loanrisk.serving.state import training_scope

router = APIRouter(tags=["reference-compatible"])


@router.get("/ping")
async def ping() -> dict[str, str]:
    """The reference's health check; both flavours' keys (Azure ``Message``, AWS ``message``)."""
    return {"Message": "Server is Running", "message": "Server is Running"}


@router.post("/data_processing", dependencies=[require(ADMIN)], openapi_extra=DATA_PROCESSING)
async def data_processing(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Azure flavour: upload a raw loan CSV (``file``), validate, expand to ``size`` rows,
    split, fit the preprocessing; stored under ``az_file_path``/``data_directory``."""
    async with read_fields(request) as (flavour, fields):
        if flavour != "azure":
            raise InvalidInput("/data_processing takes a multipart form with the file")
        return await azure.data_processing(services, fields)


@router.post("/data", dependencies=[require(ADMIN)], openapi_extra=DATA)
async def data(request: Request, services: ServicesDep) -> dict[str, Any]:
    """AWS flavour: process the raw CSV at ``key`` of an allowed ``bucket`` (or at
    ``local_path`` with ``backend: local``) into ``target_path`` (default: the key's folder)."""
    async with read_fields(request) as (_, fields):
        return await aws.data(services, fields)


@router.post("/train", dependencies=[require(ADMIN)], openapi_extra=TRAIN)
async def train(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Train a model on a processed dataset (the one processed with ``size``, else the
    newest), or continue training the current one (``continue_training=True``); publish the
    new version and make it the one ``/predict`` uses. Waits for the training to end."""
    async with read_fields(request) as (flavour, fields):
        flavour_module = azure if flavour == "azure" else aws
        data_dir, model_dir = flavour_module.folders(services, fields)
        name = check_name("model", fields.model_name or services.settings.model_name)
        options = TrainingOptions(
            dataset_size=check_size(fields.size, services.settings),
            data_directory=data_dir,
            promote=True,
            continue_from=PRODUCTION if fields.continue_training else None,
        )
        params = await run_in_threadpool(
            functools.partial(
                training_request,
                options,
                services.settings,
                services.storage,
                model_name=name,
                model_directory=model_dir,
            )
        )
        record, _ = await run_in_threadpool(
            functools.partial(
                services.jobs.submit, params, lock_scope=training_scope(model_dir, name)
            )
        )
        result = TrainingResult.model_validate(await outcome(services, record))
        await run_in_threadpool(services.models.refresh, model_dir, name)
        model = TrainedModel(name, result.manifest.version, record.id)
        if flavour == "azure":
            return azure.trained(name, result.report, model)
        return aws.trained(result.report, model)


@router.post("/predict", dependencies=[require(SCORE)], openapi_extra=PREDICT)
async def predict(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Score loans with the current version of ``model_name``: a CSV upload (Azure flavour;
    results also written as a new CSV under ``sample_directory``) or ``sample`` records /
    a ``csv_payload`` path (AWS flavour). Label "True" = likely default."""
    async with read_fields(request) as (flavour, fields):
        # the body is read: a big request stops at its next chunk if its client goes away
        cancel = cancellation(request)
        try:
            if flavour == "azure":
                return await azure.predict(services, fields, cancel)
            return await aws.predict(services, fields, cancel)
        finally:
            cancel.stop()
