"""``loanrisk models``: list and inspect versions, a version's model card, compare two, promote
(guarded or not), roll back, and retire an alias."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from enum import StrEnum
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
from loanrisk.cli.monitor import parse_time
from loanrisk.defaults import MAX_AUC_DROP, PRODUCTION
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.fairness.paired import FairnessComparison
    from loanrisk.monitoring.compare import Comparison
    from loanrisk.registry.aliases import AliasRecord
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.settings import Settings

models_app = typer.Typer(
    no_args_is_help=True,
    help="List, inspect, compare, promote, roll back and retire model versions.",
)


AliasOpt = Annotated[str, typer.Option(help="Alias to move.")]


ReasonOpt = Annotated[
    str | None, typer.Option(help="Why: recorded in the alias's history with who did it.")
]


class ExportFormat(StrEnum):
    mlflow = "mlflow"
    scorecard = "scorecard"


def _registry(settings: Settings, model_directory: str) -> ModelRegistry:
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    return ModelRegistry(open_storage(settings), model_directory)


def _print_alias(model: str, alias: str, record: AliasRecord) -> None:
    out.print(f"{model}: {alias} -> version {record['version']} (was {record['previous']})")


def cli_user() -> str:
    """Who runs this command, for an alias's history: ``user@host (cli)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a name
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (cli)"


@models_app.command("list")
def models_list(storage: StorageOpt = None, model_directory: ModelDirOpt = "models") -> None:
    """Every model with its versions and aliases. A stored item that cannot be read (a
    corrupt alias record, a symlink leading out of the storage) is skipped, with one line
    on stderr naming it."""
    with cli_errors():
        registry = _registry(settings_from(storage=storage), model_directory)
        table = Table("model", "versions", "latest", "aliases")
        found = registry.model_listing()
        problems = list(found.problems)
        for name in found.names:
            versions = registry.versions(name)
            listing = registry.alias_listing(name)
            problems.extend(listing.problems)
            aliases = ", ".join(
                f"{a} -> {r['version'] if r['version'] is not None else 'retired'}"
                for a, r in listing.records.items()
            )
            table.add_row(name, str(len(versions)), str(versions[-1]), aliases)
        out.print(table)
        print_problems(problems)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version number or alias.")] = "latest",
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """A version's manifest, points scaling and evaluation report, as JSON."""
    with cli_errors():
        registry = _registry(settings_from(storage=storage), model_directory)
        number = registry.resolve(model, version)
        doc = {
            "manifest": registry.manifest(model, number).model_dump(mode="json"),
            "scaling": registry.scaling(model, number).model_dump(mode="json"),
            "report": registry.report(model, number).to_json(),
        }
        out.print_json(json.dumps(doc))


@models_app.command("card")
def models_card(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS (default alias: production).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the card here \\[stdout].")
    ] = None,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """A version's model card: one self-contained HTML file (inline charts, no external
    requests) with its details, data, evaluation, fairness, limitations and monitoring plan."""
    from loanrisk.reporting.card import model_card

    with cli_errors():
        settings = settings_from(storage=storage)
        name, version = model_ref(ref)
        html = model_card(_registry(settings, model_directory), name, version, settings)
        if output is None:
            sys.stdout.write(html)
            return
        try:
            output.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
        err.print(f"model card of {name}@{version} written to {output}", highlight=False)


