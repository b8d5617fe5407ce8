"""The ``loanrisk`` command line: a thin front end over the library.

One module per command group; each imports the library it drives inside its commands, so
that ``loanrisk --help`` (and any command's ``--help``) loads no ML library, no data frame
library and no web framework (tests/test_imports.py holds it to that).
"""

from __future__ import annotations

from typing import Annotated

import typer

from loanrisk.cli import (
    data,
    demo,
    fairness,
    models,
    monitor,
    predict,
    schema,
    serve,
    storage,
    train,
    tune,
)
from loanrisk.cli.common import cli_errors

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(data.data_app, name="data")
app.add_typer(models.models_app, name="models")
app.add_typer(schema.schema_app, name="schema")
monitor.monitor_app.command("fairness")(fairness.fairness)
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(monitor.outcomes_app, name="outcomes")
app.add_typer(storage.storage_app, name="storage")
app.command("tune")(tune.tune)
app.command("demo")(demo.demo)
app.command("train")(train.train)
app.command("predict")(predict.predict)
app.command("serve")(serve.serve)


def _print_version(value: bool) -> None:
    if value:
        from loanrisk._version import __version__

        typer.echo(f"loanrisk {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the installed loanrisk's version and exit.",
        ),
    ] = False,
) -> None:
    """The ``loanrisk`` command line: a thin front end over the library."""


def main() -> None:
    """The ``loanrisk`` command: any failure that no command turned into its one line is
    turned into one here (exit 1), never a traceback."""
    with cli_errors():
        app(prog_name="loanrisk")


__all__ = ["app", "main"]
