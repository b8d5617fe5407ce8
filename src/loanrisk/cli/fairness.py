"""``loanrisk monitor fairness``: the fair-lending figures of a window of the prediction log
(docs/fairness.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import (
    JsonOpt,
    StorageOpt,
    cli_errors,
    model_ref,
    out,
    print_problems,
    settings_from,
)
from loanrisk.cli.monitor import ModelRefOpt, UntilOpt, parse_time
from loanrisk.defaults import PRODUCTION

if TYPE_CHECKING:
    from loanrisk.fairness.report import AttributeFairness, GroupFigures


def _figure(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _flags(group: GroupFigures) -> str:
    air = group.air
    if air is None:
        return "reference"
    return ", ".join(air.flags)


def fairness_table(figures: AttributeFairness, title: str) -> Table:
    """One attribute's groups: loans, approval rate, AIR with its interval and p-value, the
    flags, the SMD of the PD with its interval, and observed and predicted default rates and
    AUC where loans have outcomes."""
    table = Table(
        "group",
        "loans",
        "approved",
        "AIR",
        "95% interval",
        "p",
        "flags",
        "SMD",
        "95% interval",
        "DR",
        "mean PD",
        "AUC",
        title=title,
        title_justify="left",
    )
    for group in [figures.reference, *figures.groups]:
        air, smd, outcomes = group.air, group.smd, group.outcomes
        table.add_row(
            group.group,
            f"{group.loans:,.0f}",
            _figure(group.approval_rate),
            _figure(air.air if air else None),
            _interval(air.low, air.high) if air else "",
            "" if air is None or air.p_value is None else f"{air.p_value:.3g}",
            _flags(group),
            _figure(smd.smd if smd else None),
            _interval(smd.low, smd.high) if smd else "",
            _figure(outcomes.observed if outcomes else None, 4),
            _figure(outcomes.predicted if outcomes else None, 4),
            _figure(outcomes.auc if outcomes else None, 4),
        )
    return table


def fairness(
    model: ModelRefOpt = f"loan-default@{PRODUCTION}",
    since: Annotated[
        str | None, typer.Option(help="Window start, ISO (default: 365 days ago).")
    ] = None,
    until: UntilOpt = None,
    attribute: Annotated[
        str | None,
        typer.Option(help="One protected attribute (default: every one the schema declares)."),
    ] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fair lending over the loans the version scored in the window: per group of each
    protected attribute the approval rate, the adverse impact ratio (AIR) against the
    reference group with its 95% interval and p-value, flagged below four fifths and when
    significant, the SMD of the PD, and where outcomes exist the observed and predicted
    default rates and the AUC (docs/fairness.md). Protected attributes are read from the
    loans as logged: send them with the loans."""
    from loanrisk.monitoring.fairness import fairness_for
    from loanrisk.monitoring.reports import BACKTEST_DAYS, window
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        start, end = window(
            parse_time(since, "--since"), parse_time(until, "--until"), days=BACKTEST_DAYS
        )
        name, ref = model_ref(model)
        report = fairness_for(
            target,
            ModelRegistry(target, target.resolve(settings.model_directory)),
            target.resolve(settings.log_directory),
            target.resolve(settings.outcome_directory),
            name,
            ref,
            since=start,
            until=end,
            max_rows=settings.monitor_max_rows,
            attribute=attribute,
        )
        print_problems(report.problems)
        if as_json:
            out.print_json(json.dumps(report.model_dump(mode="json")))
            return
        window_text = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
        for figures in report.attributes:
            title = (
                f"fairness of {name} version {report.version} on {figures.attribute!r}, "
                f"{window_text}: {report.loans:,} loans, {report.with_outcome:,} with an outcome"
            )
            out.print(fairness_table(figures, title))
            for warning in figures.warnings:
                out.print(warning, highlight=False, markup=False)
        for item in report.not_assessed:
            out.print(
                f"{item.attribute}: not assessed: {item.reason}", highlight=False, markup=False
            )
