"""Structured logs, one JSON object per line: the formatter the server's logs and the job
children's share (:mod:`loanrisk.serving.logs` adds the request id), and the set-up of a
job child, whose stderr would otherwise carry Python's multi-line tracebacks and warnings."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import JsonValue

#: A log record's own attributes; anything else on it was passed as ``extra`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}


class JsonLines(logging.Formatter):
    """A record as one line of JSON: ``time`` (UTC, ms), ``level``, ``logger``,
    ``message``, the record's ``extra`` fields, :meth:`context`, and the traceback as one
    string (``exception``), so that a log collector reads one event per line."""

    def context(self) -> dict[str, JsonValue]:
        """Fields every line of this process carries (none here)."""
        return {}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {  # the record's extras may be any object: default=str
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(self.context())
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _ChildContext(JsonLines):
    def __init__(self, fields: dict[str, JsonValue]) -> None:
        super().__init__()
        self.fields = fields

    def context(self) -> dict[str, JsonValue]:
        return self.fields


def log_json_lines(**fields: JsonValue) -> None:
    """Send this process's log records (loanrisk's from INFO, others' from WARNING) and its
    warnings to stderr, one JSON line each carrying ``fields`` (a job child: its kind and
    process id); replaces the root handlers the process inherited."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ChildContext(fields))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # other libraries' warnings; loanrisk's own from INFO
    logging.getLogger("loanrisk").setLevel(logging.INFO)
    logging.captureWarnings(True)  # warnings.warn's two lines become one record
