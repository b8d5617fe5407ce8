"""The reference system's routes, unchanged for its clients, answered in its shapes.

Both flavours share the paths: the Azure flavour sends multipart forms (``az_file_path`` is
the file-share mount), the AWS flavour JSON (``bucket``/``key`` or local paths); routes
dispatch on the content type. Responses carry the reference's keys (``Message``/``msg`` ...)
plus ours (dataset, model version, job id). Work runs as a background job the request waits
on, so the server keeps answering while it trains; paths are confined to the storage.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import IO, Any

import pandas as pd
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.inference.scorer import Scorer
from loanrisk.registry.models import check_name
from loanrisk.service import uploads
from loanrisk.service.auth import ADMIN, SCORE, require
from loanrisk.service.deps import ServicesDep
from loanrisk.service.locations import given, unique_stamp
from loanrisk.service.state import Services, training_scope
from loanrisk.service.waiting import outcome

router = APIRouter(tags=["reference-compatible"])

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
CLASSES = ("Non-Default", "Default", "accuracy", "macro avg", "weighted avg")


@router.get("/ping")
async def ping() -> dict[str, str]:
    """The reference's health check; both flavours' keys (Azure ``Message``, AWS ``message``)."""
    return {"Message": "Server is Running", "message": "Server is Running"}


@contextlib.asynccontextmanager
async def _fields(request: Request) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``("form", fields)`` for the Azure flavour, ``("json", fields)`` for the AWS one; an
    uploaded file's spool is closed when the block ends."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        async with request.form(max_files=1, max_fields=32) as form:
            yield "form", dict(form)
        return
    if content_type not in ("application/json", ""):
        raise InvalidInput(
            f"unsupported content type {content_type!r}: send a multipart form "
            "(Azure flavour) or JSON (AWS flavour)"
        )
    try:
        doc = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object of fields")
    yield "json", doc


def _size(value: object) -> int | None:
    text = given(value)
    if text is None:
        return None
    try:
        size = int(float(text))
    except ValueError:
        raise InvalidInput(
            f"size must be a whole number of rows, not {text!r}", details={"field": "size"}
        ) from None
    if size < 1:
        raise InvalidInput("size must be at least 1", details={"field": "size"})
    return size


def _flag(value: object) -> bool:
    text = (given(value) or "false").lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidInput(f"expected True or False, not {value!r}")
    return text in ("true", "1", "yes")


def _aws_folder(services: Services, doc: dict[str, Any], key: str, local: str, default: str) -> str:
    """The folder an AWS-flavour request names: ``<key>`` in an allowed bucket (backend s3)
    or the local path (backend local)."""
    where = services.locations
    if (given(doc.get("backend")) or "s3").lower() == "local" and given(doc.get(local)):
        return where.inside("", given(doc.get(local)), default)
    where.bucket(given(doc.get("bucket")))
    return where.inside("", given(doc.get(key)), default)


# -- data --------------------------------------------------------------------------------


async def _process(
    services: Services, source: str, name: str, *, directory: str, size: int | None, staged: bool
) -> dict[str, Any]:
    params = {
        "source": source,
        "source_name": name,
        "size": size,
        "directory": directory,
        "delete_source": staged,
    }
    record, _ = await run_in_threadpool(services.jobs.submit, "process_data", params)
    result = await outcome(services, record)
    manifest = result["dataset"]
    return {
        "dataset": {
            "id": manifest["id"],
            "directory": directory,
            "rows": manifest["rows"],
            "quality": manifest["quality"],
        },
        "job": record["id"],
    }


@router.post("/data_processing", dependencies=[require(ADMIN)])
async def data_processing(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Azure flavour: upload a raw loan CSV (``file``), validate, expand to ``size`` rows,
    split, fit the preprocessing; stored under ``az_file_path``/``data_directory``."""
    async with _fields(request) as (_, form):
        root = services.locations.mount(given(form.get("az_file_path")))
        directory = services.locations.inside(root, given(form.get("data_directory")), "data")
        size = _size(form.get("size"))
        upload = form.get("file")
        source, name = await uploads.stage(
            upload, services.storage, services.settings.job_directory
        )
        body = await _process(services, source, name, directory=directory, size=size, staged=True)
        return {"Message": f"{name} successfully processed and saved", **body}


