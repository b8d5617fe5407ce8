"""``/v1/models``: train a new version (a job), list models and versions, reports, aliases."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, field_validator
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import TrainingOptions
from loanrisk.inference.scorer import servable_check
from loanrisk.monitoring.compare import MAX_AUC_DROP, guard_promotion
from loanrisk.registry.aliases import AliasRecord
from loanrisk.registry.manifest import ModelManifest
from loanrisk.registry.models import ModelRegistry, check_name
from loanrisk.reporting.card import CARD_POLICY, model_card
from loanrisk.requests import training_request
from loanrisk.service.auth import caller, require
from loanrisk.service.deps import ServicesDep
from loanrisk.service.patterns import REF
from loanrisk.service.routes.jobs import accepted
from loanrisk.serving.auth import ADMIN
from loanrisk.serving.state import Services, registry_of, training_scope
from loanrisk.storage.problems import Problem
from loanrisk.training.job import check_request

T = TypeVar("T")

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[require(ADMIN)])

ModelDir = Annotated[str | None, Query(description="Folder of the storage with models.")]
VersionRef = Annotated[
    str | None, Query(description="Version or alias (default: the served alias).")
]


class TrainBody(TrainingOptions):
    """A new version of the model: trained from scratch, or continued from an existing one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"dataset": "latest", "rounds": 500},
                {
                    "threshold": 0.15,
                    "band_cutoffs": [0.05, 0.15, 0.3],
                    "band_names": ["A", "B", "C", "D"],
                },
                {"dataset_size": 1_000_000, "continue_from": "production", "promote": True},
                {"params": {"max_depth": 6}, "early_stopping_rounds": 20},
                {
                    "master_scale": {
                        "name": "bank master scale",
                        "grades": [
                            {"name": "A", "lower": 0.0, "upper": 0.02},
                            {"name": "B", "lower": 0.02, "upper": 0.1},
                            {"name": "C", "lower": 0.1, "upper": 1.0},
                        ],
                    }
                },
                {"scaling": {"points": 600, "odds": 50, "pdo": 20}},
            ]
        },
    )


#: A dataset id as clients may name one (ids are made by processing; no paths).
DATASET_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
Reason = Annotated[
    str | None,
    Field(max_length=500, description="Why: recorded in the alias's history with the key's name."),
]


class AliasBody(BaseModel):
    # The pattern is the registry's own check (resolve), shown in the document.
    version: (
        Annotated[int, Field(ge=0, le=999_999_999)]
        | Annotated[str, Field(json_schema_extra={"pattern": REF})]
    ) = Field(description="Version number, 'vN', 'latest' or another alias.")
    reason: Reason = None
    if_not_worse: StrictBool = Field(
        False,
        description="Refuse (409, with the comparison) when the version's AUC is below the "
        "alias's version's on the same held-out split by more than max_auc_drop beyond noise "
        "(the DeLong 95% interval of the difference lies below -max_auc_drop).",
    )
    max_auc_drop: StrictFloat = Field(MAX_AUC_DROP, ge=0.0, le=1.0, description="For if_not_worse.")
    dataset: str | None = Field(
        None,
        pattern=DATASET_ID,
        description="Dataset whose test split if_not_worse compares on (default: the version's).",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _number_or_name(cls, value: object) -> object:
        """A JSON integer or a string, nothing coerced (``true`` is no version)."""
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("a version number or a name ('vN', 'latest', an alias)")
        return value

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {"version": 3, "reason": "quarterly refresh"},
                {
                    "version": 4,
                    "if_not_worse": True,
                    "max_auc_drop": 0.002,
                    "reason": "challenger after a day in the shadow",
                },
            ]
        },
    }


class ReasonBody(BaseModel):
    reason: Reason = None

    model_config = {"extra": "forbid"}


class RetireBody(ReasonBody):
    force: StrictBool = Field(
        False,
        description="Retire the alias the service serves too (refused with 409 otherwise: "
        "after a restart the service would have nothing to score with).",
    )


