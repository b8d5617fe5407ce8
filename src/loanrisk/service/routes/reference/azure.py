"""The Azure flavour of the reference's routes: multipart forms naming the file-share mount
(``az_file_path``) and folders inside it; answers keyed ``Message``."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import check_size
from loanrisk.errors import InvalidInput
from loanrisk.registry.report import ClassificationReport, EvaluationReport
from loanrisk.service.routes.reference.common import (
    CLASSES,
    TrainedModel,
    inline_notices,
    process,
    score_into,
)
from loanrisk.service.routes.reference.fields import ReferenceFields
from loanrisk.serving import uploads
from loanrisk.serving.cancel import Cancellation
from loanrisk.serving.locations import unique_stamp
from loanrisk.serving.state import Services


def folders(services: Services, form: ReferenceFields) -> tuple[str, str]:
    """The data and model folders a form names, inside the mount."""
    where = services.locations
    root = where.mount(form.az_file_path)
    data_dir = where.inside(root, form.data_directory, "data")
    model_dir = where.inside(root, form.model_directory, "models")
    return data_dir, model_dir


async def data_processing(services: Services, form: ReferenceFields) -> dict[str, Any]:
    data_dir, _ = folders(services, form)
    size = check_size(form.size, services.settings)
    source, name = await uploads.stage(form.file, services.storage, services.settings.job_directory)
    body = await process(services, source, name, directory=data_dir, size=size, staged=True)
    return {"Message": f"{name} successfully processed and saved", **body}


def _metric_by_class(report: ClassificationReport) -> dict[str, dict[str, float]]:
    """The Azure flavour's "Validation Scores": metric -> class (a report table's rows)."""
    rows = report.model_dump()
    table = pd.DataFrame({k: rows[k] for k in CLASSES if k in rows})
    return {
        str(metric): {str(k): float(v) for k, v in row.items()}
        for metric, row in table.to_dict(orient="index").items()
    }


def trained(name: str, report: EvaluationReport, model: TrainedModel) -> dict[str, Any]:
    return {
        "Message": f"{name} model succesfully trained and saved",
        "Validation Scores": _metric_by_class(report.classification_report),
        "auc": report.auc,
        "model": model.to_json(),
    }


async def predict(
    services: Services, form: ReferenceFields, cancel: Cancellation | None = None
) -> dict[str, Any]:
    """Score the uploaded CSV into a new results file under ``sample_directory``; answer the
    first rows (``max_inline_rows``) in the reference's shape, and where the rest are. With
    ``decline_reasons`` (ours), the file has ``decline_codes`` and ``decline_reasons`` columns
    and the answer adds them by row, as ``Prediction Output``'s columns are. Once ``cancel``
    is set (the client went away), the scoring stops at its next chunk."""
    where = services.locations
    root = where.mount(form.az_file_path)
    _, model_dir = folders(services, form)
    name = form.model_name or services.settings.model_name
    samples = await run_in_threadpool(
        where.results_folder,
        where.inside(root, form.sample_directory, "samples"),
        "sample_directory",
    )
    upload = form.file
    if upload is None:
        raise InvalidInput("'file' must be a CSV upload", details={"field": "file"})
    cache = await run_in_threadpool(services.models.cache_of, model_dir, name)
    path = services.storage.join(samples, f"predictions-{unique_stamp()}.csv")
    if cancel is not None:
        cancel.watch()  # scored off the loop, where the core cannot start it
    scored = await run_in_threadpool(
        functools.partial(
            score_into,
            services,
            cache,
            upload.file,
            path,
            inline=services.settings.max_inline_rows,
            decline_reasons=form.decline_reasons,
            cancel=cancel,
        )
    )
    version = scored.summary.scorer.version
    services.metrics.predicted_batch(name, version, scored.summary)
    results = scored.head
    index = [str(i) for i in range(len(results))]
    notices = (
        {k: dict(zip(index, v, strict=True)) for k, v in inline_notices(results).items()}
        if form.decline_reasons
        else {}
    )
    return {
        "Message": "Model Inference Complete",
        "Prediction Output": {
            "Probability": dict(zip(index, map(float, results["probability"]), strict=True)),
            "Prediction": dict(zip(index, (str(bool(v)) for v in results["label"]), strict=True)),
        },
        **scored.describe(),
        **notices,
        "model": {"name": name, "version": version},
    }
