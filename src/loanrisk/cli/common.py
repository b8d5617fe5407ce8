"""What every ``loanrisk`` command shares: the consoles, the options several commands take,
and one line on stderr with a meaningful exit code for every failure.

Light by design: a command's ``--help`` imports this and the command's module, never the
library behind them (no xgboost, pandas or numpy until a command runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from loanrisk.defaults import PRODUCTION
from loanrisk.errors import Cancelled, InvalidInput, LoanRiskError, NotFound, describe_error

if TYPE_CHECKING:
    from loanrisk.settings import Settings
    from loanrisk.storage.problems import Problem

out = Console()
err = Console(stderr=True)


def print_problems(problems: Iterable[Problem]) -> None:
    """One line on stderr for each stored item a listing or report skipped."""
    for problem in problems:
        err.print(f"skipped {problem.path}: {problem.message}", markup=False, highlight=False)


StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Storage root: a directory or s3://bucket/prefix.")
]
DirectoryOpt = Annotated[
    str, typer.Option("--directory", "-d", help="Directory of the storage holding datasets.")
]
ModelDirOpt = Annotated[
    str, typer.Option("--model-directory", help="Directory of the storage holding models.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="The report as JSON.")]
SchemaOpt = Annotated[
    Path | None,
    typer.Option(help="The data's declared schema, YAML or JSON (default: the built-in one)."),
]


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """One line on stderr and a non-zero exit: 2 for bad input, 1 for everything else (an
    unexpected error too: its one line, never a traceback)."""
    try:
        yield
    except (InvalidInput, NotFound) as exc:
        fail(exc.message, 2)
    except (Cancelled, KeyboardInterrupt):
        fail("cancelled: nothing was published", 130)
    except LoanRiskError as exc:
        fail(exc.message, 1)
    except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
        raise  # the command line's own exits and refusals
    except OSError as exc:
        fail(f"storage or system error: {describe_error(exc)}", 1)
    except Exception as exc:  # a defect: say it in one line, never a traceback
        # Imported here: only a command that ran has pydantic to raise this.
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))  # empty: a check across settings
            fail(
                f"invalid setting {where}: {first['msg']}"
                if where
                else f"invalid settings: {first['msg']}",
                2,
            )
        fail(f"unexpected error: {describe_error(exc)}", 1)


def model_ref(text: str) -> tuple[str, str]:
    """``NAME[@VERSION|ALIAS]`` as (name, reference); the reference defaults to production."""
    name, _, ref = text.partition("@")
    return name, ref or PRODUCTION


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, with the options given on the command line."""
    from loanrisk.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage on stderr (shown on a terminal only): ``update(stage, done,
    total)``."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