@router.post("/data", dependencies=[require(ADMIN)])
async def data(request: Request, services: ServicesDep) -> dict[str, Any]:
    """AWS flavour: process the raw CSV at ``key`` of an allowed ``bucket`` (or at
    ``local_path`` with ``backend: local``) into ``target_path`` (default: the key's folder)."""
    async with _fields(request) as (_, doc):
        where = services.locations
        local = (given(doc.get("backend")) or "s3").lower() == "local"
        if local:
            raw = given(doc.get("local_path"))
            if raw is None:
                raise InvalidInput("local_path names the raw CSV", details={"field": "local_path"})
            source = where.inside("", raw, raw)
        else:
            where.bucket(given(doc.get("bucket")))
            key = given(doc.get("key"))
            if key is None:
                raise InvalidInput("key names the raw CSV in the bucket", details={"field": "key"})
            source = where.inside("", key, key)
        if not await run_in_threadpool(services.storage.exists, source):
            raise InvalidInput(
                f"no raw CSV at {source!r}", details={"field": "local_path" if local else "key"}
            )
        folder = source.rsplit("/", 1)[0] if "/" in source else ""
        directory = where.inside("", given(doc.get("target_path")), folder or "data")
        name = source.rsplit("/", 1)[-1]
        body = await _process(
            services, source, name, directory=directory, size=_size(doc.get("size")), staged=False
        )
        return {
            "msg": f"{name} successfully processed and saved",
            "Message": f"{name} successfully processed and saved",
            **body,
        }


# -- train -------------------------------------------------------------------------------


def _metric_by_class(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The Azure flavour's "Validation Scores": metric -> class (a report table's rows)."""
    table = pd.DataFrame({k: report[k] for k in CLASSES if k in report})
    return {
        str(metric): {str(k): float(v) for k, v in row.items()}
        for metric, row in table.to_dict(orient="index").items()
    }


@router.post("/train", dependencies=[require(ADMIN)])
async def train(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Train a model on a processed dataset (the one processed with ``size``, else the
    newest), or continue training the current one (``continue_training=True``); publish the
    new version and make it the one ``/predict`` uses. Waits for the training to end."""
    async with _fields(request) as (flavour, doc):
        where = services.locations
        if flavour == "form":
            root = where.mount(given(doc.get("az_file_path")))
            data_dir = where.inside(root, given(doc.get("data_directory")), "data")
            model_dir = where.inside(root, given(doc.get("model_directory")), "models")
        else:
            data_dir = _aws_folder(services, doc, "data_key", "local_data_path", "data")
            model_dir = _aws_folder(services, doc, "model_key", "local_model_path", "model")
        name = check_name("model", given(doc.get("model_name")) or services.settings.model_name)
        params = {
            "dataset_size": _size(doc.get("size")),
            "data_directory": data_dir,
            "model_directory": model_dir,
            "model_name": name,
            "promote": True,
            "continue_from": "production" if _flag(doc.get("continue_training")) else None,
            "seed": services.settings.seed,
            "threshold": services.settings.threshold,
        }
        record, _ = await run_in_threadpool(
            services.jobs.submit, "train", params, lock_scope=training_scope(model_dir, name)
        )
        result = await outcome(services, record)
        await run_in_threadpool(services.refresh_model, model_dir, name)
        report = result["report"]["classification_report"]
        auc = float(result["report"]["auc"])
        model = {"name": name, "version": result["manifest"]["version"], "job": record["id"]}
        if flavour == "form":
            return {
                "Message": f"{name} model succesfully trained and saved",
                "Validation Scores": _metric_by_class(report),
                "auc": auc,
                "model": model,
            }
        scores = {k: report[k] for k in CLASSES if k in report}
        return {
            "msg": "Model trained succesfully",
            "validation scores": {**scores, "auc": auc},
            "model": model,
        }


