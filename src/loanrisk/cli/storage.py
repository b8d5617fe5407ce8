"""``loanrisk storage``: check every stored item, naming each bad one with its repair."""

from __future__ import annotations

from typing import Annotated

import typer

from loanrisk.cli.common import DirectoryOpt, JsonOpt, StorageOpt, cli_errors, out, settings_from

storage_app = typer.Typer(no_args_is_help=True, help="Check the storage.")


@storage_app.command("check")
def storage_check(
    storage: StorageOpt = None,
    directory: DirectoryOpt = "data",
    model_directory: Annotated[
        str | None,
        typer.Option(
            "--model-directory",
            help="Directory of the storage holding models (default: the setting's).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify every model version's and dataset's files against their hashes, and read every
    alias, job record and prediction-log file; name each bad item (and each symlink leading
    out of the storage) with how to repair it. Writes nothing. Exit 0: clean; 1: problems
    found."""
    from loanrisk.serving.storage_check import check_storage
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage, model_directory=model_directory)
        report = check_storage(open_storage(settings), settings, data_directories=(directory,))
        if as_json:
            out.print_json(report.model_dump_json())
        else:
            for item in report.problems:
                out.print(
                    f"{item.kind}  {item.path}", markup=False, highlight=False, soft_wrap=True
                )
                out.print(f"  {item.problem}", markup=False, highlight=False, soft_wrap=True)
                out.print(f"  repair: {item.repair}", markup=False, highlight=False, soft_wrap=True)
            counts = ", ".join(
                f"{n} {kind.replace('_', ' ')}" for kind, n in report.checked.model_dump().items()
            )
            verdict = "clean" if report.clean else f"{len(report.problems)} problem(s)"
            out.print(f"checked {counts}: {verdict}", markup=False, highlight=False, soft_wrap=True)
    if not report.clean:
        raise typer.Exit(1)
