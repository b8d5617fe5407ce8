"""Monitoring routes (docs/monitoring.md): the drift of a version's logged loans, outcomes,
realized performance, and the backtest of a version per grade (docs/validation.md)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.concurrency import run_in_threadpool

from loanrisk.contracts import IsoMoment
from loanrisk.errors import TooLarge
from loanrisk.monitoring.compare import Comparison, Versions, compare
from loanrisk.monitoring.drift import DriftReport
from loanrisk.monitoring.fairness import FairnessWindowReport, fairness_for
from loanrisk.monitoring.outcomes import (
    Outcome,
    OutcomesStored,
    outcomes_frame,
    read_outcome_csv,
)
from loanrisk.monitoring.performance import PerformanceReport
from loanrisk.monitoring.points import PointsReport, points_for
from loanrisk.monitoring.reports import (
    BACKTEST_DAYS,
    add_outcomes,
    drift_for,
    outcome_values,
    performance_for,
    window,
)
from loanrisk.registry.models import check_name
from loanrisk.service.auth import require
from loanrisk.service.bodies import (
    CSV,
    JSON,
    parse_json,
    parse_model,
    require_media_type,
    spool_body,
)
from loanrisk.service.deps import ServicesDep
from loanrisk.service.routes.models import DATASET_ID, ModelDir, VersionRef
from loanrisk.serving.auth import ADMIN
from loanrisk.serving.state import Services, registry_of
from loanrisk.validation.window import BacktestReport, Window, backtest_for, previous_window

router = APIRouter(tags=["monitoring"], dependencies=[require(ADMIN)])
Since = Annotated[
    IsoMoment | None, Query(description="Window start, ISO 8601 (default: 30 days ago).")
]
Until = Annotated[IsoMoment | None, Query(description="Window end, ISO 8601 (default: now).")]
#: A report of a window of the log that names its unreadable items (``problems``).
ReportT = TypeVar("ReportT", DriftReport, PointsReport)


async def _window_report(
    build: Callable[..., ReportT],
    view: str,
    services: Services,
    name: str,
    window_of: tuple[datetime | None, datetime | None],
    version: str | None,
    model_directory: str | None,
) -> ReportT:
    """A report of a window of the log (drift, points), built off the event loop; its
    unreadable items counted under the metrics ``view``."""
    settings = services.settings
    start, end = window(*window_of)
    report = await run_in_threadpool(
        build,
        services.storage,
        registry_of(services, model_directory),
        services.storage.resolve(settings.log_directory),
        check_name("model", name),
        version or settings.model_alias,
        since=start,
        until=end,
        max_rows=settings.monitor_max_rows,
    )
    services.metrics.bad_items(view, report.problems)
    return report


@router.get(
    "/v1/models/{name}/drift",
    summary="Drift of a version's scored loans",
    response_model=DriftReport,
)
async def get_drift(
    name: str,
    services: ServicesDep,
    since: Since = None,
    until: Until = None,
    version: VersionRef = None,
    model_directory: ModelDir = None,
) -> DriftReport:
    """PSI of the probability of default (``probability``) and CSI of each feature, worst
    first, for the loans the version
    scored in ``[since, until)`` against its training profile; each with its band (< 0.1
    stable, 0.1 to 0.25 investigate, > 0.25 shift) and the shares per bin. Past
    ``LOANRISK_MONITOR_MAX_ROWS`` loans the shares come from a uniform sample: ``rows``
    counts every loan, ``sampled`` how many were read (null: all). Log files that cannot be
    read (and a stored profile that cannot, replaced by one made from the training data) are
    skipped and named in ``problems``."""
    return await _window_report(
        drift_for, "drift", services, name, (since, until), version, model_directory
    )


@router.get(
    "/v1/models/{name}/drift/points",
    summary="Stability in points: the score and each scorecard attribute",
    response_model=PointsReport,
)
async def get_points_drift(
    name: str,
    services: ServicesDep,
    since: Since = None,
    until: Until = None,
    version: VersionRef = None,
    model_directory: ModelDir = None,
) -> PointsReport:
    """optbinning's scorecard monitoring for the loans the version scored in ``[since,
    until)``: ``system``, the PSI of the score (points) per score bin and in total against
    the development sample (the bins CART found on it at training; older versions: its
    probability bins read in points, ``source: probability``); for a scorecard version,
    ``characteristics``, per attribute the PSI over its bins and the points shift, sum of
    (actual - expected share) x bin points, largest shift first (an XGBoost version:
    ``characteristics_note`` says why none). Bands as in the drift report; sampling and
    ``problems`` as there."""
    return await _window_report(
        points_for, "points", services, name, (since, until), version, model_directory
    )


VersionOf = Annotated[str, Query(description="Version number, 'vN', 'latest' or an alias.")]


@router.get(
    "/v1/models/{name}/compare",
    summary="Compare two versions (champion, challenger)",
    response_model=Comparison,
)
async def get_comparison(
    name: str,
    a: VersionOf,
    b: VersionOf,
    services: ServicesDep,
    dataset: Annotated[
        str | None,
        Query(pattern=DATASET_ID, description="Dataset whose test split both score [b's]."),
    ] = None,
    since: Since = None,
    until: Until = None,
    model_directory: ModelDir = None,
) -> Comparison:
    """``a`` and ``b`` on a held-out split (AUC, Brier and KS of each; the AUC difference
    b - a with its DeLong 95% interval and p-value; per protected group the adverse impact
    ratio of each version's approvals and their difference b - a), on the loans both scored
    in the prediction log in ``[since, until)`` (agreement, decisions flipped at the threshold in
    each direction, PSI between the score distributions, mean and max absolute difference)
    and, where outcomes are known, the realized AUC of each on the same loans."""
    settings = services.settings
    start, end = window(since, until)
    registry = registry_of(services, model_directory)
    model = check_name("model", name)

    def run() -> Comparison:
        versions = Versions(model, registry.resolve(model, a), registry.resolve(model, b))
        return compare(
            services.storage,
            settings,
            versions,
            registry=registry,
            dataset=dataset,
            since=start,
            until=end,
            nthread=1,
        )

    report = await run_in_threadpool(run)
    return report


EXAMPLE_OUTCOME: JsonDict = {
    "loan_id": "L-1",
    "defaulted": 1,
    "observed_on": "2026-11-30",
}


class OutcomesBody(BaseModel):
    """Observed outcomes of scored loans."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"outcomes": [EXAMPLE_OUTCOME]}]},
    )

    outcomes: list[Outcome] = Field(min_length=1, description="loan_id, defaulted, observed_on.")
    model: str | None = Field(
        None,
        description="The model that scored the loans (default: the service's): its served "
        "version's label reads defaulted, its log counts unknown ids.",
    )


