"""The AWS flavour of the reference's routes: JSON naming an allowed ``bucket`` and keys in it
(``backend: s3``) or local paths (``backend: local``); answers keyed ``msg``."""

from __future__ import annotations

import functools
from typing import Any

from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import check_size
from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.inference.results import decline_json
from loanrisk.registry.report import EvaluationReport
from loanrisk.service.routes.reference.common import (
    CLASSES,
    TrainedModel,
    inline_notices,
    process,
    score_stored,
)
from loanrisk.service.routes.reference.fields import ReferenceFields
from loanrisk.serving.cancel import Cancellation
from loanrisk.serving.scoring import score_records
from loanrisk.serving.state import Services

INFERRED = "Model Inference Complete"


def folder(
    services: Services, doc: ReferenceFields, key: str | None, local: str | None, default: str
) -> str:
    """The folder a request names: ``key`` in an allowed bucket (backend s3) or the ``local``
    path (backend local)."""
    where = services.locations
    if doc.backend == "local" and local:
        return where.inside("", local, default)
    where.bucket(doc.bucket)
    return where.inside("", key, default)


def folders(services: Services, doc: ReferenceFields) -> tuple[str, str]:
    """The data and model folders a request names."""
    return (
        folder(services, doc, doc.data_key, doc.local_data_path, "data"),
        folder(services, doc, doc.model_key, doc.local_model_path, "model"),
    )


async def data(services: Services, doc: ReferenceFields) -> dict[str, Any]:
    """Process the raw CSV at ``key`` of an allowed ``bucket`` (or at ``local_path``) into
    ``target_path`` (default: the key's folder)."""
    where = services.locations
    local = doc.backend == "local"
    field = "local_path" if local else "key"
    if not local:
        where.bucket(doc.bucket)
    raw = doc.local_path if local else doc.key
    if raw is None:
        raise InvalidInput(f"{field} names the raw CSV", details={"field": field})
    source = where.inside("", raw, raw)
    if not await run_in_threadpool(services.storage.exists, source):
        raise InvalidInput(f"no raw CSV at {source!r}", details={"field": field})
    parent = source.rsplit("/", 1)[0] if "/" in source else ""
    directory = where.inside("", doc.target_path, parent or "data")
    name = source.rsplit("/", 1)[-1]
    size = check_size(doc.size, services.settings)
    body = await process(services, source, name, directory=directory, size=size, staged=False)
    message = f"{name} successfully processed and saved"
    return {"msg": message, "Message": message, **body}


def trained(report: EvaluationReport, model: TrainedModel) -> dict[str, Any]:
    classes = report.classification_report.model_dump(mode="json")
    scores = {k: classes[k] for k in CLASSES if k in classes}
    return {
        "msg": "Model trained succesfully",
        "validation scores": {**scores, "auc": report.auc},
        "model": model.to_json(),
    }


async def predict(
    services: Services, doc: ReferenceFields, cancel: Cancellation | None = None
) -> dict[str, Any]:
    """Score ``sample`` (loans) or the stored CSV ``csv_payload`` (into a new results file,
    answering its first ``max_inline_rows`` rows). With ``decline_reasons`` (ours), the
    answer adds what each declined loan's notice states: per sample ``[{code, reason}]``;
    per CSV row the results file's ``decline_codes`` and ``decline_reasons`` text. Once
    ``cancel`` is set (the client went away), the scoring stops at its next chunk."""
    where = services.locations
    _, model_dir = folders(services, doc)
    where.inside("", doc.preprocessor_path, "")  # confined, unused: the model has its spec
    name = doc.model_name or services.settings.model_name
    csv_payload = doc.csv_payload
    sample = doc.sample
    if csv_payload is not None:
        where.bucket(doc.bucket)
        path = where.inside("", csv_payload, csv_payload)
    else:
        if not sample:
            raise InvalidInput(
                "send 'sample' (a list of loans) or 'csv_payload'", details={"field": "sample"}
            )
        if len(sample) > services.settings.max_records:
            raise TooLarge(f"{len(sample)} loans: at most {services.settings.max_records}")
    cache = await run_in_threadpool(services.models.cache_of, model_dir, name)
    if csv_payload is not None:
        if cancel is not None:
            cancel.watch()  # scored off the loop, where the core cannot start it
        stored = await run_in_threadpool(
            functools.partial(
                score_stored,
                services,
                cache,
                path,
                decline_reasons=doc.decline_reasons,
                cancel=cancel,
            )
        )
        frame = stored.head
        version = stored.summary.scorer.version
        services.metrics.predicted_batch(name, version, stored.summary)
        pairs = [
            [str(bool(label)), float(p)]
            for label, p in zip(frame["label"], frame["probability"], strict=True)
        ]
        notices = inline_notices(frame) if doc.decline_reasons else {}
        return {
            "msg": INFERRED,
            "Prediction Output": pairs,
            **stored.describe(),
            **notices,
            "model": {"name": name, "version": version},
        }
    answer = await score_records(
        services,
        cache,
        cache.snapshot(),
        sample or [],
        source="reference",
        decline_reasons=doc.decline_reasons,
        cancel=cancel,
    )
    results = answer.result.results
    declined = (
        {"decline_reasons": [[decline_json(d) for d in r.decline_reasons or ()] for r in results]}
        if doc.decline_reasons
        else {}
    )
    canary = (  # which version answered each pair
        {
            "canary": {"name": name, "version": answer.canary.version},
            "versions": [r.version for r in results],
        }
        if answer.canary is not None
        else {}
    )
    return {
        "msg": INFERRED,
        "Prediction Output": [[str(r.label), r.probability] for r in results],
        **declined,
        **canary,
        "model": {"name": name, "version": answer.champion.version},
    }