# -- predict -----------------------------------------------------------------------------


def _score_csv(scorer: Scorer, stream: IO[bytes]) -> tuple[pd.DataFrame, bytes]:
    """A CSV of loans scored: the results as a frame and as the CSV the scorer wrote."""
    output = io.BytesIO()
    scorer.score_csv(stream, output)
    data = output.getvalue()
    results = (
        pd.read_csv(io.BytesIO(data)) if data else pd.DataFrame({"probability": [], "label": []})
    )
    return results, data


@router.post("/predict", dependencies=[require(SCORE)])
async def predict(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Score loans with the current version of ``model_name``: a CSV upload (Azure flavour;
    results also written as a new CSV under ``sample_directory``) or ``sample`` records /
    a ``csv_payload`` path (AWS flavour). Label "True" = likely default."""
    async with _fields(request) as (flavour, doc):
        where = services.locations
        if flavour == "form":
            root = where.mount(given(doc.get("az_file_path")))
            model_dir = where.inside(root, given(doc.get("model_directory")), "models")
            name = given(doc.get("model_name")) or services.settings.model_name
            samples = await run_in_threadpool(
                where.results_folder,
                where.inside(root, given(doc.get("sample_directory")), "samples"),
                "sample_directory",
            )
            where.inside(root, given(doc.get("data_directory")), "data")  # confined, unused
            upload = doc.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("'file' must be a CSV upload", details={"field": "file"})
            scorer = await run_in_threadpool(services.scorer_of, model_dir, name)
            results, data = await run_in_threadpool(_score_csv, scorer, upload.file)
            path = services.storage.join(samples, f"predictions-{unique_stamp()}.csv")
            await run_in_threadpool(services.storage.write_bytes, path, data)
            index = [str(i) for i in range(len(results))]
            services.metrics.predicted(name, scorer.version, [bool(v) for v in results["label"]])
            return {
                "Message": "Model Inference Complete",
                "Prediction Output": {
                    "Probability": dict(
                        zip(index, map(float, results["probability"]), strict=True)
                    ),
                    "Prediction": dict(
                        zip(index, (str(bool(v)) for v in results["label"]), strict=True)
                    ),
                },
                "results_path": path,
                "model": {"name": name, "version": scorer.version},
            }
        model_dir = _aws_folder(services, doc, "model_key", "local_model_path", "model")
        for unused in ("data_key", "local_data_path", "preprocessor_path"):
            where.inside("", given(doc.get(unused)), "")  # confined, unused: the model has its spec
        name = given(doc.get("model_name")) or services.settings.model_name
        csv_payload = given(doc.get("csv_payload"))
        sample: Any = doc.get("sample")
        if csv_payload is not None:
            where.bucket(given(doc.get("bucket")))
            path = where.inside("", csv_payload, csv_payload)
        else:
            sample = [sample] if isinstance(sample, dict) else sample
            if not isinstance(sample, list) or not sample:
                raise InvalidInput(
                    "send 'sample' (a list of loans) or 'csv_payload'", details={"field": "sample"}
                )
            if len(sample) > services.settings.max_records:
                raise TooLarge(f"{len(sample)} loans: at most {services.settings.max_records}")
        scorer = await run_in_threadpool(services.scorer_of, model_dir, name)
        if csv_payload is not None:
            frame = await run_in_threadpool(_score_stored, services, scorer, path)
            pairs = [
                [str(bool(lab)), float(p)]
                for lab, p in zip(frame["label"], frame["probability"], strict=True)
            ]
        else:
            scored = await run_in_threadpool(scorer.score_records, sample)
            pairs = [[str(r["label"]), r["probability"]] for r in scored["results"]]
        services.metrics.predicted(name, scorer.version, [row[0] == "True" for row in pairs])
        return {
            "msg": "Model Inference Complete",
            "Prediction Output": pairs,
            "model": {"name": name, "version": scorer.version},
        }


def _score_stored(services: Services, scorer: Scorer, path: str) -> pd.DataFrame:
    with services.storage.open_read(path) as stream:
        return _score_csv(scorer, stream)[0]