@router.post(
    "/v1/outcomes",
    summary="Store loan outcomes",
    response_model=OutcomesStored,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": OutcomesBody.model_json_schema()},
                CSV: {
                    "schema": {"type": "string"},
                    "example": "loan_id,defaulted,observed_on\nL-1,1,2026-11-30\n",
                },
            },
        }
    },
)
async def post_outcomes(
    request: Request,
    services: ServicesDep,
    model: Annotated[
        str | None, Query(description="CSV: the model that scored the loans (see the body's).")
    ] = None,
) -> OutcomesStored:
    """What became of scored loans (JSON ``{"outcomes": [...]}`` or a CSV with ``loan_id``,
    ``defaulted`` and ``observed_on``): stored, idempotent on the loan id (the latest upload
    wins). ``defaulted`` is a value of the model's label as its served version's schema
    declares it (e.g. ``bad``/``good``), or 1/0, true/false. Bad rows are refused with their
    row and column, the message listing the values accepted (422); loan ids the prediction
    log does not know are counted, not refused."""
    settings = services.settings
    limit = settings.max_outcome_rows
    storage = services.storage
    registry = registry_of(services, None)
    if require_media_type(request, (JSON, CSV), default=JSON) == CSV:
        name = check_name("model", model or settings.model_name)
        values = await run_in_threadpool(outcome_values, registry, name, alias=settings.model_alias)
        spool = await spool_body(request)
        try:
            outcomes = await run_in_threadpool(
                read_outcome_csv, spool, max_rows=limit, values=values
            )
        finally:
            spool.close()
    else:
        body = parse_model(OutcomesBody, parse_json(await request.body()))
        if len(body.outcomes) > limit:
            raise TooLarge(f"{len(body.outcomes):,} outcomes: at most {limit:,} at once")
        name = check_name("model", body.model or model or settings.model_name)
        values = await run_in_threadpool(outcome_values, registry, name, alias=settings.model_alias)
        outcomes = await run_in_threadpool(outcomes_frame, body.outcomes, values)
    stored = await run_in_threadpool(
        functools.partial(
            add_outcomes,
            storage,
            storage.resolve(settings.outcome_directory),
            storage.resolve(settings.log_directory),
            outcomes,
            model=name,
        )
    )
    services.metrics.bad_items("outcomes", stored.problems)
    return stored


@router.get(
    "/v1/models/{name}/performance",
    summary="Realized performance per version",
    response_model=PerformanceReport,
)
async def get_performance(
    name: str,
    services: ServicesDep,
    since: Since = None,
    until: Until = None,
) -> PerformanceReport:
    """The loans each version scored in ``[since, until)`` joined to their outcomes: how many
    have one, the realized AUC and Brier score, and per band the observed default rate
    against the mean predicted PD (from a uniform sample of ``LOANRISK_MONITOR_MAX_ROWS``
    loans past that many: ``sampled``). Log and outcome files that cannot be read are skipped
    and named in ``problems``."""
    start, end = window(since, until)
    storage, settings = services.storage, services.settings
    report = await run_in_threadpool(
        performance_for,
        storage,
        storage.resolve(settings.log_directory),
        storage.resolve(settings.outcome_directory),
        check_name("model", name),
        since=start,
        until=end,
        max_rows=settings.monitor_max_rows,
    )
    services.metrics.bad_items("performance", report.problems)
    return report


