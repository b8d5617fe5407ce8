"""The one error tree of loanrisk.

Library code raises these; front ends translate them (the CLI to a one-line message and an
exit code, the HTTP service to a status and a JSON body). Nothing here knows about HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class LoanRiskError(Exception):
    """Base of every error loanrisk raises on purpose.

    ``code`` is a stable machine-readable name; ``details`` is JSON-serialisable context
    (for validation errors: the grouped issues with row numbers and columns).
    """

    code = "loanrisk_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(LoanRiskError):
    """The caller's data or arguments are wrong; retrying the same input fails the same way."""

    code = "invalid_input"


class PathNotAllowed(InvalidInput):
    """A caller-supplied path or bucket lies outside the configured storage roots."""

    code = "path_not_allowed"


class TooLarge(InvalidInput):
    """The input exceeds a configured limit (records per request, upload size)."""

    code = "too_large"


class UnsupportedMediaType(InvalidInput):
    """The request body's content type is not one the route reads."""

    code = "unsupported_media_type"


class TooBusy(LoanRiskError):
    """A bounded queue is full; retry after ``retry_after`` seconds."""

    code = "too_busy"

    def __init__(
        self, message: str, *, retry_after: int = 5, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details={"retry_after": retry_after, **(details or {})})
        self.retry_after = retry_after


class NotFound(LoanRiskError):
    """A named dataset, model, version or file does not exist."""

    code = "not_found"


class Conflict(LoanRiskError):
    """The request is valid but clashes with the current state (e.g. an id already taken)."""

    code = "conflict"


class HashMismatch(Conflict):
    """A stored file no longer matches the SHA-256 recorded when it was written (changed or
    corrupted since). Whatever would read it refuses instead, naming the file: the request
    is valid, the stored state is not (a :class:`Conflict`, 409 at the HTTP edge), and it
    succeeds again once the item is rebuilt."""

    code = "hash_mismatch"


class StorageError(LoanRiskError):
    """The storage backend failed (unreachable, permission denied, corrupt object)."""

    code = "storage_error"


class Cancelled(LoanRiskError):
    """A long-running job (training) was cancelled on request; it published nothing."""

    code = "cancelled"


class Unauthenticated(LoanRiskError):
    """The request carries no API key, or one that is not known."""

    code = "unauthenticated"


class Forbidden(LoanRiskError):
    """The API key is known but lacks the scope the request needs."""

    code = "forbidden"


class NotInstalled(LoanRiskError):
    """The command needs an optional extra this installation lacks (``details["extra"]``;
    :mod:`loanrisk.extras`): the serving image leaves tuning and optimal binning out.
    Retrying fails the same way until it runs where the extra is installed."""

    code = "not_installed"


_BY_CODE: dict[str, type[LoanRiskError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        PathNotAllowed,
        TooLarge,
        UnsupportedMediaType,
        TooBusy,
        NotFound,
        Conflict,
        HashMismatch,
        StorageError,
        Cancelled,
        Unauthenticated,
        Forbidden,
        NotInstalled,
    )
}


@contextmanager
def naming(field: str) -> Iterator[None]:
    """Refusals (:class:`InvalidInput`, :class:`NotFound`) raised inside name the request's
    ``field`` in their details, as a refusal at the edge must."""
    try:
        yield
    except (InvalidInput, NotFound) as exc:
        raise type(exc)(exc.message, details={**exc.details, "field": field}) from None


def error_from_dict(doc: dict[str, Any]) -> LoanRiskError:
    """Rebuild an error from :meth:`LoanRiskError.to_dict` (sent across a process boundary)."""
    cls = _BY_CODE.get(str(doc.get("code")), LoanRiskError)
    error = cls(str(doc.get("message")), details=doc.get("details") or {})
    if cls is LoanRiskError and doc.get("code"):
        error.code = str(doc["code"])
    return error


#: An absolute path of two or more parts (``/tmp/x``), not a ratio such as ``75%/25%``.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.%])/(?:[^\s'\":,()\[\]/]+/)+[^\s'\":,()\[\]]*")
MAX_REASON_CHARS = 300


def describe_error(exc: BaseException) -> str:
    """One line about ``exc`` that is safe to show a client: a loanrisk error's message, or
    the type and first line of any other exception, with absolute paths replaced."""
    if isinstance(exc, LoanRiskError):
        return exc.message
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return _ABSOLUTE_PATH.sub("<path>", text)[:MAX_REASON_CHARS]
