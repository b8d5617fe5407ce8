"""``loanrisk data``: process a raw loan file into a dataset, list and show datasets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from loanrisk.cli.common import (
    DirectoryOpt,
    SchemaOpt,
    StorageOpt,
    cli_errors,
    err,
    out,
    print_problems,
    progress_bar,
    settings_from,
)
from loanrisk.errors import InvalidInput, NotInstalled

if TYPE_CHECKING:
    from loanrisk.contracts import DatasetManifest
    from loanrisk.data.characteristics import Characteristics
    from loanrisk.schema import LoanSchema, Validated
    from loanrisk.settings import Settings

data_app = typer.Typer(no_args_is_help=True, help="Process, list and inspect datasets.")


SAMPLE_ROWS = 20_000


def load_source(
    source: str,
    settings: Settings,
    keep: list[str] | None = None,
    *,
    skip_bad_rows: bool = False,
    schema: LoanSchema | None = None,
) -> Validated:
    import fsspec

    from loanrisk.data.ingest import read_csv, read_parquet
    from loanrisk.data.sample import generate_sample
    from loanrisk.schema import builtin_schema, validate_frame
    from loanrisk.storage import storage_options

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


def print_summary(manifest: DatasetManifest, storage_url: str) -> None:
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
    warnings = quality.warnings
    table.add_row("data quality", f"{len(warnings)} warning(s)" if warnings else "no warnings")
    for warning in warnings[:5]:
        table.add_row("", f"- {warning}")
    if len(warnings) > 5:
        table.add_row(
            "", f"... and {len(warnings) - 5} more: loanrisk data show {manifest.id} --json"
        )
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
    from loanrisk.contracts import check_size
    from loanrisk.data.process import process_dataset
    from loanrisk.schema import read_schema
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage, seed=seed)
        check_size(size, settings, field="--size")
        declared = read_schema(schema) if schema is not None else None
        target = open_storage(settings)
        with _hints(source, schema_given=declared is not None):
            loans = load_source(
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
            print_summary(manifest, target.url)


@contextmanager
def _hints(source: str, *, schema_given: bool) -> Iterator[None]:
    """What to do next when the loans are refused: with no --schema, a missing column points
    to --schema and ``schema infer``; a refusal of bad values (whole rows are refused only
    when some value is bad) points to --skip-bad-rows."""
    from loanrisk.schema import builtin_schema_hint

    hint = (
        f"give the file's own schema with --schema FILE (draft one with: "
        f"loanrisk schema infer {source} --output FILE)"
    )
    try:
        with builtin_schema_hint(hint) if not schema_given else nullcontext():
            yield
    except InvalidInput as exc:
        if "invalid_values" not in exc.details:
            raise
        raise InvalidInput(
            f"{exc.message}; to leave the rows that cannot be used out (and list them), "
            "add --skip-bad-rows",
            details=exc.details,
        ) from None


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
    from loanrisk.data.datasets import DatasetCatalogue
    from loanrisk.storage import open_storage

    with cli_errors():
        catalogue = DatasetCatalogue(open_storage(settings_from(storage=storage)), directory)
        table = Table("id", "source", "size", "train", "test", "default rate", "created")
        manifests, problems = catalogue.listing()
        for m in manifests:
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
        print_problems(problems)


@data_app.command("show")
def data_show(
    dataset: Annotated[str, typer.Argument(help="A dataset id, or 'latest'.")],
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON: {manifest, characteristics} (characteristics null "
            "with --no-characteristics).",
        ),
    ] = False,
    with_characteristics: Annotated[
        bool | None,
        typer.Option(
            "--characteristics/--no-characteristics",
            help="The characteristic analysis (bins, WoE, IV of each attribute; computed on "
            "first request on at most LOANRISK_BINNING_MAX_ROWS training loans, then stored). "
            "Default: shown where it can be (stored, or the scorecard extra installed).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show a dataset: its manifest (data-quality report included) and its characteristic
    analysis, the attributes ranked by information value."""
    from loanrisk.data.characteristics import characteristics, limits_of
    from loanrisk.data.datasets import DatasetCatalogue
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage)
        target = open_storage(settings)
        catalogue = DatasetCatalogue(target, directory)
        manifest = catalogue.resolve(dataset)
        analysis = None
        if with_characteristics is not False:
            try:
                analysis = characteristics(catalogue, manifest.id, limits=limits_of(settings))
            except NotInstalled as exc:  # the serving image: the manifest alone, unless asked
                if with_characteristics:
                    raise
                err.print(f"no characteristic analysis: {exc.message}", soft_wrap=True)
        if as_json:
            doc = {
                "manifest": manifest.model_dump(mode="json"),
                "characteristics": analysis.model_dump(mode="json") if analysis else None,
            }
            out.print_json(data=doc)
            return
        print_summary(manifest, target.url)
        if analysis is not None:
            print_characteristics(analysis)


def print_characteristics(analysis: Characteristics) -> None:
    """The IV ranking, highest first: attribute, bins, IV, band, Gini, the event rate's
    trend across the regular bins, the trend asked of the binning (the declared direction of
    risk) and flags."""
    by_name = {a.name: a for a in analysis.attributes}
    sample = " (seeded sample)" if analysis.sampled else ""
    table = Table(
        "attribute",
        "bins",
        "IV",
        "band",
        "Gini",
        "trend",
        "asked",
        "flags",
        title=f"characteristics: {analysis.fitted_rows:,} of {analysis.rows:,} training "
        f"loans{sample}, ranked by IV",
        title_justify="left",
    )
    for ranked in analysis.ranking:
        a = by_name[ranked.name]
        flags = []
        if a.quality.follows_declared is False:
            flags.append("against declared direction")
        if a.quality.small_bins:
            flags.append(f"{a.quality.small_bins} small bin(s)")
        table.add_row(
            a.name,
            str(len(a.bins)),
            f"{a.iv:.4f}",
            a.quality.iv_band,
            f"{a.gini:.3f}",
            a.quality.trend,
            "-" if a.constraint == "none" else a.constraint,
            ", ".join(flags),
        )
    out.print(table)