@router.post(
    "/{name}/versions",
    status_code=202,
    summary="Train a new version (a job)",
    responses={
        409: {
            "description": "this model is already being trained, or the dataset's splits no "
            "longer match the hashes its manifest recorded (`hash_mismatch`, naming the file)"
        }
    },
)
async def train(
    name: str, body: TrainBody, services: ServicesDep, model_directory: ModelDir = None
) -> JSONResponse:
    """Starts a training job and answers 202 with its record. One training per model at a
    time, across replicas: a second one is refused with 409 naming the running job."""
    registry = registry_of(services, model_directory)
    options = body.model_copy(
        update={"data_directory": services.storage.resolve(body.data_directory)}
    )
    params = await run_in_threadpool(
        functools.partial(
            training_request,
            options,
            services.settings,
            services.storage,
            model_name=check_name("model", name),
            model_directory=registry.root,
        )
    )
    await run_in_threadpool(check_request, params, services.storage)
    record, _ = await run_in_threadpool(
        functools.partial(
            services.jobs.submit, params, lock_scope=training_scope(registry.root, name)
        )
    )
    return accepted(record)


ProblemList = Annotated[
    list[Problem],
    Field(
        description="Stored items skipped (a corrupt alias record, a link out of the "
        "storage), each with its path and what is wrong; empty when none."
    ),
]


class ModelSummary(BaseModel):
    """A model: its complete versions, ascending, its readable aliases as stored, and the
    aliases it skipped."""

    name: str
    versions: list[int]
    aliases: dict[str, AliasRecord]
    problems: ProblemList = []


class ModelList(BaseModel):
    models: list[ModelSummary]
    problems: ProblemList = []


def _describe(registry: ModelRegistry, name: str) -> ModelSummary:
    aliases = registry.alias_listing(name)
    return ModelSummary(
        name=name,
        versions=registry.versions(name),
        aliases=aliases.records,
        problems=aliases.problems,
    )


@router.get("", summary="List models")
async def list_models(services: ServicesDep, model_directory: ModelDir = None) -> ModelList:
    """Every model with a complete version. One bad item (a corrupt alias record, a symlink
    leading out of the storage) is skipped and named in ``problems`` (and in the
    ``loanrisk_bad_items`` gauge); the rest is served."""
    registry = registry_of(services, model_directory)

    def describe_all() -> ModelList:
        found = registry.model_listing()
        models = [_describe(registry, n) for n in found.names]
        problems = found.problems + [p for m in models for p in m.problems]
        return ModelList(models=models, problems=problems)

    answer = await run_in_threadpool(describe_all)
    services.metrics.bad_items("models", answer.problems)
    return answer


@router.get("/{name}", summary="A model's versions and aliases")
async def get_model(
    name: str, services: ServicesDep, model_directory: ModelDir = None
) -> ModelSummary:
    """Its versions and readable aliases; aliases that cannot be read are in ``problems``."""
    registry = registry_of(services, model_directory)
    return await run_in_threadpool(_describe, registry, check_name("model", name))


async def _of_version(
    services: Services,
    directory: str | None,
    name: str,
    ref: str,
    read: Callable[[ModelRegistry, str, int], T],
) -> T:
    registry = registry_of(services, directory)

    def run() -> T:
        return read(registry, name, registry.resolve(check_name("model", name), ref))

    return await run_in_threadpool(run)


@router.get("/{name}/versions/{ref}", summary="A version's manifest")
async def get_version(
    name: str, ref: str, services: ServicesDep, model_directory: ModelDir = None
) -> ModelManifest:
    """``ref``: a number, ``vN``, ``latest`` or an alias (``production``)."""
    return await _of_version(services, model_directory, name, ref, ModelRegistry.manifest)


@router.get("/{name}/versions/{ref}/report", summary="A version's evaluation report")
async def get_report(
    name: str, ref: str, services: ServicesDep, model_directory: ModelDir = None
) -> dict[str, Any]:
    """Per-class precision/recall/F1, AUC, log loss, Brier, KS, confusion matrix, ROC,
    calibration (and fairness, when asked at training)."""
    report = await _of_version(services, model_directory, name, ref, ModelRegistry.report)
    return report.to_json()


@router.get(
    "/{name}/versions/{ref}/card",
    summary="A version's model card (HTML)",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "A self-contained page."}},
)
async def get_card(
    name: str, ref: str, services: ServicesDep, model_directory: ModelDir = None
) -> HTMLResponse:
    """One self-contained HTML file: details, intended use, training data and its quality,
    the evaluation with its charts (ROC, calibration, scores by label, confusion matrix,
    features by gain), fairness, limitations and the monitoring plan. Inline images only:
    it reads offline and prints to PDF."""
    return await card_response(services, registry_of(services, model_directory), name, ref)


