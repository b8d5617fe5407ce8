"""The loan as the API documents it: a JSON Schema and examples built from a declared schema.

``/v1/predict``'s request body in the OpenAPI description shows the fields of the model the
service serves (its declared schema), with an example record built from the schema's
examples; ``service/openapi.py`` swaps it in when the served model's schema changes.
"""

from __future__ import annotations

import csv
import io

from pydantic import JsonValue

from loanrisk.contracts import PredictOptions
from loanrisk.schema import Column, LoanSchema


def _field(column: Column) -> dict[str, JsonValue]:
    doc: dict[str, JsonValue]
    if column.type in ("numeric", "integer"):
        doc = {"type": "number" if column.type == "numeric" else "integer"}
        if column.valid is not None and column.valid.min is not None:
            doc["minimum"] = column.valid.min
        if column.valid is not None and column.valid.max is not None:
            doc["maximum"] = column.valid.max
    elif column.type == "boolean":
        doc = {"type": "boolean"}
    else:
        doc = {"type": "string", "enum": list(column.categories or ())}
        if column.unknown != "refuse":
            doc.pop("enum")
            doc["examples"] = list(column.categories or ())
    words = [column.title or "", column.description]
    doc["description"] = ": ".join(w for w in words if w) or column.name
    optional = column.missing == "allow"
    return (
        {"anyOf": [doc, {"type": "null"}], "description": doc["description"]} if optional else doc
    )


def loan_json_schema(schema: LoanSchema) -> dict[str, JsonValue]:
    """One loan of ``schema``: every feature named (``null`` where a value is missing)."""
    return {
        "type": "object",
        "title": f"Loan ({schema.name})",
        "description": f"One loan of schema {schema.name!r} (hash {schema.fingerprint()}).",
        "properties": {c.name: _field(c) for c in schema.features},
        "required": list(schema.feature_names),
    }


def _csv(record: dict[str, JsonValue]) -> str:
    """``record`` as a CSV with its header (quoted where a value needs it)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows([list(record), list(record.values())])
    return text.getvalue()


def predict_body(schema: LoanSchema) -> dict[str, JsonValue]:
    """The ``requestBody`` of ``POST /v1/predict`` for a model of ``schema``."""
    loan = loan_json_schema(schema)
    example = schema.example_record()
    options = PredictOptions.model_json_schema()
    options["properties"]["records"] = {"type": "array", "items": loan, "description": "The loans."}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        options,
                        loan,
                        {"type": "array", "items": loan, "description": "Loans."},
                    ]
                },
                "examples": {
                    "one loan": {"value": example},
                    "many, with reasons": {
                        "value": {
                            "records": [example],
                            "explain": True,
                            "top_k": 4,
                            "on_error": "skip",
                            "decline_reasons": True,
                        }
                    },
                },
            },
            "text/csv": {"schema": {"type": "string"}, "example": _csv(example)},
        },
    }