@models_app.command("export")
def models_export(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS (default alias: production).")],
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory to write.")],
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="What to write: an MLflow model, or a scorecard's points table (CSV, HTML) "
            "and SQL.",
        ),
    ] = ExportFormat.mlflow,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """Write a version in another tool's format. ``mlflow``: an MLflow model whose
    python_function flavour scores raw loans as loanrisk does, with an xgboost flavour beside
    it (needs the mlflow extra). ``scorecard`` (a scorecard version only): points.csv,
    points.html, and score.sql / probability.sql, SQL expressions that score a loan in a
    database as the scorer does (docs/scorecard.md#export)."""
    with cli_errors():
        settings = settings_from(storage=storage)
        name, version = model_ref(ref)
        registry = _registry(settings, model_directory)
        if export_format is ExportFormat.scorecard:
            from loanrisk.reporting.scorecard_export import export_scorecard

            done = export_scorecard(registry, name, version, directory)
            err.print(
                f"{name}@{done.version} written to {done.directory} as a scorecard: "
                f"{', '.join(done.files)}",
                highlight=False,
            )
            return
        from loanrisk.interop.mlflow_model import export_mlflow

        written = export_mlflow(registry, name, version, directory, settings)
        err.print(f"{name}@{version} written to {written} as an MLflow model", highlight=False)


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version number (or alias) to promote.")],
    alias: AliasOpt = PRODUCTION,
    reason: ReasonOpt = None,
    if_not_worse: Annotated[
        bool,
        typer.Option(
            "--if-not-worse",
            help="Refuse when the version's AUC is below the alias's version's on the same "
            "held-out split by more than --max-auc-drop beyond noise (the DeLong 95% "
            "interval of the difference lies below -max-auc-drop).",
        ),
    ] = False,
    max_auc_drop: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="AUC drop --if-not-worse tolerates.")
    ] = MAX_AUC_DROP,
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset whose held-out split --if-not-worse uses \\[the version's]."),
    ] = None,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """Point an alias (production) at a version; with --if-not-worse only when the
    held-out loans do not show it worse than the alias's version by more than the allowed
    drop."""
    from loanrisk.inference.scorer import servable_check
    from loanrisk.monitoring.compare import guard_promotion

    with cli_errors():
        settings = settings_from(storage=storage)
        registry = _registry(settings, model_directory)
        if if_not_worse:
            target = registry.resolve(model, version)
            checked = guard_promotion(
                registry.storage,
                registry,
                settings,
                model,
                target,
                alias,
                max_auc_drop=max_auc_drop,
                dataset=dataset,
            )
            if checked is not None:
                low, high = checked.auc_difference.ci95
                err.print(
                    f"held-out AUC {checked.b.auc:.4f} against "
                    f"{checked.a.auc:.4f} on {checked.rows:,} loans of dataset "
                    f"{checked.dataset}: 95% interval of the difference "
                    f"[{low:+.4f}, {high:+.4f}], not below -{max_auc_drop:g}: "
                    "not worse",
                    highlight=False,
                )
        record = registry.promote(
            model, version, alias, check=servable_check(settings), by=cli_user(), reason=reason
        )
        _print_alias(model, alias, record)


@models_app.command("rollback")
def models_rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = PRODUCTION,
    reason: ReasonOpt = None,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """Move an alias back to the version it pointed at before."""
    from loanrisk.inference.scorer import servable_check

    with cli_errors():
        registry = _registry(settings := settings_from(storage=storage), model_directory)
        record = registry.rollback(
            model, alias, check=servable_check(settings), by=cli_user(), reason=reason
        )
        _print_alias(model, alias, record)


@models_app.command("retire")
def models_retire(
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="Alias to retire (e.g. challenger).")],
    reason: ReasonOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Retire it even if it is the alias the service serves (LOANRISK_MODEL_ALIAS).",
        ),
    ] = False,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """Unset an alias (discard a challenger): shadow and canary stop using it within the
    reload interval; its history stays, and a rollback brings it back. The alias the
    service serves is refused unless --force: after a restart it would have nothing to
    score with."""
    with cli_errors():
        settings = settings_from(storage=storage)
        registry = _registry(settings, model_directory)
        served = settings.model_alias if model == settings.model_name else None
        record = registry.retire(
            model, alias, by=cli_user(), reason=reason, served=served, force=force
        )
        out.print(f"{model}: {alias} retired (was version {record['previous']})")


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"