async def card_response(
    services: Services, registry: ModelRegistry, name: str, ref: str
) -> HTMLResponse:
    """A version's model card, under a policy that lets it load nothing."""
    html = await run_in_threadpool(
        model_card, registry, check_name("model", name), ref, services.settings
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": CARD_POLICY})


@router.put(
    "/{name}/aliases/{alias}",
    summary="Point an alias at a version (promote)",
    responses={409: {"description": "the version cannot be served (corrupt, unloadable)"}},
)
async def promote(
    name: str,
    alias: str,
    body: AliasBody,
    request: Request,
    services: ServicesDep,
    model_directory: ModelDir = None,
) -> AliasRecord:
    """The version is verified first (file hashes, loading, the oneDAL parity check, one
    loan scored): a version that cannot be served is refused with 409 and the alias stays.
    With ``if_not_worse``, a version the same held-out loans show worse than the alias's by
    more than ``max_auc_drop`` (the DeLong 95% interval of the difference below it) is
    refused with 409 and the comparison. The move is recorded with the key's name and the
    reason. Every replica following this alias swaps to the version within the reload
    interval."""
    registry = registry_of(services, model_directory)
    name, alias = check_name("model", name), check_name("alias", alias)

    def guarded() -> AliasRecord:
        if body.if_not_worse:
            guard_promotion(
                services.storage,
                registry,
                services.settings,
                name,
                registry.resolve(name, body.version),
                alias,
                max_auc_drop=body.max_auc_drop,
                dataset=body.dataset,
            )
        return registry.promote(
            name,
            body.version,
            alias,
            check=servable_check(services.settings),
            by=caller(request),
            reason=body.reason,
        )

    result = await run_in_threadpool(guarded)
    await run_in_threadpool(services.models.refresh, registry.root, name)
    return result


@router.post("/{name}/aliases/{alias}/rollback", summary="Move an alias back")
async def rollback(
    name: str,
    alias: str,
    request: Request,
    services: ServicesDep,
    body: ReasonBody | None = None,
    model_directory: ModelDir = None,
) -> AliasRecord:
    """Back to the version the alias pointed at before its last move (recorded with the
    key's name and the reason). A corrupt record is replaced when its previous version can
    still be read from it; otherwise 409 (point the alias at a version with PUT)."""
    check = servable_check(services.settings)
    return await _change_alias(
        services,
        model_directory,
        name,
        alias,
        lambda registry, model, to: registry.rollback(
            model, to, check=check, by=caller(request), reason=body.reason if body else None
        ),
    )


@router.post(
    "/{name}/aliases/{alias}/retire",
    summary="Retire an alias (discard a challenger)",
    responses={
        409: {
            "description": "the alias is retired already, or it is the one the service "
            "serves (and force is not set)"
        }
    },
)
async def retire(
    name: str,
    alias: str,
    request: Request,
    services: ServicesDep,
    body: RetireBody | None = None,
    model_directory: ModelDir = None,
) -> AliasRecord:
    """The alias resolves to nothing from now on: replicas stop shadow or canary scoring
    with it within the reload interval. Its history stays; a rollback brings it back. The
    alias the service serves (its model's ``LOANRISK_MODEL_ALIAS``) is refused with 409
    unless ``force`` is set."""
    settings = services.settings
    return await _change_alias(
        services,
        model_directory,
        name,
        alias,
        lambda registry, model, to: registry.retire(
            model,
            to,
            by=caller(request),
            reason=body.reason if body else None,
            served=settings.model_alias if model == settings.model_name else None,
            force=body.force if body else False,
        ),
    )


async def _change_alias(
    services: Services,
    directory: str | None,
    name: str,
    alias: str,
    change: Callable[[ModelRegistry, str, str], AliasRecord],
) -> AliasRecord:
    """Apply ``change(registry, model, alias)`` off the loop, then follow it on this replica
    at once (the others within their reload interval)."""
    registry = registry_of(services, directory)
    model = check_name("model", name)
    result = await run_in_threadpool(change, registry, model, check_name("alias", alias))
    await run_in_threadpool(services.models.refresh, registry.root, model)
    return result
