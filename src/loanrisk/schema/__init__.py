"""The declared loan schema: its model, the built-in schema, drafts from data, validation.

Names are imported on first use: the schema's model (``loanrisk.schema.model``) is light and
the contracts build on it, while validation needs pandas, which a light caller (the command
line's ``--help``, ``loanrisk.contracts``) must not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk.schema.files import (
        builtin_schema,
        json_schema,
        parse_schema,
        read_schema,
        schema_from_doc,
    )
    from loanrisk.schema.model import Column, LoanSchema, incompatibilities
    from loanrisk.schema.validate import (
        MAX_ISSUES,
        MAX_REJECTED_ROWS,
        Issue,
        Mode,
        Validated,
        ValidationReport,
        builtin_schema_hint,
        header_name,
        invalid_from_issues,
        merge_reports,
        validate_chunks,
        validate_frame,
        validate_records,
    )

_FILES = ("builtin_schema", "json_schema", "parse_schema", "read_schema", "schema_from_doc")
_MODEL = ("Column", "LoanSchema", "incompatibilities")
_VALIDATE = (
    "MAX_ISSUES",
    "MAX_REJECTED_ROWS",
    "Issue",
    "Mode",
    "Validated",
    "ValidationReport",
    "builtin_schema_hint",
    "header_name",
    "invalid_from_issues",
    "merge_reports",
    "validate_chunks",
    "validate_frame",
    "validate_records",
)
#: Where each name lives.
_LAZY = {
    **dict.fromkeys(_FILES, "loanrisk.schema.files"),
    **dict.fromkeys(_MODEL, "loanrisk.schema.model"),
    **dict.fromkeys(_VALIDATE, "loanrisk.schema.validate"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loanrisk.schema' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_ISSUES",
    "MAX_REJECTED_ROWS",
    "Column",
    "Issue",
    "LoanSchema",
    "Mode",
    "Validated",
    "ValidationReport",
    "builtin_schema",
    "builtin_schema_hint",
    "header_name",
    "incompatibilities",
    "invalid_from_issues",
    "json_schema",
    "merge_reports",
    "parse_schema",
    "read_schema",
    "schema_from_doc",
    "validate_chunks",
    "validate_frame",
    "validate_records",
]
