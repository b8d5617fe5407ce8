"""The ``loanrisk`` command line: a thin front end over the library."""

from __future__ import annotations

import contextlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import fsspec
import typer
from pydantic import ValidationError
from rich.table import Table

from loanrisk.cli_common import (
    StorageOpt,
    cli_errors,
    err,
    fail,
    model_ref,
    out,
    progress_bar,
    settings_from,
)
from loanrisk.cli_models import ModelDirOpt, models_app
from loanrisk.cli_monitor import monitor_app, outcomes_app
from loanrisk.cli_schema import schema_app
from loanrisk.cli_tune import tune as tune_command
from loanrisk.contracts import (
    DEFAULT_ROUNDS,
    DatasetManifest,
    ModelManifest,
    OnError,
    TrainingRequest,
    check_size,
)
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.ingest import read_csv, read_parquet
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput, LoanRiskError, describe_error
from loanrisk.inference.reasons import ReasonCatalog
from loanrisk.inference.scorer import Scorer, scorer_from_settings
from loanrisk.jobs.training import train_in_subprocess
from loanrisk.monitoring.log import PredictionLog, prediction_log
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.schema import LoanSchema, Validated, builtin_schema, read_schema, validate_frame
from loanrisk.schema.model import MIN_GROUP_SIZE
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, open_storage, storage_options
from loanrisk.training.fairness import assessed
from loanrisk.training.policy import parent_policy, training_policy
from loanrisk.training.train import RoundProgress, parse_param
from loanrisk.training.tune import tuned_params

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
data_app = typer.Typer(no_args_is_help=True, help="Process, list and inspect datasets.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(schema_app, name="schema")
app.add_typer(monitor_app, name="monitor")
app.add_typer(outcomes_app, name="outcomes")
app.command("tune")(tune_command)

SAMPLE_ROWS = 20_000
DirectoryOpt = Annotated[
    str, typer.Option("--directory", "-d", help="Directory of the storage holding datasets.")
]


def _load_source(
    source: str,
    settings: Settings,
    keep: list[str] | None = None,
    *,
    skip_bad_rows: bool = False,
    schema: LoanSchema | None = None,
) -> Validated:
    on_error: Literal["raise", "drop"] = "drop" if skip_bad_rows else "raise"
    if source == "sample":
        if schema is not None and schema != builtin_schema():
            raise InvalidInput(
                "the built-in sample is data of the built-in schema: give your own data "
                "with --schema (a CSV path, or --source for demo)"
            )
        sample = generate_sample(SAMPLE_ROWS, seed=settings.seed)
        return validate_frame(sample, keep=keep or (), on_error=on_error)
    reader = read_parquet if source.endswith(".parquet") else read_csv

    def read(where: str | IO[bytes]) -> Validated:
        return reader(where, schema=schema, keep=keep or (), on_error=on_error)

    if "://" in source:
        try:
            with fsspec.open(source, "rb", **storage_options(settings, source)) as stream:
                return read(stream)
        except FileNotFoundError:
            raise InvalidInput(f"no such object: {source}") from None
    if not Path(source).is_file():
        raise InvalidInput(f"no such file: {source}")
    return read(source)


SchemaOpt = Annotated[
    Path | None,
    typer.Option(help="The data's declared schema, YAML or JSON (default: the built-in one)."),
]


def _summary(manifest: DatasetManifest, storage_url: str) -> None:
    rows, rate, quality = manifest.rows, manifest.label_rate, manifest.quality
    table = Table(title=f"dataset {manifest.id}", show_header=False, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("stored in", f"{storage_url}/{manifest.directory}/datasets/{manifest.id}")
    table.add_row("source", manifest.source)
    expanded = " (expanded)" if manifest.expanded else ""
    table.add_row(
        "rows",
        f"{rows.input:,} in -> {rows.total:,}{expanded}: {rows.train:,} train / {rows.test:,} test",
    )
    table.add_row("default rate", f"{rate.train:.2%} train, {rate.test:.2%} test")
    table.add_row("schema", f"{manifest.schema_name} ({manifest.schema_hash})")
    table.add_row("features", f"{len(manifest.feature_columns)} (spec {manifest.feature_spec})")
    table.add_row("timings", ", ".join(f"{k} {v:.2f}s" for k, v in manifest.timings.items()))
    warnings = quality["warnings"]
    table.add_row("data quality", f"{len(warnings)} warning(s)" if warnings else "no warnings")
    for warning in warnings[:5]:
        table.add_row("", f"- {warning}")
    if len(warnings) > 5:
        table.add_row("", f"... and {len(warnings) - 5} more: loanrisk data show {manifest.id}")
    out.print(table)


@data_app.command("process")
def data_process(
    source: Annotated[str, typer.Argument(help="A CSV/Parquet path, an s3:// URI, or 'sample'.")],
    size: Annotated[int | None, typer.Option(help="Expand to this many rows.", min=1)] = None,
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
    seed: Annotated[int | None, typer.Option(help="Seed of expansion and split.")] = None,
    keep_column: Annotated[
        list[str] | None,
        typer.Option(help="Extra column to keep, not as a feature (e.g. for fairness)."),
    ] = None,
    skip_bad_rows: Annotated[
        bool,
        typer.Option(help="Drop the rows that cannot be used (listed by row) instead of refusing."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    schema: SchemaOpt = None,
) -> None:
    """Validate SOURCE, expand it to --size rows, split, fit the preprocessing, and store it."""
    with cli_errors():
        settings = settings_from(storage=storage, seed=seed)
        check_size(size, settings, field="--size")
        declared = read_schema(schema) if schema is not None else None
        target = open_storage(settings)
        loans = _load_source(
            source, settings, keep_column, skip_bad_rows=skip_bad_rows, schema=declared
        )
        _report_dropped(loans)
        with progress_bar() as progress:
            manifest = process_dataset(
                loans,
                target,
                source=source,
                size=size,
                directory=directory,
                seed=settings.seed,
                test_fraction=settings.test_fraction,
                progress=progress,
                schema=declared,
            )
        if as_json:
            out.print_json(manifest.model_dump_json())
        else:
            _summary(manifest, target.url)


def _report_dropped(loans: Validated) -> None:
    report = loans.report
    if not report.rejected_rows:
        return
    rows = report.rejected_rows
    listed = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
    err.print(f"dropped {len(rows):,} row(s) that cannot be used: rows {listed}", highlight=False)
    for issue in report.rejected[:5]:
        err.print(f"  {issue.describe()}", highlight=False, soft_wrap=True)


@data_app.command("list")
def data_list(storage: StorageOpt = None, directory: DirectoryOpt = "data") -> None:
    """List the datasets in a directory, oldest first."""
    with cli_errors():
        catalogue = DatasetCatalogue(open_storage(settings_from(storage=storage)), directory)
        table = Table("id", "source", "size", "train", "test", "default rate", "created")
        for m in catalogue.list():
            table.add_row(
                m.id,
                m.source,
                str(m.requested_size or ""),
                f"{m.rows.train:,}",
                f"{m.rows.test:,}",
                f"{m.label_rate.total:.2%}",
                m.created_at[:19],
            )
        out.print(table)


@data_app.command("show")
def data_show(
    dataset: Annotated[str, typer.Argument(help="A dataset id, or 'latest'.")],
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
) -> None:
    """Print a dataset's manifest (JSON), including its data-quality report."""
    with cli_errors():
        catalogue = DatasetCatalogue(open_storage(settings_from(storage=storage)), directory)
        out.print_json(catalogue.resolve(dataset).model_dump_json())


@app.command()
def demo(
    storage: StorageOpt = None,
    serve: Annotated[
        bool, typer.Option(help="Then serve the model on 127.0.0.1:5000 until Ctrl-C.")
    ] = True,
    port: Annotated[int | None, typer.Option(help="Port to serve on \\[5000].")] = None,
    schema: SchemaOpt = None,
    source: Annotated[
        str | None, typer.Option(help="Your loan CSV (with --schema) instead of the sample.")
    ] = None,
) -> None:
    """The main job on the embedded default: process the built-in sample, train on it and
    serve the model, printing requests to paste. With --schema and --source, the same flow
    on your own data."""
    with cli_errors():
        settings = settings_from(storage=storage, port=port)
        if (schema is None) != (source is None):
            raise InvalidInput("--schema and --source go together: your data and its schema")
        declared = read_schema(schema) if schema is not None else None
        target = open_storage(settings)
        what = source or f"{SAMPLE_ROWS:,} built-in sample loans"
        err.print(f"Processing {what} into {target.url} ...", highlight=False)
        loans = _load_source(source or "sample", settings, schema=declared)
        with progress_bar() as progress:
            manifest = process_dataset(
                loans,
                target,
                source=source or "sample",
                seed=settings.seed,
                test_fraction=settings.test_fraction,
                progress=progress,
                schema=declared,
            )
        _summary(manifest, target.url)
        err.print(f"Training the reference's model ({DEFAULT_ROUNDS} rounds) on it ...")
        request = TrainingRequest(
            dataset=manifest.id,
            seed=settings.seed,
            promote=True,
            **training_policy(settings).model_dump(),
        )
        with progress_bar() as progress:
            result = train_in_subprocess(
                request, settings, on_progress=lambda p: progress("train", p.done, p.total)
            )
        _train_summary(
            ModelManifest.model_validate(result["manifest"]),
            result["report"],
            bool(result["promoted"]),
        )
        _refuse_unpromoted(result.get("not_promoted"))
    if serve:
        with cli_errors():
            _serve(settings)


def _refuse_unpromoted(not_promoted: str | None) -> None:
    """Exit 1 when training published a version it could not promote (unservable)."""
    if not_promoted:
        fail(f"published, but not promoted: {not_promoted}", 1)


def _fairness_summary(report: dict[str, Any]) -> str:
    """Each protected attribute: its privileged group and the evaluation loans in each
    group, or why it was not assessed (the report and card have the parity ratios)."""
    parts = []
    for item in assessed(report):
        name = item["attribute"]
        groups = item["groups"]
        sizes = f"{groups['privileged']['size']:,} vs {groups['non_privileged']['size']:,} loans"
        warned = f" (a group under {MIN_GROUP_SIZE}: noise)" if item.get("warnings") else ""
        parts.append(f"{name} (privileged {item['privileged_value']}): {sizes}{warned}")
    unassessed = report.get("fairness_not_assessed") or ()
    parts += [f"{i['attribute']}: not assessed, {i['reason']}" for i in unassessed]
    return "; ".join(parts)


def _train_summary(manifest: ModelManifest, report: dict[str, Any], promoted: bool) -> None:
    classes = report["classification_report"]
    table = Table(
        title=f"model {manifest.name} version {manifest.version}",
        show_header=False,
        title_justify="left",
    )
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    parent = manifest.parent
    table.add_row("parent", f"version {parent.version}" if parent else "none (new model)")
    table.add_row("dataset", (manifest.dataset or {}).get("id", "?"))
    if manifest.schema_ref is not None:
        table.add_row("schema", f"{manifest.schema_ref.name} ({manifest.schema_ref.hash})")
    rounds = manifest.rounds
    table.add_row("rounds", f"{rounds['trained']} new, {rounds['total_trees']} trees in all")
    table.add_row("AUC", f"{report['auc']:.4f}")
    table.add_row("accuracy", f"{classes['accuracy']:.4f}")
    default = classes["Default"]
    table.add_row(
        "Default",
        f"precision {default['precision']:.3f}, recall "
        f"{default['recall']:.3f}, f1 {default['f1-score']:.3f}",
    )
    table.add_row("Brier / KS", f"{report['brier']:.4f} / {report['ks']:.4f}")
    matrix = report["confusion_matrix"]
    table.add_row(
        "threshold",
        f"{report['threshold']:g}: {matrix['tp']:,} defaults caught, "
        f"{matrix['fn']:,} missed, {matrix['fp']:,} false alarms, "
        f"{matrix['tn']:,} approved right",
    )
    if report.get("bands"):
        table.add_row(
            "bands",
            "; ".join(
                f"{b['band']} [{b['range'][0]:g}, {b['range'][1]:g}): {b['loans']:,} loans "
                f"({b['share']:.1%}), default rate "
                + ("-" if b["default_rate"] is None else f"{b['default_rate']:.1%}")
                for b in report["bands"]
            ),
        )
    table.add_row("monotone", _monotone_summary(report.get("monotonicity")))
    fairness = _fairness_summary(report)
    if fairness:
        table.add_row("fairness", fairness)
    step = report.get("calibration_step")
    if step:
        before, after = step["before"], step["after"]
        table.add_row(
            "calibration",
            f"{step['method']} on {step['fitted']['rows']:,} held-out "
            f"rows: Brier {before['brier']:.4f} -> {after['brier']:.4f}, ECE "
            f"{before['ece']:.4f} -> {after['ece']:.4f}",
        )
    table.add_row("timings", ", ".join(f"{k} {v:.2f}s" for k, v in manifest.timings.items()))
    table.add_row("production", "promoted" if promoted else "unchanged")
    out.print(table)


class Calibrate(StrEnum):
    none = "none"
    isotonic = "isotonic"
    platt = "platt"


def _calibration_fraction(value: float) -> float:
    """``--calibration-fraction``, held to ``TrainingRequest``'s bounds where it is given
    (a usage error naming the option, not a failed training)."""
    try:
        TrainingRequest.model_validate({"calibration_fraction": value})
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from None
    return value


def _reason_catalog(path: Path) -> ReasonCatalog:
    try:
        return ReasonCatalog.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidInput(f"{path} is not a reason catalog: {where}: {first['msg']}") from None


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


def _monotone_summary(check: dict[str, Any] | None) -> str:
    if not check or not check["constraints"]:
        return "no directions of risk declared"
    broken = [name for name, feature in check["features"].items() if not feature["holds"]]
    enforced = "enforced" if check["enforced"] else "not enforced"
    return f"{enforced}; " + (
        f"moves against the declared direction: {', '.join(broken)}"
        if broken
        else "every declared direction holds"
    )


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset id, or 'latest'.")] = "latest",
    size: Annotated[
        int | None, typer.Option(help="Use the newest dataset processed with this --size.")
    ] = None,
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
    model_directory: ModelDirOpt = "models",
    model: Annotated[str, typer.Option(help="Model name.")] = "loan-default",
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
    ] = TrainingRequest.model_fields["calibration_fraction"].default,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train (or continue training) a model on a dataset and publish it as a new version.

    The version records its decision policy (threshold, risk bands); the service scores
    with it unless LOANRISK_THRESHOLD or LOANRISK_BAND_* is set (docs/scoring.md)."""
    with cli_errors():
        settings = settings_from(
            storage=storage,
            nthread=nthread,
            mlflow_tracking_uri=mlflow_tracking_uri,
            mlflow_experiment=mlflow_experiment,
            mlflow_register=mlflow_register,
            dask_scheduler=dask_scheduler,
        )
        params = dict(parse_param(p) for p in param or [])
        tuned = None
        if params_from is not None:
            if size is not None:
                raise InvalidInput("--params-from reads the study of --dataset; not with --size")
            tuned = tuned_params(open_storage(settings), directory, dataset, params_from)
            params = {**tuned.params, **params}
        if monotone is None:
            monotone = tuned.monotone if tuned else settings.monotone
        parent = (
            parent_policy(
                ModelRegistry(open_storage(settings), model_directory), model, continue_from
            )
            if continue_from
            else None
        )
        policy = training_policy(
            settings,
            parent=parent,
            threshold=threshold,
            band_cutoffs=_cutoffs(band_cutoffs),
            band_names=_names(band_names),
        )
        request = TrainingRequest(
            dataset=dataset,
            dataset_size=size,
            data_directory=directory,
            model_directory=model_directory,
            model_name=model,
            continue_from=continue_from,
            params=params,
            rounds=rounds or (tuned.rounds if tuned else DEFAULT_ROUNDS),
            early_stopping_rounds=early_stopping,
            promote=promote,
            protected_attribute=protected_attribute,
            privileged_value=privileged_value,
            seed=settings.seed,
            monotone=monotone,
            calibration=calibration.value if calibration else settings.calibration,
            calibration_fraction=calibration_fraction,
            reason_catalog=_reason_catalog(reason_catalog) if reason_catalog else None,
            tuned_from=tuned.provenance if tuned else None,
            **policy.model_dump(),
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
            manifest = ModelManifest.model_validate(result["manifest"])
            report, promoted = result["report"], bool(result["promoted"])
            not_promoted = result.get("not_promoted")
            logged = result.get("mlflow")
        if as_json:
            out.print_json(manifest.model_dump_json())
        else:
            _train_summary(manifest, report, promoted)
        if logged is not None:
            _print_mlflow(logged)
        _refuse_unpromoted(not_promoted)


def _mlflow_after_dask(
    settings: Settings, request: TrainingRequest, manifest: ModelManifest
) -> dict[str, Any] | None:
    """The Dask training's MLflow run (the single-process one logs from its child)."""
    if settings.mlflow_tracking_uri is None:
        return None
    from loanrisk.interop.mlflow_run import log_training

    registry = ModelRegistry(open_storage(settings), request.model_directory)
    return log_training(settings, registry, manifest)


def _print_mlflow(logged: dict[str, Any]) -> None:
    if "warning" in logged:
        err.print(f"[yellow]warning:[/] {logged['warning']}", highlight=False)
        return
    line = f"MLflow: run {logged['run_id']} in experiment {logged['experiment']!r}"
    registered = logged["registered"]
    if registered is not None:
        aliases = ", ".join(registered["aliases"]) or "no aliases"
        line += f"; registered as {registered['name']} version {registered['version']} ({aliases})"
    err.print(line, highlight=False)
    for alias, why in registered["aliases_refused"].items() if registered else ():
        err.print(f"[yellow]warning:[/] MLflow refused alias {alias!r}: {why}", highlight=False)


@app.command()
def predict(
    source: Annotated[
        str,
        typer.Argument(
            help="A CSV or Parquet path or s3:// / az:// URI, a local .json file (one record "
            "or a list), or '-': CSV on standard input."
        ),
    ],
    storage: StorageOpt = None,
    model_directory: ModelDirOpt = "models",
    model: Annotated[
        str, typer.Option(help="NAME\\[@VERSION|ALIAS], default alias production.")
    ] = "loan-default@production",
    output: Annotated[
        str | None,
        typer.Option(
            help="Write the results CSV to this local path (relative to the current "
            "directory) or s3:// / az:// URI, atomically (else stdout)."
        ),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Score the good rows and report the bad ones (else refuse).")
    ] = False,
    id_column: Annotated[str | None, typer.Option(help="Carry this input column along.")] = None,
    explain: Annotated[
        bool,
        typer.Option(help="Add the top reasons per loan (CSV: reason_<i>, its code and value)."),
    ] = False,
    decline_reasons: Annotated[
        bool,
        typer.Option(
            help="For each loan over the threshold, the reasons its adverse-action notice "
            "states (CSV: decline_codes, decline_reasons)."
        ),
    ] = False,
    backend: Annotated[
        str | None, typer.Option(help="auto, onedal or xgboost (default: the setting).")
    ] = None,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            help="Score Parquet partitions on this Dask cluster (tcp://host:8786); --output "
            "is then a new directory of partitioned Parquet results."
        ),
    ] = None,
) -> None:
    """Score loans: a CSV or Parquet file (streamed, any size), a local JSON file of
    records, or CSV on stdin ('-')."""
    with cli_errors():
        # The scheduler is checked as the setting is (the setting itself is for batch jobs).
        settings = settings_from(storage=storage, backend=backend, dask_scheduler=dask_scheduler)
        target = open_storage(settings)
        name, ref = model_ref(model)
        registry = ModelRegistry(target, model_directory)
        loaded = registry.load(name, ref)
        on_error: OnError = "skip" if skip_bad_rows else "raise"
        if dask_scheduler is not None:
            _predict_on_dask(
                registry,
                loaded,
                settings,
                source,
                output,
                dask_scheduler,
                on_error=on_error,
                id_column=id_column,
                explain=explain,
                decline_reasons=decline_reasons,
            )
            return
        scorer = scorer_from_settings(loaded, settings)
        err.print(f"Scoring with {name} version {loaded.version} ({scorer.backend.name}) ...")
        log = prediction_log(settings, target) if settings.prediction_log else None
        try:
            _predict(
                scorer,
                source,
                output,
                settings,
                log,
                on_error=on_error,
                id_column=id_column,
                explain=explain,
                decline_reasons=decline_reasons,
            )
        finally:
            if log is not None:
                log.close()


def _predict_on_dask(
    registry: ModelRegistry,
    loaded: LoadedModel,
    settings: Settings,
    source: str,
    output: str | None,
    scheduler: str,
    **options: Any,
) -> None:
    from loanrisk.inference.distributed import score_on_dask

    if output is None:
        raise InvalidInput("scoring on Dask writes partitioned Parquet: give --output DIR")
    written = fsspec.open(output, **storage_options(settings, output)).fs
    if written.exists(output) and (not written.isdir(output) or written.ls(output)):
        raise InvalidInput(f"--output {output} exists: results never replace files")
    err.print(
        f"Scoring {source} with {loaded.name} version {loaded.version} on the Dask "
        f"cluster at {scheduler} ...",
        highlight=False,
    )
    summary = score_on_dask(
        registry,
        loaded.name,
        loaded.version,
        settings,
        source=source,
        output=output,
        scheduler=scheduler,
        **options,
    )
    err.print(
        f"{summary['scored']:,} loans scored in {summary['partitions']} partitions on "
        f"{summary['workers']} workers -> {output}",
        highlight=False,
    )


def _predict(
    scorer: Scorer,
    source: str,
    output: str | None,
    settings: Settings,
    log: PredictionLog | None,
    *,
    on_error: OnError,
    id_column: str | None,
    explain: bool,
    decline_reasons: bool,
) -> None:
    if source.endswith(".json"):
        records = _json_records(source)
        scored = scorer.score_records(
            records, on_error=on_error, explain=explain, decline_reasons=decline_reasons
        )
        if log is not None:
            log.scored_records(scorer, records, scored, source="cli")
        if output is None:
            out.print_json(json.dumps(scored))
            return
        with _open_output(output, settings) as sink:
            sink.write(json.dumps(scored, indent=2).encode() + b"\n")
        counts = f"{len(scored['results']):,} loans scored, {len(scored['rejected']):,} rejected"
        err.print(f"{counts} -> {output}")
        return
    with contextlib.ExitStack() as stack:
        stream: Any
        if source == "-":
            stream = sys.stdin.buffer
        elif "://" in source:
            stream = stack.enter_context(
                fsspec.open(source, "rb", **storage_options(settings, source))
            )
        elif Path(source).is_file():
            stream = stack.enter_context(open(source, "rb"))
        else:
            raise InvalidInput(f"no such file: {source}")
        sink = stack.enter_context(_open_output(output, settings)) if output else sys.stdout.buffer
        score = scorer.score_parquet if source.endswith(".parquet") else scorer.score_csv
        on_scored = (
            log.chunk_recorder(scorer, source="cli", id_column=id_column)
            if log is not None
            else None
        )
        with progress_bar() as progress:
            summary = score(
                stream,
                sink,
                on_error=on_error,
                id_column=id_column,
                explain=explain,
                progress=lambda rows: progress("score", rows, rows),
                on_scored=on_scored,
                decline_reasons=decline_reasons,
            )
    sink_name = output or "stdout"
    err.print(
        f"{summary['scored']:,} loans scored, {summary['rejected']:,} rejected -> {sink_name}"
    )
    for issue in summary["issues"][:5]:
        err.print(
            f"  rejected: column {issue['column']!r}: {issue['message']} "
            f"({issue['count']} rows, first {issue['rows'][:5]})"
        )


def _json_records(source: str) -> list[Any]:
    try:
        doc = json.loads(Path(source).read_text())
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {source}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{source} is not JSON: {describe_error(exc)}") from None
    return doc if isinstance(doc, list) else [doc]


def _open_output(output: str, settings: Settings) -> contextlib.AbstractContextManager[IO[bytes]]:
    """The path a person typed, written atomically: a local path (relative to the current
    directory) or an s3:// / az:// URI. Confinement is for the service's clients, not for a
    user's own files."""
    if "://" in output:
        parent, name = output.rsplit("/", 1)
        folder = FsspecStorage(parent, storage_options=storage_options(settings, output))
    else:
        path = Path(output).resolve()
        if path.is_dir():
            raise InvalidInput(f"--output {output} is a directory")
        parent, name = str(path.parent), path.name
        folder = FsspecStorage(parent)
    return folder.open_write(name)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind \\[127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port (the reference's) \\[5000].")] = None,
    storage: StorageOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes \\[1].")] = None,
) -> None:
    """Serve the HTTP API (uvicorn; each worker loads the model and follows its alias)."""
    with cli_errors():
        _serve(settings_from(storage=storage, host=host, port=port, workers=workers))


def _serve(settings: Settings) -> None:
    from loanrisk.service.auth import ApiKeys
    from loanrisk.service.server import example_requests, run_server, served_schema

    ApiKeys.from_settings(settings)  # bad keys: one line here, not a trace from each worker

    def announce() -> None:
        plural = "s" if settings.workers > 1 else ""
        err.print(
            f"loanrisk serving {settings.storage} on http://{settings.host}:"
            f"{settings.port} ({settings.workers} worker{plural}).",
            soft_wrap=True,
        )
        try:  # the examples are loans of the model the workers will load, in its schema
            schema, problem = served_schema(settings), None
        except LoanRiskError as exc:
            schema, problem = None, exc.message
        err.print(
            example_requests(settings, schema, problem=problem),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if not (settings.api_keys or settings.api_keys_file):
            err.print("[bold red]WARNING: no API keys configured: the service is OPEN.[/]")

    run_server(settings, announce)


def main() -> None:
    """The ``loanrisk`` command: any failure that no command turned into its one line is
    turned into one here (exit 1), never a traceback."""
    with cli_errors():
        app(prog_name="loanrisk")


if __name__ == "__main__":  # pragma: no cover
    main()
