"""``loanrisk train``: train (or continue training) a model on a dataset and publish it as a
new version, on this machine or a Dask cluster."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loanrisk.cli.common import (
    DirectoryOpt,
    ModelDirOpt,
    StorageOpt,
    cli_errors,
    err,
    fail,
    out,
    progress_bar,
    settings_from,
)
from loanrisk.defaults import DEFAULT_CALIBRATION_FRACTION
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.contracts import MlflowRun, MlflowWarning, TrainingRequest
    from loanrisk.registry.manifest import ModelManifest
    from loanrisk.registry.masterscale import MasterScale
    from loanrisk.registry.reasons import ReasonCatalog
    from loanrisk.registry.report import EvaluationReport, MonotoneCheck
    from loanrisk.registry.scaling import ScalingOptions
    from loanrisk.settings import Settings


def refuse_unpromoted(not_promoted: str | None) -> None:
    """Exit 1 when training published a version it could not promote (unservable)."""
    if not_promoted:
        fail(f"published, but not promoted: {not_promoted}", 1)


def _fairness_summary(report: EvaluationReport) -> str:
    """Each protected attribute: its privileged group and the evaluation loans in each
    group, the groups whose AIR is below four fifths, or why it was not assessed (the report
    and card have every figure)."""
    from loanrisk.schema.model import MIN_GROUP_SIZE
    from loanrisk.training.fairness import assessed

    parts = []
    for item in assessed(report):
        groups = item.groups
        sizes = f"{groups.privileged.size:,} vs {groups.non_privileged.size:,} loans"
        warned = f" (a group under {MIN_GROUP_SIZE}: noise)" if item.warnings else ""
        parts.append(f"{item.attribute} (privileged {item.privileged_value}): {sizes}{warned}")
    for attribute, measures in (report.fairness_measures or {}).items():
        flagged = measures.flagged("four_fifths")
        if flagged:
            parts.append(f"{attribute}: AIR below four fifths for {', '.join(flagged)}")
    unassessed = report.fairness_not_assessed or ()
    parts += [f"{i.attribute}: not assessed, {i.reason}" for i in unassessed]
    return "; ".join(parts)


def train_summary(manifest: ModelManifest, report: EvaluationReport, promoted: bool) -> None:
    from rich.table import Table

    classes = report.classification_report
    table = Table(
        title=f"model {manifest.name} version {manifest.version}",
        show_header=False,
        title_justify="left",
    )
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    parent = manifest.parent
    fresh = "none (new model)" if manifest.version == 1 else "none (trained from scratch)"
    table.add_row("parent", f"version {parent.version}" if parent else fresh)
    table.add_row("dataset", (manifest.dataset or {}).get("id", "?"))
    if manifest.schema_ref is not None:
        table.add_row("schema", f"{manifest.schema_ref.name} ({manifest.schema_ref.hash})")
    rounds, card = manifest.rounds, (manifest.model_extra or {}).get("scorecard") or {}
    if manifest.kind == "scorecard":
        table.add_row(
            "scorecard",
            f"{card.get('attributes', '?')} attributes, base points {card.get('base_points', '?')}",
        )
    else:
        table.add_row("rounds", f"{rounds['trained']} new, {rounds['total_trees']} trees in all")
    table.add_row("AUC", f"{report.auc:.4f}")
    table.add_row("accuracy", f"{classes.accuracy:.4f}")
    default = classes.default
    table.add_row(
        "Default",
        f"precision {default.precision:.3f}, recall "
        f"{default.recall:.3f}, f1 {default.f1_score:.3f}",
    )
    table.add_row("Brier / KS", f"{report.brier:.4f} / {report.ks:.4f}")
    matrix = report.confusion_matrix
    table.add_row(
        "threshold",
        f"{report.threshold:g}: {matrix.tp:,} defaults caught, "
        f"{matrix.fn:,} missed, {matrix.fp:,} false alarms, "
        f"{matrix.tn:,} approved right",
    )
    if report.bands:
        table.add_row(
            "bands",
            "; ".join(
                f"{b.band} [{b.range[0]:g}, {b.range[1]:g}): {b.loans:,} loans "
                f"({b.share:.1%}), default rate "
                + ("-" if b.default_rate is None else f"{b.default_rate:.1%}")
                for b in report.bands
            ),
        )
    scaling = (manifest.request or {}).get("scaling")
    if isinstance(scaling, dict):
        table.add_row(
            "points",
            f"{scaling['points']:g} at good:bad odds {scaling['odds']:g}:1, "
            f"{scaling['pdo']:g} to double the odds",
        )
    if report.grades:
        table.add_row(
            "grades",
            f"{report.master_scale or 'master scale'}: "
            + "; ".join(f"{g.grade} {g.share:.1%}" for g in report.grades if g.loans),
        )
    if manifest.kind == "scorecard":  # its bins follow the declared directions by construction
        table.add_row("monotone", "bins follow each declared direction of risk (the binning's)")
    else:
        table.add_row("monotone", _monotone_summary(report.monotonicity))
    fairness = _fairness_summary(report)
    if fairness:
        table.add_row("fairness", fairness)
    step = report.calibration_step
    if step:
        before, after = step.before, step.after
        table.add_row(
            "calibration",
            f"{step.method} on {step.fitted.rows:,} held-out "
            f"rows: Brier {before.brier:.4f} -> {after.brier:.4f}, ECE "
            f"{before.ece:.4f} -> {after.ece:.4f}",
        )
    table.add_row("timings", ", ".join(f"{k} {v:.2f}s" for k, v in manifest.timings.items()))
    table.add_row("production", "promoted" if promoted else "unchanged")
    out.print(table)


class Kind(StrEnum):
    xgboost = "xgboost"
    scorecard = "scorecard"


class Calibrate(StrEnum):
    none = "none"
    isotonic = "isotonic"
    platt = "platt"


def _calibration_fraction(value: float) -> float:
    """``--calibration-fraction``, held to ``TrainingRequest``'s bounds where it is given
    (a usage error naming the option, not a failed training)."""
    from pydantic import ValidationError

    from loanrisk.contracts import TrainingRequest

    try:
        TrainingRequest.model_validate({"calibration_fraction": value})
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from None
    return value


def _reason_catalog(path: Path) -> ReasonCatalog:
    from pydantic import ValidationError

    from loanrisk.registry.reasons import ReasonCatalog

    try:
        return ReasonCatalog.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidInput(f"{path} is not a reason catalog: {where}: {first['msg']}") from None


def master_scale_file(path: Path) -> MasterScale:
    """``--master-scale FILE``: a bank's master scale as CSV or YAML (name, lower, upper per
    grade), errors naming the file, row and field."""
    from loanrisk.registry.masterscale import MAX_SCALE_BYTES, parse_master_scale

    try:
        with path.open("rb") as file:
            data = file.read(MAX_SCALE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {path}: {exc.strerror}", details={"field": "master_scale"}
        ) from None
    scale = parse_master_scale(data, source=path.name)
    return scale


def scaling_options(
    *, points: float | None, odds: float | None, pdo: float | None
) -> ScalingOptions | None:
    """``--points``, ``--odds`` and ``--pdo`` as the scaling options of a training (None:
    none given); :class:`InvalidInput` naming the option of a value out of its bounds."""
    from pydantic import ValidationError

    from loanrisk.registry.scaling import ScalingOptions

    given = {k: v for k, v in {"points": points, "odds": odds, "pdo": pdo}.items() if v is not None}
    if not given:
        return None
    try:
        return ScalingOptions(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0])
        raise InvalidInput(
            f"--{field} {given[field]!r}: {first['msg']}", details={"field": f"scaling.{field}"}
        ) from None


def _cutoffs(text: str | None) -> list[float] | None:
    """``--band-cutoffs 0.05,0.15,0.3`` as numbers (checked as a policy by the caller)."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInput(
            f"--band-cutoffs {text!r}: comma-separated numbers, e.g. 0.05,0.15,0.3",
            details={"field": "band_cutoffs"},
        ) from None


