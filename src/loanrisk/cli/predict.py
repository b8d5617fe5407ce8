"""``loanrisk predict``: score loans from a file, a JSON document or standard input, on this
machine or a Dask cluster."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from loanrisk.cli.common import (
    ModelDirOpt,
    StorageOpt,
    cli_errors,
    err,
    model_ref,
    out,
    progress_bar,
    settings_from,
)
from loanrisk.errors import InvalidInput, describe_error

if TYPE_CHECKING:
    from loanrisk.contracts import OnError
    from loanrisk.inference.scorer import Scorer
    from loanrisk.monitoring.log.writer import PredictionLog
    from loanrisk.registry.models import LoadedModel, ModelRegistry
    from loanrisk.settings import Settings


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
    from loanrisk.inference.scorer import scorer_from_settings
    from loanrisk.monitoring.log.writer import prediction_log
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.storage import open_storage

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
    import fsspec

    from loanrisk.inference.distributed import score_on_dask
    from loanrisk.storage import storage_options

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
        f"{summary.scored:,} loans scored in {summary.partitions} partitions on "
        f"{summary.workers} workers -> {output}",
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
    import fsspec

    from loanrisk.inference.results import scored_json
    from loanrisk.inference.scorer import BatchOptions
    from loanrisk.storage import storage_options

    if source.endswith(".json"):
        records = _json_records(source)
        scored = scorer.score_records(
            records, on_error=on_error, explain=explain, decline_reasons=decline_reasons
        )
        if log is not None:
            log.scored_records(scorer, records, scored, source="cli")
        doc = scored_json(scored)
        if output is None:
            out.print_json(json.dumps(doc))
            return
        with _open_output(output, settings) as sink:
            sink.write(json.dumps(doc, indent=2).encode() + b"\n")
        counts = f"{len(scored.results):,} loans scored, {len(scored.rejected):,} rejected"
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
            options = BatchOptions(
                on_error=on_error,
                id_column=id_column,
                explain=explain,
                progress=lambda rows: progress("score", rows, rows),
                on_scored=on_scored,
                decline_reasons=decline_reasons,
            )
            summary = score(stream, sink, options)
    sink_name = output or "stdout"
    err.print(f"{summary.scored:,} loans scored, {summary.rejected:,} rejected -> {sink_name}")
    for issue in summary.issues[:5]:
        err.print(
            f"  rejected: column {issue.column!r}: {issue.message} "
            f"({issue.count} rows, first {issue.rows[:5]})"
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
    from loanrisk.storage import FsspecStorage, storage_options

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