def _air(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    interval = "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}{interval}"


def _print_airs(fairness: FairnessComparison, a: int, b: int) -> None:
    """Each protected group's AIR under both versions, with the difference."""
    table = Table(
        "attribute",
        "group (vs reference)",
        f"AIR version {a} (95%)",
        f"AIR version {b} (95%)",
        "AIR difference (b - a)",
        title=(
            f"adverse impact ratio of approvals (version {a} at PD <= "
            f"{fairness.threshold_a:g}, version {b} at PD <= {fairness.threshold_b:g})"
        ),
        title_justify="left",
    )
    for g in fairness.groups:
        table.add_row(
            g.attribute,
            f"{g.group} (vs {g.reference})",
            _air(g.a.air, g.a.low, g.a.high),
            _air(g.b.air, g.b.low, g.b.high),
            "-" if g.difference is None else f"{g.difference:+.3f}",
        )
    out.print(table)
    for attribute, reason in fairness.not_assessed.items():
        out.print(f"{attribute}: not compared ({reason})", highlight=False)


def _print_comparison(report: Comparison) -> None:
    a, b = report.a, report.b
    held = report.held_out
    if held is None:
        out.print(f"held out: not compared ({report.held_out_problem})")
    else:
        sampled = f" (a sample of {held.sampled_from:,})" if held.sampled_from else ""
        out.print(f"held out: {held.rows:,} test loans of dataset {held.dataset}{sampled}")
        table = Table("", f"version {a}", f"version {b}")
        for metric, first, second in (
            ("AUC", held.a.auc, held.b.auc),
            ("Brier", held.a.brier, held.b.brier),
            ("KS", held.a.ks, held.b.ks),
        ):
            table.add_row(metric, _number(first), _number(second))
        table.add_row("AUC 95% (DeLong)", _interval(held.a.auc_ci95), _interval(held.b.auc_ci95))
        out.print(table)
        d = held.auc_difference
        low, high = d.ci95
        out.print(
            f"AUC difference (b - a): {d.b_minus_a:+.4f}, 95% interval "
            f"[{low:+.4f}, {high:+.4f}], p = {d.p_value:.3g} ({d.method})"
        )
        if held.fairness is not None:
            _print_airs(held.fairness, a, b)
    live = report.live
    since, until = (f"{moment:%Y-%m-%d %H:%M}" for moment in (live.since, live.until))
    out.print(
        f"\nlive, {since} to {until} UTC: {live.loans:,} loans scored by both "
        f"(version {a} scored {live.scored.a:,}, version {b} "
        f"{live.scored.b:,})"
    )
    if live.loans:
        flips = live.flips
        out.print(f"  agreement {live.agreement:.2%} at threshold {live.threshold}")
        out.print(
            f"  flips: {flips.a_approves_b_declines:,} approved by {a} and declined "
            f"by {b}; {flips.a_declines_b_approves:,} declined by {a} and approved "
            f"by {b}"
        )
        diff = live.abs_difference
        out.print(
            f"  probability PSI {live.probability_psi:.4f}; absolute difference mean "
            f"{diff.mean:.4f}, max {diff.max:.4f}"
        )
    realized = live.outcomes
    out.print(
        f"  with outcomes: {realized.loans:,} loans; realized AUC "
        f"{_number(realized.a_auc) or '-'} ({a}) against "
        f"{_number(realized.b_auc) or '-'} ({b})"
    )


@models_app.command("compare")
def models_compare(
    first: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS: a (e.g. the champion).")],
    second: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS: b (the challenger).")],
    dataset: Annotated[
        str | None,
        typer.Option(help="Dataset whose test split both score (default: b's own)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Live window start, ISO (default: 30 days ago).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Live window end, ISO (default: now).")] = None,
    as_json: JsonOpt = False,
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
) -> None:
    """Two versions on held-out loans (AUC, Brier, KS, the AUC difference's DeLong interval,
    each protected group's adverse impact ratio under both) and on the live log (agreement,
    flipped decisions, score PSI, realized AUC)."""
    from loanrisk.monitoring.compare import Versions, compare
    from loanrisk.monitoring.reports import window

    with cli_errors():
        settings = settings_from(storage=storage)
        registry = _registry(settings, model_directory)
        (name, ref_a), (other, ref_b) = model_ref(first), model_ref(second)
        if name != other:
            raise InvalidInput(f"compare two versions of one model, not {name!r} and {other!r}")
        versions = Versions(name, registry.resolve(name, ref_a), registry.resolve(name, ref_b))
        start, end = window(parse_time(since, "--since"), parse_time(until, "--until"))
        report = compare(
            registry.storage,
            settings,
            versions,
            registry=registry,
            dataset=dataset,
            since=start,
            until=end,
        )
        if as_json:
            out.print_json(json.dumps(report.model_dump(mode="json")))
        else:
            _print_comparison(report)
