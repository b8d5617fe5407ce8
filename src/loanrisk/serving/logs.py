"""Structured logs: one JSON object per line, with the request id of the request it is about."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from loanrisk.jobs.logs import JsonLines

if TYPE_CHECKING:
    from pydantic import JsonValue

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(JsonLines):
    """:class:`~loanrisk.jobs.logs.JsonLines` with the id of the request a line is about."""

    def context(self) -> dict[str, JsonValue]:
        rid = request_id.get()
        return {} if rid is None else {"request_id": rid}


def log_config(level: str = "INFO") -> dict[str, JsonValue]:
    """A ``logging.config.dictConfig`` for the server: JSON lines on stderr for loanrisk and
    uvicorn; uvicorn's own access log is replaced by ours (which carries the request id)."""
    handler: dict[str, JsonValue] = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "loanrisk": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
