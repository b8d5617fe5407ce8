"""``loanrisk serve``: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loanrisk.cli.common import StorageOpt, cli_errors, err, settings_from
from loanrisk.errors import LoanRiskError

if TYPE_CHECKING:
    from loanrisk.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind \\[127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port (the reference's) \\[5000].")] = None,
    storage: StorageOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes \\[1].")] = None,
) -> None:
    """Serve the HTTP API (uvicorn; each worker loads the model and follows its alias)."""
    with cli_errors():
        run_service(settings_from(storage=storage, host=host, port=port, workers=workers))


def run_service(settings: Settings) -> None:
    from loanrisk.service.server import example_requests, run_server, served_schema
    from loanrisk.serving.auth import ApiKeys

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
