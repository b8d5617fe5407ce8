"""The reference system's routes, unchanged for its clients, answered in its shapes.

Both flavours share the paths: the Azure flavour sends multipart forms (``az_file_path`` is
the file-share mount), the AWS flavour JSON (``bucket``/``key`` or local paths); routes
dispatch on the content type. Responses carry the reference's keys (``Message``/``msg`` ...)
plus ours (dataset, model version, job id). Work runs as a background job the request waits
on, so the server keeps answering while it trains; paths are confined to the storage.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from loanrisk.contracts import ProcessDataJob, TrainingRequest, check_size
from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.inference.scorer import Scorer
from loanrisk.registry.models import check_name
from loanrisk.service import uploads
from loanrisk.service.auth import ADMIN, SCORE, require
from loanrisk.service.bodies import JSON, MULTIPART, URLENCODED, parse_json, require_media_type
from loanrisk.service.deps import ServicesDep
from loanrisk.service.locations import given, unique_stamp
from loanrisk.service.state import Services, training_scope
from loanrisk.service.waiting import outcome
from loanrisk.settings import Settings

router = APIRouter(tags=["reference-compatible"])

MAX_SIZE_CHARS = 40
CLASSES = ("Non-Default", "Default", "accuracy", "macro avg", "weighted avg")


@router.get("/ping")
async def ping() -> dict[str, str]:
    """The reference's health check; both flavours' keys (Azure ``Message``, AWS ``message``)."""
    return {"Message": "Server is Running", "message": "Server is Running"}


@contextlib.asynccontextmanager
async def _fields(request: Request) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``("form", fields)`` for the Azure flavour, ``("json", fields)`` for the AWS one; an
    uploaded file's spool is closed when the block ends."""
    content_type = require_media_type(request, (MULTIPART, URLENCODED, JSON), default=JSON)
    if content_type in (MULTIPART, URLENCODED):
        async with request.form(max_files=1, max_fields=32) as form:
            yield "form", dict(form)
        return
    doc = parse_json(await request.body() or b"{}")
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object of fields")
    yield "json", doc


def _size(value: object, settings: Settings) -> int | None:
    """The reference's ``size``: a whole number of rows, as a number or text ("4000000",
    "4e6", "4000000.0"), within the configured ceiling."""
    text = given(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not number.is_integer() or len(text) > MAX_SIZE_CHARS:
        raise InvalidInput(
            f"size must be a whole number of rows, not {text[:40]!r}", details={"field": "size"}
        )
    return check_size(int(number), settings)


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
    params = ProcessDataJob(
        source=source, source_name=name, size=size, directory=directory, staged=staged
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
        "job": record["id"],
    }


@router.post("/data_processing", dependencies=[require(ADMIN)])
async def data_processing(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Azure flavour: upload a raw loan CSV (``file``), validate, expand to ``size`` rows,
    split, fit the preprocessing; stored under ``az_file_path``/``data_directory``."""
    async with _fields(request) as (_, form):
        root = services.locations.mount(given(form.get("az_file_path")))
        directory = services.locations.inside(root, given(form.get("data_directory")), "data")
        size = _size(form.get("size"), services.settings)
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
            services,
            source,
            name,
            directory=directory,
            size=_size(doc.get("size"), services.settings),
            staged=False,
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
        params = TrainingRequest(
            dataset_size=_size(doc.get("size"), services.settings),
            data_directory=data_dir,
            model_directory=model_dir,
            model_name=name,
            promote=True,
            continue_from="production" if _flag(doc.get("continue_training")) else None,
            seed=services.settings.seed,
            threshold=services.settings.threshold,
        )
        record, _ = await run_in_threadpool(
            functools.partial(
                services.jobs.submit, params, lock_scope=training_scope(model_dir, name)
            )
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


@dataclass
class _Scored:
    """A CSV scored into a results file: the counts, and the first rows for the answer."""

    summary: dict[str, Any]
    head: pd.DataFrame
    path: str

    @property
    def truncated(self) -> bool:
        return len(self.head) < int(self.summary["scored"])

    def describe(self) -> dict[str, Any]:
        return {"results_path": self.path, "rows": self.summary["scored"],
                "inline_rows": len(self.head), "truncated": self.truncated}  # fmt: skip


def _score_into(
    services: Services, scorer: Scorer, stream: IO[bytes], path: str, *, inline: int
) -> _Scored:
    """Stream a CSV of loans through ``scorer`` into a new results file at ``path`` (every
    row), keeping only the first ``inline`` results in memory for the answer."""
    head: list[pd.DataFrame] = []
    kept = 0

    def keep(results: pd.DataFrame) -> None:
        nonlocal kept
        if kept < inline:
            head.append(results.iloc[: inline - kept])
            kept += len(head[-1])

    with services.storage.open_write(path) as sink:
        summary = scorer.score_csv(stream, sink, on_results=keep)
    frame = pd.concat(head) if head else pd.DataFrame({"probability": [], "label": []})
    return _Scored(summary, frame, path)


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
            path = services.storage.join(samples, f"predictions-{unique_stamp()}.csv")
            scored = await run_in_threadpool(
                functools.partial(_score_into, services, scorer, upload.file, path,
                                  inline=services.settings.max_inline_rows)
            )  # fmt: skip
            results = scored.head
            index = [str(i) for i in range(len(results))]
            _count(services, name, scorer, scored.summary)
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
                **scored.describe(),
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
        extra: dict[str, Any] = {}
        if csv_payload is not None:
            stored = await run_in_threadpool(_score_stored, services, scorer, path)
            frame = stored.head
            pairs = [
                [str(bool(lab)), float(p)]
                for lab, p in zip(frame["label"], frame["probability"], strict=True)
            ]
            _count(services, name, scorer, stored.summary)
            extra = stored.describe()
        else:
            records = await run_in_threadpool(scorer.score_records, sample)
            pairs = [[str(r["label"]), r["probability"]] for r in records["results"]]
            services.metrics.predicted(name, scorer.version, [row[0] == "True" for row in pairs])
        return {
            "msg": "Model Inference Complete",
            "Prediction Output": pairs,
            **extra,
            "model": {"name": name, "version": scorer.version},
        }


def _count(services: Services, name: str, scorer: Scorer, summary: dict[str, Any]) -> None:
    services.metrics.predicted_counts(
        name, scorer.version, scored=summary["scored"], defaults=summary["defaults"]
    )


def _score_stored(services: Services, scorer: Scorer, path: str) -> _Scored:
    """A stored CSV scored into a new file of the results area."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    output = services.locations.output(None, f"{stem}-{unique_stamp()}.csv")
    with services.storage.open_read(path) as stream:
        return _score_into(
            services, scorer, stream, output, inline=services.settings.max_inline_rows
        )