def _names(text: str | None) -> list[str] | None:
    """``--band-names A,B,C,D`` as names, each trimmed."""
    return None if text is None else [part.strip() for part in text.split(",")]


def _monotone_summary(check: MonotoneCheck | None) -> str:
    if not check or not check.constraints:
        return "no directions of risk declared"
    broken = [name for name, feature in check.features.items() if not feature.holds]
    enforced = "enforced" if check.enforced else "not enforced"
    return f"{enforced}; " + (
        f"moves against the declared direction: {', '.join(broken)}"
        if broken
        else "every declared direction holds"
    )


def train(
    dataset: Annotated[str, typer.Option(help="Dataset id, or 'latest'.")] = "latest",
    size: Annotated[
        int | None, typer.Option(help="Use the newest dataset processed with this --size.")
    ] = None,
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
    model_directory: ModelDirOpt = "models",
    model: Annotated[str, typer.Option(help="Model name.")] = "loan-default",
    kind: Annotated[
        Kind,
        typer.Option(
            help="What to train: xgboost (gradient-boosted trees) or scorecard (a WoE "
            "logistic scorecard on the same dataset and split, docs/scorecard.md)."
        ),
    ] = Kind.xgboost,
    continue_from: Annotated[
        str | None, typer.Option(help="Continue from a version number or alias (production).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="XGBoost parameter key=value (repeatable).")
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(min=1, help="Boosting rounds to add \\[500, or the tuned trial's]."),
    ] = None,
    params_from: Annotated[
        str | None,
        typer.Option(help="A tuning study of the dataset: NAME\\[:best|:lean] (loanrisk tune)."),
    ] = None,
    early_stopping: Annotated[
        int | None, typer.Option(min=1, help="Stop after N rounds without improvement.")
    ] = None,
    promote: Annotated[
        bool | None, typer.Option("--promote/--no-promote", help="Move 'production' to it.")
    ] = None,
    protected_attribute: Annotated[
        str | None, typer.Option(help="Column for the fairness report (kept, not a feature).")
    ] = None,
    privileged_value: Annotated[
        str | None, typer.Option(help="Value of the protected attribute that is privileged.")
    ] = None,
    nthread: Annotated[int | None, typer.Option(min=1, help="Training threads.")] = None,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(help="Train on this Dask cluster (tcp://host:8786) with xgboost.dask."),
    ] = None,
    monotone: Annotated[
        bool | None,
        typer.Option(
            "--monotone/--no-monotone",
            help="Constrain the model to the schema's directions of risk \\[the setting].",
        ),
    ] = None,
    calibration: Annotated[
        Calibrate | None,
        typer.Option(help="Fit this calibration on held-out training rows \\[the setting]."),
    ] = None,
    calibration_fraction: Annotated[
        float,
        typer.Option(
            callback=_calibration_fraction,
            help="Share of the training rows held out to calibrate (above 0, below "
            "0.5); too few held-out defaults for the method are refused.",
        ),
    ] = DEFAULT_CALIBRATION_FRACTION,
    reason_catalog: Annotated[
        Path | None,
        typer.Option(help="JSON reason catalog whose entries replace the schema's derived ones."),
    ] = None,
    mlflow_tracking_uri: Annotated[
        str | None,
        typer.Option(help="Log the run to this MLflow tracking server (needs loanrisk\\[mlflow])."),
    ] = None,
    mlflow_experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment \\[the model's name].")
    ] = None,
    mlflow_register: Annotated[
        bool | None,
        typer.Option(
            "--mlflow-register/--no-mlflow-register",
            help="Also register the version in MLflow, aliases mirrored.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold recorded with the version, in (0, 1): default when the "
            "probability is over it \\[LOANRISK_THRESHOLD if set, else the parent's, else 0.5].",
        ),
    ] = None,
    band_cutoffs: Annotated[
        str | None,
        typer.Option(
            help="Risk band cut-offs recorded with the version, comma-separated and increasing "
            "(0.05,0.15,0.3) \\[as --threshold].",
        ),
    ] = None,
    band_names: Annotated[
        str | None,
        typer.Option(
            help="Risk band names, one more than the cut-offs: A,B,C,D \\[as --threshold]."
        ),
    ] = None,
    master_scale: Annotated[
        Path | None,
        typer.Option(
            help="Rating master scale recorded with the version: a CSV or YAML file of grades "
            "(name, lower, upper; PDs as 0.0015 or 0.15%) \\[the parent's, else the Pillar 3 "
            "CR6 PD ranges].",
        ),
    ] = None,
    points: Annotated[
        float | None,
        typer.Option(
            help="Scaling: points at the reference odds (0 to 100000) \\[the parent's, else 600]."
        ),
    ] = None,
    odds: Annotated[
        float | None,
        typer.Option(
            help="Scaling: the reference odds, good:bad (50 means 50 goods to 1 bad) "
            "\\[the parent's, else 50].",
        ),
    ] = None,
    pdo: Annotated[
        float | None,
        typer.Option(help="Scaling: points to double the odds \\[the parent's, else 20]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train (or continue training) a model on a dataset and publish it as a new version.

    The version records its decision policy (threshold, risk bands), its master scale
    (every scored loan's grade) and its points scaling (every scored loan's score,
    docs/scorecard.md); the service scores with the policy unless LOANRISK_THRESHOLD or
    LOANRISK_BAND_* is set (docs/scoring.md)."""
    with cli_errors():
        from loanrisk.contracts import TrainingOptions
        from loanrisk.jobs.training import train_in_subprocess
        from loanrisk.requests import training_request
        from loanrisk.storage import open_storage
        from loanrisk.training.train import RoundProgress, parse_param

        settings = settings_from(
            storage=storage,
            nthread=nthread,
            mlflow_tracking_uri=mlflow_tracking_uri,
            mlflow_experiment=mlflow_experiment,
            mlflow_register=mlflow_register,
            dask_scheduler=dask_scheduler,
        )
        given = {
            "kind": kind.value,
            "dataset": dataset,
            "dataset_size": size,
            "data_directory": directory,
            "continue_from": continue_from,
            "params": dict(parse_param(p) for p in param or []),
            "params_from": params_from,
            "rounds": rounds,
            "early_stopping_rounds": early_stopping,
            "promote": promote,
            "protected_attribute": protected_attribute,
            "privileged_value": privileged_value,
            "monotone": monotone,
            "calibration": calibration.value if calibration else None,
            "calibration_fraction": calibration_fraction,
            "reason_catalog": _reason_catalog(reason_catalog) if reason_catalog else None,
            "threshold": threshold,
            "band_cutoffs": _cutoffs(band_cutoffs),
            "band_names": _names(band_names),
            "master_scale": master_scale_file(master_scale) if master_scale else None,
            "scaling": scaling_options(points=points, odds=odds, pdo=pdo),
        }
        options = TrainingOptions(**{k: v for k, v in given.items() if v is not None})
        request = training_request(
            options,
            settings,
            open_storage(settings),
            model_name=model,
            model_directory=model_directory,
        )
        if dask_scheduler is not None and request.kind != "xgboost":
            raise InvalidInput(
                "--kind scorecard trains in one process: not on a Dask cluster",
                details={"field": "kind"},
            )
        if dask_scheduler is not None:
            from loanrisk.training.distributed import train_distributed

            err.print(f"Training on the Dask cluster at {dask_scheduler} ...")
            trained = train_distributed(request, settings, scheduler=dask_scheduler)
            manifest, report, promoted = trained.manifest, trained.report, trained.promoted
            not_promoted = trained.not_promoted
            logged = _mlflow_after_dask(settings, request, manifest)
        else:
            with progress_bar() as progress:

                def show(p: RoundProgress) -> None:
                    label = f"train (eta {p.eta:.0f}s)" if p.done < p.total else "train"
                    progress(label, p.done, p.total)

                result = train_in_subprocess(request, settings, on_progress=show)
            manifest, report, promoted = result.manifest, result.report, result.promoted
            not_promoted, logged = result.not_promoted, result.mlflow
        if as_json:
            out.print_json(manifest.model_dump_json())
        else:
            train_summary(manifest, report, promoted)
        if logged is not None:
            _print_mlflow(logged)
        refuse_unpromoted(not_promoted)


def _mlflow_after_dask(
    settings: Settings, request: TrainingRequest, manifest: ModelManifest
) -> MlflowRun | MlflowWarning | None:
    """The Dask training's MLflow run (the single-process one logs from its child)."""
    if settings.mlflow_tracking_uri is None:
        return None
    from loanrisk.interop.mlflow_run import log_training
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

    registry = ModelRegistry(open_storage(settings), request.model_directory)
    return log_training(settings, registry, manifest)


def _print_mlflow(logged: MlflowRun | MlflowWarning) -> None:
    from loanrisk.contracts import MlflowWarning

    if isinstance(logged, MlflowWarning):
        err.print(f"[yellow]warning:[/] {logged.warning}", highlight=False)
        return
    line = f"MLflow: run {logged.run_id} in experiment {logged.experiment!r}"
    registered = logged.registered
    if registered is not None:
        aliases = ", ".join(registered.aliases) or "no aliases"
        line += f"; registered as {registered.name} version {registered.version} ({aliases})"
    err.print(line, highlight=False)
    for alias, why in registered.aliases_refused.items() if registered else ():
        err.print(f"[yellow]warning:[/] MLflow refused alias {alias!r}: {why}", highlight=False)
