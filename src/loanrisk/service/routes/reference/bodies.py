"""The OpenAPI request bodies of the reference's routes, as its clients send them."""

from __future__ import annotations

from typing import Any

from loanrisk.schema import LoanSchema, builtin_schema
from loanrisk.service.bodies import JSON, MULTIPART

#: The OpenAPI schema of one field: its type (or types), format and description.
Property = dict[str, str | list[dict[str, str | int]] | dict[str, str]]
#: A multipart form's example: text fields and a row count.
FormExample = dict[str, str | int]

_TEXT: Property = {"type": "string"}
_FILE: Property = {"type": "string", "format": "binary", "description": "A loan CSV."}
_SIZE: Property = {
    "oneOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*$", "maxLength": 40},
    ],
    "description": "Rows: at least 1.",
}
#: Not the reference's: /predict's decline notices (True/False, as its continue_training).
_DECLINE: Property = {
    "oneOf": [{"type": "boolean"}, {"type": "string"}],
    "description": "Ours, not the reference's: True adds what each declined loan's "
    "adverse-action notice states (decline_reasons; for CSV rows also decline_codes).",
}


def _body(
    form: dict[str, Property],
    aws: dict[str, Property],
    *,
    form_example: FormExample,
    aws_example: dict[str, Any] | None,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The request body the reference's clients send: a multipart form (Azure flavour), and
    JSON (AWS flavour) where that flavour has the route."""
    multipart = {
        MULTIPART: {
            "schema": {"type": "object", "properties": form, "required": list(required)},
            "example": form_example,
        }
    }
    aws_json = {JSON: {"schema": {"type": "object", "properties": aws}, "example": aws_example}}
    content = {**(multipart if form else {}), **(aws_json if aws_example is not None else {})}
    return {"requestBody": {"required": True, "content": content}}


def predict_example(
    schema: LoanSchema,
    *,
    model_name: str = "model.joblib",
    model_key: str = "model",
    bucket: str = "loan-default",
) -> dict[str, Any]:
    """``POST /predict``'s AWS-flavour example: one loan of ``schema`` for the model
    ``model_name`` in the folder ``model_key`` (``service/openapi.py`` names the served
    model, in its schema)."""
    return {
        "backend": "s3",
        "model_name": model_name,
        "data_key": "data",
        "bucket": bucket,
        "model_key": model_key,
        "sample": [schema.example_record()],
        "local_model_path": "None",
        "preprocessor_path": "None",
    }


_AZURE: dict[str, Property] = {"az_file_path": _TEXT, "data_directory": _TEXT}
_AWS_MODEL: dict[str, Property] = {
    "bucket": _TEXT,
    "backend": _TEXT,
    "model_key": _TEXT,
    "model_name": _TEXT,
    "local_model_path": _TEXT,
    "data_key": _TEXT,
    "local_data_path": _TEXT,
}
DATA_PROCESSING = _body(
    {**_AZURE, "file": _FILE, "size": _SIZE},
    {},
    form_example={
        "az_file_path": "/loan_app/azure-fileshare",
        "data_directory": "data",
        "size": 4_000_000,
    },
    aws_example=None,
    required=("file",),
)
DATA = _body(
    {},
    {
        "bucket": _TEXT,
        "backend": _TEXT,
        "key": _TEXT,
        "target_path": _TEXT,
        "local_path": _TEXT,
        "size": _SIZE,
    },
    form_example={},
    aws_example={
        "bucket": "loan-default",
        "backend": "s3",
        "key": "data/credit_risk_dataset.csv",
        "target_path": "None",
        "local_path": "None",
        "size": 400_000,
    },
)
TRAIN = _body(
    {
        **_AZURE,
        "model_directory": _TEXT,
        "model_name": _TEXT,
        "continue_training": _TEXT,
        "size": _SIZE,
    },
    {**_AWS_MODEL, "size": _SIZE, "continue_training": _TEXT},
    form_example={
        "az_file_path": "/loan_app/azure-fileshare",
        "data_directory": "data",
        "model_directory": "models",
        "model_name": "XGBoost",
        "continue_training": "False",
        "size": 4_000_000,
    },
    aws_example={
        "bucket": "loan-default",
        "backend": "s3",
        "local_model_path": "None",
        "data_key": "data",
        "model_key": "model",
        "model_name": "model.joblib",
        "local_data_path": "None",
    },
)
PREDICT = _body(
    {
        **_AZURE,
        "file": _FILE,
        "model_directory": _TEXT,
        "model_name": _TEXT,
        "sample_directory": _TEXT,
        "decline_reasons": _DECLINE,
    },
    {
        **_AWS_MODEL,
        "sample": {"type": "array", "items": {"type": "object"}},
        "csv_payload": _TEXT,
        "preprocessor_path": _TEXT,
        "decline_reasons": _DECLINE,
    },
    form_example={
        "az_file_path": "/loan_app/azure-fileshare",
        "data_directory": "data",
        "model_directory": "models",
        "model_name": "XGBoost",
        "sample_directory": "samples",
    },
    aws_example=predict_example(builtin_schema()),
    required=(),
)
