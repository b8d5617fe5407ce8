"""``loanrisk demo``: the main job on the embedded default: process the built-in sample (or
your own loans with their schema), train on it and serve the model."""

from __future__ import annotations

from typing import Annotated

import typer

from loanrisk.cli.common import (
    SchemaOpt,
    StorageOpt,
    cli_errors,
    err,
    progress_bar,
    settings_from,
)
from loanrisk.cli.data import SAMPLE_ROWS, load_source, print_summary
from loanrisk.cli.serve import run_service
from loanrisk.cli.train import refuse_unpromoted, train_summary
from loanrisk.errors import InvalidInput


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
        from loanrisk.contracts import TrainingOptions
        from loanrisk.data.process import process_dataset
        from loanrisk.jobs.training import train_in_subprocess
        from loanrisk.requests import training_request
        from loanrisk.schema import read_schema
        from loanrisk.storage import open_storage

        settings = settings_from(storage=storage, port=port)
        if (schema is None) != (source is None):
            raise InvalidInput("--schema and --source go together: your data and its schema")
        declared = read_schema(schema) if schema is not None else None
        target = open_storage(settings)
        what = source or f"{SAMPLE_ROWS:,} built-in sample loans"
        err.print(f"Processing {what} into {target.url} ...", highlight=False)
        loans = load_source(source or "sample", settings, schema=declared)
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
        print_summary(manifest, target.url)
        # The model the service will serve: the settings' name, in the settings' directory.
        request = training_request(
            TrainingOptions(dataset=manifest.id, promote=True),
            settings,
            target,
            model_name=settings.model_name,
            model_directory=settings.model_directory,
        )
        err.print(f"Training the reference's model ({request.rounds} rounds) on it ...")
        with progress_bar() as progress:
            result = train_in_subprocess(
                request, settings, on_progress=lambda p: progress("train", p.done, p.total)
            )
        train_summary(result.manifest, result.report, result.promoted)
        refuse_unpromoted(result.not_promoted)
    if serve:
        with cli_errors():
            run_service(settings)
