"""``loanrisk schema``: draft a schema from data, check one, show one, print the JSON Schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import StorageOpt, cli_errors, model_ref, out, settings_from
from loanrisk.defaults import MAX_CATEGORIES
from loanrisk.defaults import SCHEMA_SAMPLE_ROWS as SAMPLE_ROWS
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.schema import LoanSchema


schema_app = typer.Typer(
    no_args_is_help=True, help="Draft, check and show declared loan schemas (docs/schema.md)."
)


def _name_from(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")[:64]
    return name if name and name[0].isalnum() else "my-loans"


@schema_app.command("infer")
def infer(
    source: Annotated[Path, typer.Argument(help="A loan CSV.")],
    label: Annotated[str | None, typer.Option(help="The label column (else guessed).")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the draft here (refused if it exists).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Schema name \\[the file's stem].")] = None,
    max_categories: Annotated[
        int, typer.Option(min=2, help="More distinct text values than this: not a category.")
    ] = MAX_CATEGORIES,
    sample_rows: Annotated[int, typer.Option(min=10, help="Rows read.")] = SAMPLE_ROWS,
) -> None:
    """Draft a commented schema from SOURCE, for a person to review (stdout or --output)."""
    from loanrisk.schema.infer import infer_schema, render_yaml

    with cli_errors():
        if not source.is_file():
            raise InvalidInput(f"no such file: {source}")
        if output is not None and output.exists():
            raise InvalidInput(f"{output} exists: choose a new file")
        with source.open("rb") as stream:
            draft = infer_schema(
                stream,
                label=label,
                name=name or _name_from(source),
                max_categories=max_categories,
                sample_rows=sample_rows,
                source=source.name,
            )
        text = render_yaml(draft)
        if output is None:
            out.print(text, end="", highlight=False, markup=False, soft_wrap=True)
        else:
            output.write_text(text, encoding="utf-8")
            out.print(
                f"draft schema written to {output}: review it, then "
                f"`loanrisk schema check {output}`",
                highlight=False,
            )


def _table(schema: LoanSchema) -> Table:
    table = Table(
        "column",
        "role",
        "type",
        "preprocess",
        "risk",
        "title",
        title=f"schema {schema.name} ({schema.fingerprint()})",
        title_justify="left",
    )
    for column in schema.columns:
        vintage = " (origination)" if column.origination else " (amount)" if column.amount else ""
        table.add_row(
            column.name,
            column.role + vintage,
            column.type,
            column.encoding if column.role == "feature" else "",
            column.risk or "",
            column.title or "",
        )
    return table


@schema_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="A schema file (YAML or JSON).")]) -> None:
    """Validate a schema file: one line per problem (exit 2), or a table of its columns."""
    from loanrisk.schema import read_schema

    with cli_errors():
        out.print(_table(read_schema(file)))


@schema_app.command("show")
def show(
    model: Annotated[
        str | None, typer.Option(help="NAME\\[@VERSION|ALIAS]: the schema a model scores.")
    ] = None,
    storage: StorageOpt = None,
    model_directory: Annotated[
        str, typer.Option("--model-directory", help="Directory of the storage holding models.")
    ] = "models",
    as_json: Annotated[bool, typer.Option("--json", help="The schema as JSON.")] = False,
) -> None:
    """Print the built-in schema, or a model version's."""
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.schema import builtin_schema
    from loanrisk.storage import open_storage

    with cli_errors():
        schema = builtin_schema()
        if model is not None:
            name, ref = model_ref(model)
            registry = ModelRegistry(open_storage(settings_from(storage=storage)), model_directory)
            schema = registry.schema(name, ref)
        if as_json:
            out.print_json(schema.to_json())
        else:
            out.print(_table(schema))


@schema_app.command("json-schema")
def print_json_schema() -> None:
    """The JSON Schema of schema files, for editors (also docs/schema.schema.json)."""
    from loanrisk.schema import json_schema

    out.print(json_schema(), end="", highlight=False, markup=False, soft_wrap=True)
