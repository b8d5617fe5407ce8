"""What every transport needs to answer an error: the HTTP status of each error of the tree
(:mod:`loanrisk.errors`, which names no status), for the HTTP transports (the v1 and reference
routes, OIP REST, the console's pages), and a typed model's refusal as an
:class:`~loanrisk.errors.InvalidInput` naming every bad field. gRPC maps the same tree to its
own codes (:mod:`loanrisk.oip.grpc_service`)."""

from __future__ import annotations

from pydantic import ValidationError

from loanrisk import errors

STATUS: dict[type[errors.LoanRiskError], int] = {
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.PathNotAllowed: 403,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.TooBusy: 429,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Cancelled: 409,
    errors.StorageError: 503,
    errors.NotInstalled: 501,
}


def status_of(exc: errors.LoanRiskError) -> int:
    """The HTTP status of ``exc``: its nearest class's in :data:`STATUS`, else 500."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def invalid_fields(exc: ValidationError, prefix: str = "body") -> errors.InvalidInput:
    """A typed model's refusal of client values, as the error naming the first bad field
    (``prefix.loc``) and listing all of them in ``details["fields"]``."""
    problems = [
        {"field": ".".join(str(p) for p in (prefix, *e["loc"]) if p != ""), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0] if problems else {"field": prefix, "message": "invalid"}
    return errors.InvalidInput(
        f"{first['field']}: {first['message']}",
        details={"field": first["field"], "fields": problems},
    )
