"""The declared loan schema: its model, the built-in schema, drafts from data, validation."""

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
    header_name,
    invalid_from_issues,
    merge_reports,
    validate_chunks,
    validate_frame,
    validate_records,
)

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
