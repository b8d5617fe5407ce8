"""The built-in schema's names, as tests use them (the library reads the schema instead)."""

from loanrisk.schema import builtin_schema

SCHEMA = builtin_schema()
#: The loan the reference's users send in its sample /predict request (REFERENCE.md).
EXAMPLE_LOAN = SCHEMA.example_record()
LABEL = SCHEMA.label_name
FEATURES = SCHEMA.feature_names
