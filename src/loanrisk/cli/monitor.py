"""``loanrisk monitor`` (drift, realized performance, backtest) and ``loanrisk outcomes add``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import (
    JsonOpt,
    ModelDirOpt,
    StorageOpt,
    cli_errors,
    err,
    model_ref,
    out,
    print_problems,
    settings_from,
)
from loanrisk.defaults import PRODUCTION
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.monitoring.drift import DriftReport
    from loanrisk.monitoring.points import PointsReport
    from loanrisk.validation.window import BacktestReport


monitor_app = typer.Typer(
    no_args_is_help=True, help="Drift, realized performance and backtests of the scored loans."
)


outcomes_app = typer.Typer(no_args_is_help=True, help="What became of scored loans.")


SinceOpt = Annotated[str | None, typer.Option(help="Window start, ISO (default: 30 days ago).")]


UntilOpt = Annotated[str | None, typer.Option(help="Window end, ISO (default: now).")]


NameOpt = Annotated[str, typer.Option("--model", help="Model name.")]


SaveOpt = Annotated[
    bool,
    typer.Option(
        help="Also store the report as JSON on the storage, under "
        "<log directory>/reports/ (what the daily CronJob does)."
    ),
]


ModelRefOpt = Annotated[str, typer.Option("--model", help="NAME\\[@VERSION|ALIAS].")]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option}: {text!r} is not an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window_text(since: datetime | None, until: datetime | None) -> str:
    """A report's window as its table's title states it."""
    if since and until:
        return f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    return "all logged loans"


def _table(report: DriftReport) -> Table:
    window = _window_text(report.since, report.until)
    title = f"drift of {report.model} version {report.version}, {window}: {report.rows:,} loans"
    table = Table("variable", "index", "chance (5%)", "band", title=title, title_justify="left")
    rows = ([report.probability] if report.probability else []) + report.features
    for item in rows:
        name = "probability (PSI)" if item is report.probability else item.name
        table.add_row(name, f"{item.index:.4f}", _number(item.chance), item.reading)
    if any(item.chance_only for item in rows):
        table.caption = (
            "within chance: windows this small, drawn from the training data itself, reach "
            "such an index 5% of the time; more loans are needed to call it a shift"
        )
        table.caption_justify = "left"
    return table


@monitor_app.command("drift")
def drift(
    model: ModelRefOpt = f"loan-default@{PRODUCTION}",
    since: SinceOpt = None,
    until: UntilOpt = None,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
    as_json: JsonOpt = False,
    save: SaveOpt = False,
    export_window: Annotated[
        Path | None,
        typer.Option(
            help="Also write the window's loans that have outcomes to this Parquet "
            "file, as training data for `loanrisk data process` (never over a file)."
        ),
    ] = None,
) -> None:
    """PSI of the probability of default and CSI of each feature (worst first) for a window
    of the prediction log, against the version's training profile: < 0.1 stable, 0.1-0.25
    investigate, > 0.25 shift."""
    from loanrisk.monitoring.reports import drift_for, window, window_with_outcomes
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        start, end = window(parse_time(since, "--since"), parse_time(until, "--until"))
        name, ref = model_ref(model)
        if export_window is not None and export_window.exists():
            raise InvalidInput(f"{export_window} exists: choose a new file")
        registry = ModelRegistry(target, model_directory)
        log_directory = target.resolve(settings.log_directory)
        report = drift_for(
            target,
            registry,
            log_directory,
            name,
            ref,
            since=start,
            until=end,
            max_rows=settings.monitor_max_rows,
        )
        print_problems(report.problems)
        if export_window is not None:
            rows = window_with_outcomes(
                target,
                registry,
                log_directory,
                target.resolve(settings.outcome_directory),
                name,
                ref,
                since=start,
                until=end,
            )
            rows.to_parquet(export_window, index=False)
            err.print(
                f"{len(rows):,} loans with outcomes written to {export_window}", highlight=False
            )
        if save:
            stored = f"drift-{name}-v{report.version}-{end:%Y%m%dT%H%M%SZ}.json"
            path = target.join(log_directory, "reports", stored)
            target.write_bytes(path, json.dumps(report.model_dump(mode="json"), indent=2).encode())
            err.print(f"report stored at {target.url}/{path}", highlight=False)
        if as_json:
            out.print_json(json.dumps(report.model_dump(mode="json")))
        else:
            out.print(_table(report))


def _points_table(report: PointsReport) -> Table:
    window = _window_text(report.since, report.until)
    title = (
        f"stability in points of {report.model} version {report.version} ({report.kind}), "
        f"{window}: {report.rows:,} loans"
    )
    table = Table("variable", "PSI", "band", "points shift", title=title, title_justify="left")
    if report.system is not None:
        table.add_row("score (system)", f"{report.system.psi:.4f}", report.system.band, "")
    for c in report.characteristics:
        table.add_row(c.name, f"{c.psi:.4f}", c.band, f"{c.points_shift:+.2f}")
    if report.characteristics_note:  # the whole reason is in --json
        reason = report.characteristics_note.split(":", 1)[0]
        table.caption = f"characteristic analysis: {reason} ({report.kind} version)"
    return table


@monitor_app.command("points")
def points(
    model: ModelRefOpt = f"loan-default@{PRODUCTION}",
    since: SinceOpt = None,
    until: UntilOpt = None,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
    as_json: JsonOpt = False,
) -> None:
    """Stability in points (optbinning's scorecard monitoring): the PSI of the score over
    its bins against the development sample and, for a scorecard, each attribute's PSI and
    points shift (sum of share change x bin points), largest shift first."""
    from loanrisk.monitoring.points import points_for
    from loanrisk.monitoring.reports import window
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        start, end = window(parse_time(since, "--since"), parse_time(until, "--until"))
        name, ref = model_ref(model)
        report = points_for(
            target,
            ModelRegistry(target, model_directory),
            target.resolve(settings.log_directory),
            name,
            ref,
            since=start,
            until=end,
            max_rows=settings.monitor_max_rows,
        )
        print_problems(report.problems)
        if as_json:
            out.print_json(json.dumps(report.model_dump(mode="json")))
        else:
            out.print(_points_table(report))


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _backtest_table(report: BacktestReport) -> Table:
    window = (
        f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
        if report.since and report.until
        else "all logged loans"
    )
    title = (
        f"backtest of {report.model} version {report.version}, {window}: "
        f"{report.rows:,} loans with an outcome of {report.scored:,} scored"
    )
    table = Table(
        "grade",
        "N",
        "D",
        "DR",
        "mean PD",
        "Jeffreys p",
        "light",
        title=title,
        title_justify="left",
    )
    for g in report.grades:
        table.add_row(
            g.grade,
            f"{g.loans:,}",
            f"{g.defaults:,}",
            _number(g.default_rate),
            _number(g.mean_pd),
            _p(g.jeffreys_p),
            g.light or "",
        )
    p = report.portfolio
    table.add_section()
    table.add_row(
        "portfolio",
        f"{p.loans:,}",
        f"{p.defaults:,}",
        _number(p.default_rate),
        _number(p.mean_pd),
        _p(p.jeffreys_p),
        p.light or "",
    )
    return table


def _portfolio_lines(report: BacktestReport) -> list[str]:
    p = report.portfolio
    lines = []
    if p.hosmer_lemeshow:
        hl = p.hosmer_lemeshow
        lines.append(f"Hosmer-Lemeshow: {hl.statistic:.4g} on {hl.df} df, p {hl.p:.4g}")
    if p.spiegelhalter:
        lines.append(f"Spiegelhalter: z {p.spiegelhalter.z:.4g}, p {p.spiegelhalter.p:.4g}")
    auc = p.auc
    if auc.current is not None:
        against = (
            f" (development {auc.development:.4f}, decline p {_p(auc.p)})"
            if auc.development is not None
            else " (no development AUC recorded)"
        )
        lines.append(f"AUC of the grades: {auc.current:.4f}{against}")
    h = p.herfindahl
    if h.index is not None:
        test = f", against development p {_p(h.p)}" if h.p is not None else ""
        lines.append(f"Herfindahl (ECB): {h.index:.4f}, CV {_p(h.cv)}{test}")
    if p.psi is not None:
        lines.append(f"PSI of the grades against development: {p.psi:.4f}")
    if report.grade_mismatches:
        lines.append(f"{report.grade_mismatches:,} logged grade(s) differ from the scale's")
    v = report.vintages
    if v is not None and v.cohorts:
        dated = "the time scored" if v.origination == "scored" else v.origination
        weighed = f" and by amount ({v.amount_column})" if v.by_amount else ""
        lines.append(
            f"Vintages: {len(v.cohorts)} origination month(s) dated by {dated}, by count"
            f"{weighed} (--json for the rates)"
        )
    return lines


@monitor_app.command("backtest")
def backtest(
    model: ModelRefOpt = f"loan-default@{PRODUCTION}",
    since: Annotated[
        str | None, typer.Option(help="Window start, ISO (default: 365 days ago).")
    ] = None,
    until: UntilOpt = None,
    segment: Annotated[
        str | None,
        typer.Option(
            help="A categorical or ordinal attribute (a feature, or a kept or protected "
            "column the loans carried): the backtest per value."
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(help="Another version: the migration of the window's loans to its grades."),
    ] = None,
    previous_since: Annotated[
        str | None, typer.Option(help="Start of an earlier window: the migration from it.")
    ] = None,
    previous_until: Annotated[str | None, typer.Option(help="End of the earlier window.")] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
    save: SaveOpt = False,
) -> None:
    """Backtest per grade of the version's master scale and for the portfolio: the loans
    scored in the window joined to their outcomes; loans N, defaults D, default rate DR, mean
    PD, the Jeffreys p-value and a traffic light (red below 0.001, yellow below 0.05), then
    the portfolio's tests (docs/validation.md)."""
    from loanrisk.monitoring.reports import BACKTEST_DAYS, window
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage
    from loanrisk.validation.window import Window, backtest_for, previous_window

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        start, end = window(
            parse_time(since, "--since"), parse_time(until, "--until"), days=BACKTEST_DAYS
        )
        previous = previous_window(
            against,
            parse_time(previous_since, "--previous-since"),
            parse_time(previous_until, "--previous-until"),
        )
        name, ref = model_ref(model)
        registry = ModelRegistry(target, target.resolve(settings.model_directory))
        where = Window.of(target, settings, start, end)
        report = backtest_for(
            where,
            registry,
            name,
            ref,
            segment=segment,
            against=against,
            previous=previous,
            max_rows=settings.monitor_max_rows,
        )
        print_problems(report.problems)
        document = report.model_dump(mode="json")
        if save:
            stored = f"backtest-{name}-v{report.version}-{end:%Y%m%dT%H%M%SZ}.json"
            path = target.join(where.log_directory, "reports", stored)
            target.write_bytes(path, json.dumps(document, indent=2).encode())
            err.print(f"report stored at {target.url}/{path}", highlight=False)
        if as_json:
            out.print_json(json.dumps(document))
        else:
            out.print(_backtest_table(report))
            for line in _portfolio_lines(report):
                out.print(line, highlight=False, markup=False)


@monitor_app.command("performance")
def performance(
    model: NameOpt = "loan-default",
    since: SinceOpt = None,
    until: UntilOpt = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Realized performance per version: the loans scored in the window joined to their
    outcomes; AUC, Brier, and the default rate against the predicted PD per band."""
    from loanrisk.monitoring.reports import performance_for, window
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        start, end = window(parse_time(since, "--since"), parse_time(until, "--until"))
        report = performance_for(
            target,
            target.resolve(settings.log_directory),
            target.resolve(settings.outcome_directory),
            model,
            since=start,
            until=end,
            max_rows=settings.monitor_max_rows,
        )
        print_problems(report.problems)
        if as_json:
            out.print_json(json.dumps(report.model_dump(mode="json")))
            return
        table = Table(
            "version",
            "scored",
            "with outcome",
            "AUC",
            "Brier",
            "default rate",
            title=f"realized performance of {model}",
            title_justify="left",
        )
        for row in report.versions:
            table.add_row(
                str(row.version),
                f"{row.scored:,}",
                f"{row.with_outcome:,}",
                _number(row.auc),
                _number(row.brier),
                _number(row.default_rate),
            )
        out.print(table)


@outcomes_app.command("add")
def add(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: loan_id, defaulted (a value of the model's label, e.g. bad/good, or "
            "1/0, true/false), observed_on."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="The model that scored the loans: its served version's label reads "
            "defaulted, its log counts unknown loan ids."
        ),
    ] = "loan-default",
    storage: StorageOpt = None,
) -> None:
    """Store observed outcomes (idempotent on the loan id; the latest upload wins). A
    defaulted value the model's label does not know refuses the file (exit 2). Loan ids the
    model's prediction log does not know are counted, not refused."""
    from loanrisk.monitoring.outcomes import read_outcome_csv
    from loanrisk.monitoring.reports import add_outcomes, outcome_values
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        if not file.is_file():
            raise InvalidInput(f"no such file: {file}")
        registry = ModelRegistry(target, target.resolve(settings.model_directory))
        values = outcome_values(registry, model, alias=settings.model_alias)
        with file.open("rb") as stream:
            outcomes = read_outcome_csv(stream, max_rows=settings.max_outcome_rows, values=values)
        counts = add_outcomes(
            target,
            target.resolve(settings.outcome_directory),
            target.resolve(settings.log_directory),
            outcomes,
            model=model,
        )
        print_problems(counts.problems)
        out.print(
            f"{counts.stored:,} outcomes stored ({counts.received:,} rows); "
            f"{counts.unknown_loans:,} name loans {model!r} has not logged",
            highlight=False,
        )


@monitor_app.command("compact")
def compact(
    model: NameOpt = "loan-default",
    storage: StorageOpt = None,
) -> None:
    """Remove the prediction-log rows older than the model's retention period
    (LOANRISK_LOG_RETENTION_DAYS, default 762: Regulation B's 25 months), then merge each
    past day's files into one (the log writes a file per process every few seconds; reading
    a month is faster from one file a day). The daily CronJob runs it."""
    from loanrisk.monitoring.log.compaction import compact_log
    from loanrisk.registry.models import check_name
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        name = check_name("model", model)
        done = compact_log(
            target,
            target.resolve(settings.log_directory),
            model=name,
            retention_days=settings.retention_days(name),
        )
        kept = done.retention
        if kept is not None:
            out.print(
                f"retention {kept.days} days (before {kept.cutoff:%Y-%m-%d %H:%M} UTC): "
                f"{kept.rows_removed:,} row(s) removed, {kept.files_deleted} file(s) deleted, "
                f"{kept.files_rewritten} rewritten",
                highlight=False,
                soft_wrap=True,
            )
            for problem in kept.problems:
                err.print(f"skipped {problem.path}: {problem.message}", highlight=False)
        out.print(
            f"{done.days} day(s) compacted, {done.files_removed} file(s) merged",
            highlight=False,
        )


@monitor_app.command("erase")
def erase(
    model: Annotated[str, typer.Option("--model", help="Model name.")],
    loan_id: Annotated[
        str, typer.Option("--loan-id", help="The loan id, exactly as scored (1-128 characters).")
    ],
    storage: StorageOpt = None,
) -> None:
    """Erase one applicant: every row of LOAN_ID in the model's prediction log and in the
    outcomes, each file rewritten atomically; an audit record keeps the id's hash, when, by
    whom and how many rows (GDPR Art. 17). Running it again completes an interrupted one."""
    import getpass
    import os
    import socket

    from pydantic import ValidationError

    from loanrisk.monitoring.log.erasure import ErasureRequest, erase_loan
    from loanrisk.registry.models import check_name
    from loanrisk.storage import open_storage

    with cli_errors():
        try:
            request = ErasureRequest(loan_id=loan_id)
        except ValidationError as exc:
            raise InvalidInput(f"--loan-id: {exc.errors()[0]['msg']}") from None
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
            user = f"uid-{os.getuid()}"
        key = settings.log_pii_key
        done = erase_loan(
            target,
            log_directory=target.resolve(settings.log_directory),
            outcome_directory=target.resolve(settings.outcome_directory),
            model=check_name("model", model),
            request=request,
            by=f"cli:{user}@{socket.gethostname()}",
            key=None if key is None else key.get_secret_value().encode(),
        )
        for problem in done.problems:
            err.print(f"skipped {problem.path}: {problem.message}", highlight=False)
        out.print(
            f"{done.rows:,} log row(s) erased from {done.files} file(s), {done.outcome_rows:,} "
            f"outcome row(s) from {done.outcome_files}; audit record {done.record}",
            highlight=False,
            soft_wrap=True,
        )
        if done.problems:
            raise typer.Exit(1)
