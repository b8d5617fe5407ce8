"""The Azure flavour of the reference's routes: multipart forms naming the file-share mount
(``az_file_path``) and folders inside it; answers keyed ``Message``."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from loanrisk.errors import InvalidInput
from loanrisk.service import uploads
from loanrisk.service.locations import given, unique_stamp
from loanrisk.service.routes.reference.common import CLASSES, count, process, score_into, size_of
from loanrisk.service.state import Services


def folders(services: Services, form: dict[str, Any]) -> tuple[str, str]:
    """The data and model folders a form names, inside the mount."""
    where = services.locations
    root = where.mount(given(form.get("az_file_path")))
    data_dir = where.inside(root, given(form.get("data_directory")), "data")
    model_dir = where.inside(root, given(form.get("model_directory")), "models")
    return data_dir, model_dir


async def data_processing(services: Services, form: dict[str, Any]) -> dict[str, Any]:
    data_dir, _ = folders(services, form)
    size = size_of(form.get("size"), services.settings)
    source, name = await uploads.stage(
        form.get("file"), services.storage, services.settings.job_directory
    )
    body = await process(services, source, name, directory=data_dir, size=size, staged=True)
    return {"Message": f"{name} successfully processed and saved", **body}


def _metric_by_class(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The Azure flavour's "Validation Scores": metric -> class (a report table's rows)."""
    table = pd.DataFrame({k: report[k] for k in CLASSES if k in report})
    return {
        str(metric): {str(k): float(v) for k, v in row.items()}
        for metric, row in table.to_dict(orient="index").items()
    }


def trained(name: str, report: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    return {
        "Message": f"{name} model succesfully trained and saved",
        "Validation Scores": _metric_by_class(report["classification_report"]),
        "auc": float(report["auc"]),
        "model": model,
    }


async def predict(services: Services, form: dict[str, Any]) -> dict[str, Any]:
    """Score the uploaded CSV into a new results file under ``sample_directory``; answer the
    first rows (``max_inline_rows``) in the reference's shape, and where the rest are."""
    where = services.locations
    root = where.mount(given(form.get("az_file_path")))
    _, model_dir = folders(services, form)
    name = given(form.get("model_name")) or services.settings.model_name
    samples = await run_in_threadpool(
        where.results_folder,
        where.inside(root, given(form.get("sample_directory")), "samples"),
        "sample_directory",
    )
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("'file' must be a CSV upload", details={"field": "file"})
    scorer = await run_in_threadpool(services.models.scorer_of, model_dir, name)
    path = services.storage.join(samples, f"predictions-{unique_stamp()}.csv")
    scored = await run_in_threadpool(
        functools.partial(score_into, services, scorer, upload.file, path,
                          inline=services.settings.max_inline_rows)
    )  # fmt: skip
    count(services, name, scorer, scored.summary)
    results = scored.head
    index = [str(i) for i in range(len(results))]
    return {
        "Message": "Model Inference Complete",
        "Prediction Output": {
            "Probability": dict(zip(index, map(float, results["probability"]), strict=True)),
            "Prediction": dict(zip(index, (str(bool(v)) for v in results["label"]), strict=True)),
        },
        **scored.describe(),
        "model": {"name": name, "version": scorer.version},
    }