@router.get(
    "/v1/models/{name}/backtest",
    summary="Backtest of a version per grade",
    response_model=BacktestReport,
)
async def get_backtest(
    name: str,
    services: ServicesDep,
    since: Annotated[
        IsoMoment | None, Query(description="Window start, ISO 8601 (default: 365 days ago).")
    ] = None,
    until: Until = None,
    version: VersionRef = None,
    model_directory: ModelDir = None,
    segment: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="A categorical or ordinal attribute of the schema (a feature, or a "
            "kept or protected column the loans carried; not pii): the backtest per value, "
            "Benjamini-Hochberg adjusted.",
        ),
    ] = None,
    against: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Another version or alias: the migration of the window's loans from "
            "this version's grade to that one's.",
        ),
    ] = None,
    previous_since: Annotated[
        IsoMoment | None,
        Query(description="Start of an earlier window: the migration from it to this one."),
    ] = None,
    previous_until: Annotated[
        IsoMoment | None, Query(description="End of the earlier window (with previous_since).")
    ] = None,
    vintages: Annotated[
        Literal["true", "false"],
        Query(
            description="Add the vintages (cumulative default rates by origination month: "
            "the schema's declared origination date, else the scoring time; by amount too "
            "when the schema declares an amount): true or false."
        ),
    ] = "true",
) -> BacktestReport:
    """The loans the version scored in ``[since, until)`` joined to their outcomes, tested
    per grade of its master scale and for the portfolio: loans, defaults, default rate, mean
    PD, the Jeffreys, binomial and correlated binomial p-values and a traffic light per grade
    (red below 0.001, yellow below 0.05, by the Jeffreys p-value); for the portfolio also
    Hosmer-Lemeshow, Spiegelhalter, the AUC against the development AUC, Herfindahl, the
    grade PSI and the heterogeneity of adjacent grades. Counts are exact (every loan with an
    outcome, however many). Optional: ``segment`` (422 naming it if it is no categorical or
    ordinal attribute the log holds in clear), the ``vintages``, and a ``migration``
    (``against`` another version, or from ``previous_since``..``previous_until``). Log and
    outcome files that cannot be read are skipped and named in ``problems``."""
    settings = services.settings
    start, end = window(since, until, days=BACKTEST_DAYS)
    previous = previous_window(against, previous_since, previous_until)
    registry = registry_of(services, model_directory)
    storage = services.storage
    where = Window.of(storage, settings, start, end)
    report = await run_in_threadpool(
        functools.partial(
            backtest_for,
            where,
            registry,
            check_name("model", name),
            version or settings.model_alias,
            segment=segment,
            with_vintages=vintages == "true",
            against=against,
            previous=previous,
            max_rows=settings.monitor_max_rows,
        )
    )
    services.metrics.bad_items("backtest", report.problems)
    return report


@router.get(
    "/v1/models/{name}/fairness",
    summary="Fair lending: AIR, SMD, calibration and AUC per group",
    response_model=FairnessWindowReport,
)
async def get_fairness(
    name: str,
    services: ServicesDep,
    since: Annotated[
        IsoMoment | None, Query(description="Window start, ISO 8601 (default: 365 days ago).")
    ] = None,
    until: Until = None,
    version: VersionRef = None,
    model_directory: ModelDir = None,
    attribute: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="One protected attribute of the version's schema (default: every one "
            "it declares groups for).",
        ),
    ] = None,
) -> FairnessWindowReport:
    """Fair lending over the loans the version scored in ``[since, until)`` (each once, its
    latest score): per group of each protected attribute (read from the loans as logged:
    send them with the loans), the approval rate and mean PD; against the reference group
    the adverse impact ratio (AIR) of the logged approvals with its 95% interval (Katz),
    p-value (Fisher's exact or chi-squared, as solas-ai) and flags ``four_fifths`` (AIR <
    0.8) and ``significant`` (p < 0.05), the standardized mean difference (SMD) of the PD
    with its interval and p-value; where loans have outcomes, the observed default rate, the
    mean PD and the AUC per group. Proxy probabilities give weighted figures
    (docs/fairness.md). Past ``LOANRISK_MONITOR_MAX_ROWS`` log rows a uniform sample is
    measured (``sampled``). An attribute the loans do not carry is in ``not_assessed``; one
    the schema declares no groups for is a 422 naming ``attribute``. Unreadable log and
    outcome files are skipped and named in ``problems``; the ``loanrisk_air`` gauges take
    the report's ratios."""
    settings = services.settings
    start, end = window(since, until, days=BACKTEST_DAYS)
    storage = services.storage
    report = await run_in_threadpool(
        functools.partial(
            fairness_for,
            storage,
            registry_of(services, model_directory),
            storage.resolve(settings.log_directory),
            storage.resolve(settings.outcome_directory),
            check_name("model", name),
            version or settings.model_alias,
            since=start,
            until=end,
            max_rows=settings.monitor_max_rows,
            attribute=attribute,
        )
    )
    services.metrics.fairness(report)
    return report
