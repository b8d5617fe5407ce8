"""The built-in schema's names, as tests use them (the library reads the schema instead)."""

from typing import Any

from loanrisk.schema import builtin_schema

SCHEMA = builtin_schema()
#: The loan the reference's users send in its sample /predict request (REFERENCE.md).
EXAMPLE_LOAN = SCHEMA.example_record()
LABEL = SCHEMA.label_name
FEATURES = SCHEMA.feature_names


def oip_inputs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Built-in-schema loans (every value present) as OIP v2 input tensors, one per feature."""
    return [
        {
            "name": c.name,
            "shape": [len(records)],
            "datatype": "BYTES" if c.type in ("categorical", "ordinal") else "FP64",
            "data": [r[c.name] for r in records],
        }
        for c in SCHEMA.features
    ]
