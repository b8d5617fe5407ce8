"""Open Inference Protocol v2 tensors (kserve/open-inference-protocol) as loans, and scores
as tensors; shared by the REST routes and the gRPC service.

A request carries the loans in one of two forms:

- **columnar**: one input per attribute of the model's schema, shape ``[N]`` (or ``[N, 1]``),
  ``BYTES`` for text and categories, ``FP64``/``FP32``/``INT64``/``INT32``/``BOOL`` for
  numbers (MLServer's ``"parameters": {"content_type": "pd"}`` is this form); an input named
  after the schema's id column (or ``id``) names the loans in the prediction log;
- **matrix**: a single ``BYTES`` or ``FP64`` input of shape ``[N, k]``, the k attributes in the
  schema's order.

The loans then go through the same record validation as ``/v1/predict``, so text and numbers
follow the rule every format shares (``loanrisk.schema.text``): a number a BYTES tensor holds is
an ASCII decimal, and text with a control character is refused naming the attribute (a JSON
body with a lone surrogate, or BYTES that are not UTF-8, never parse). Outputs:
``probability`` (FP64), ``label`` (BOOL), ``band`` (BYTES), ``grade`` (BYTES: the grade of the
version's master scale), ``score`` (INT64: whole points of the version's scaling), and, when
asked for, ``reasons``
(BYTES, a JSON list per loan) and ``decline_reasons`` (BYTES, a JSON list of ``{code,
reason}`` per loan: what a declined loan's adverse-action notice states, ``[]`` for an
approved one).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from loanrisk.errors import InvalidInput, TooLarge
from loanrisk.inference.results import LoanScore, decline_json, reason_json
from loanrisk.schema import LoanSchema
from loanrisk.schema.text import decimal

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
#: numpy types of the fixed-size datatypes, as sent in binary (little-endian).
NUMPY = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
#: Schema column types sent as BYTES (the rest are numbers).
TEXT = frozenset({"categorical", "ordinal", "date"})
NUMBERS = frozenset(NUMPY)  # every datatype but BYTES
OUTPUTS = ("probability", "label", "band", "grade", "score", "reasons", "decline_reasons")
DEFAULT_OUTPUTS = ("probability", "label", "band", "grade", "score")
MAX_INPUTS = 64
_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"


class BadTensor(InvalidInput):
    """A request whose tensors do not fit the protocol or the model (OIP answers 400)."""

    code = "bad_tensor"


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: Datatype
    parameters: dict[str, JsonValue] | None = None
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    parameters: dict[str, JsonValue] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=256)
    # Not in the protocol's request, but sent by KServe's client; must agree with the path.
    model_name: str | None = Field(None, max_length=64)
    model_version: str | None = Field(None, max_length=12)
    parameters: dict[str, JsonValue] | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=MAX_INPUTS)
    outputs: list[RequestOutput] | None = Field(None, max_length=len(OUTPUTS))


def parse_request(doc: Any) -> InferenceRequest:
    """A request already decoded (gRPC's), typed; a structural problem names its place
    (``inputs.0.shape``)."""
    try:
        return InferenceRequest.model_validate(doc)
    except ValidationError as exc:
        raise _bad(exc) from None


def parse_request_json(body: bytes) -> InferenceRequest:
    """The request's JSON, parsed and typed in one pass (``NaN`` is a missing number, as
    tritonclient writes it)."""
    try:
        return InferenceRequest.model_validate_json(body)
    except ValidationError as exc:
        raise _bad(exc) from None


def _bad(exc: ValidationError) -> BadTensor:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(map(str, first["loc"])) or "body"
    return BadTensor(f"{where}: {first['msg']}", details={"field": where})


def _flat(values: list[Any]) -> list[Any]:
    """Tensor data in its natural (nested) form or flattened, as one flat list."""
    if not values or type(values[0]) is not list:  # flat (a list inside is refused later)
        return values
    out: list[Any] = []
    for value in values:
        out.extend(_flat(value) if isinstance(value, list) else [value])
    return out


def _size(shape: Sequence[int]) -> int:
    return math.prod(shape)


def decode_bytes(raw: bytes, name: str) -> list[str]:
    """A binary BYTES tensor: each element a 4-byte little-endian length, then its bytes."""
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadTensor(f"input {name!r}: truncated BYTES element")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadTensor(f"input {name!r}: truncated BYTES element")
        out.append(_text(raw[offset : offset + length], name))
        offset += length
    return out


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise BadTensor(f"input {name!r}: BYTES elements must be UTF-8 text") from None


def decode_binary(datatype: str, raw: bytes, name: str) -> list[Any]:
    """The elements of a tensor sent as raw bytes (binary extension, gRPC raw contents)."""
    if datatype == "BYTES":
        return decode_bytes(raw, name)
    width = np.dtype(NUMPY[datatype]).itemsize
    if len(raw) % width:
        raise BadTensor(
            f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements"
        )
    return np.frombuffer(raw, dtype=NUMPY[datatype]).tolist()  # type: ignore[no-any-return]


def _values(tensor: RequestInput, data: list[Any] | None) -> list[Any]:
    if data is None:
        raise BadTensor(f"input {tensor.name!r} has no data", details={"field": tensor.name})
    flat = _flat(data)
    if len(flat) != _size(tensor.shape):
        raise BadTensor(
            f"input {tensor.name!r}: shape {tensor.shape} holds "
            f"{_size(tensor.shape)} elements, its data has {len(flat)}",
            details={"field": tensor.name},
        )
    if tensor.datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise BadTensor(
                f"input {tensor.name!r}: BYTES data must be strings", details={"field": tensor.name}
            )
        return flat
    if tensor.datatype == "BOOL":
        if not all(type(v) is bool or type(v) is int for v in flat):
            raise BadTensor(
                f"input {tensor.name!r}: BOOL data must be booleans", details={"field": tensor.name}
            )
        return [bool(v) for v in flat]
    out: list[Any] = []
    for value in flat:  # one pass: this runs for every attribute of every request
        kind = type(value)
        if kind is float:
            if value != value:  # NaN is a missing value: the schema's ``missing`` rule decides
                out.append(None)
                continue
            if value in (math.inf, -math.inf):
                raise BadTensor(
                    f"input {tensor.name!r}: infinite values are not numbers a loan has",
                    details={"field": tensor.name},
                )
        elif kind is not int and kind is not bool:
            raise BadTensor(
                f"input {tensor.name!r}: {tensor.datatype} data must be numbers",
                details={"field": tensor.name},
            )
        out.append(value)
    return out


#: A loan's value as a tensor carries it (None: a missing number).
LoanValue = str | float | bool | None
#: A loan as the tensors give it, by attribute (validated later, as v1's JSON loans are).
Loan = dict[str, LoanValue]
#: Tensor output and metadata documents, as the REST answer holds them.
TensorDoc = dict[str, str | list[int] | list[float] | list[bool] | list[str]]
TensorMetaDoc = dict[str, str | list[int]]
MetadataDoc = dict[str, str | list[str] | list[TensorMetaDoc] | dict[str, str | list[str]]]


def loans(
    request: InferenceRequest,
    schema: LoanSchema,
    *,
    max_records: int,
    binary: Mapping[str, bytes] | None = None,
) -> list[Loan]:
    """The request's loans as JSON-like records (validated later, as v1's are).
    ``binary`` holds inputs sent as raw bytes, by name."""
    binary = binary or {}
    features = schema.feature_names

    def data_of(tensor: RequestInput) -> list[Any]:
        raw = binary.get(tensor.name)
        return _values(
            tensor,
            decode_binary(tensor.datatype, raw, tensor.name) if raw is not None else tensor.data,
        )

    if (
        len(request.inputs) == 1
        and len(request.inputs[0].shape) == 2
        and request.inputs[0].shape[1] != 1
    ):
        tensor = request.inputs[0]
        rows, width = tensor.shape
        if width != len(features):
            raise BadTensor(
                f"input {tensor.name!r}: shape [N, {width}], but the model's schema "
                f"{schema.name!r} has {len(features)} attributes: "
                f"{', '.join(features)}",
                details={"field": tensor.name},
            )
        if tensor.datatype not in ("BYTES", "FP64"):
            raise BadTensor(
                f"input {tensor.name!r}: a [N, {width}] input is BYTES or FP64, "
                f"not {tensor.datatype}",
                details={"field": tensor.name},
            )
        _check_rows(rows, max_records)
        flat = data_of(tensor)
        if tensor.datatype == "BYTES":  # numbers arrive as text: read them as v1 reads JSON
            numbers = {i for i, c in enumerate(schema.features) if c.type not in TEXT}
            flat = [
                _number(v, features[i % width]) if i % width in numbers else v
                for i, v in enumerate(flat)
            ]
        return [
            dict(zip(features, flat[i * width : (i + 1) * width], strict=True)) for i in range(rows)
        ]
    return _columnar(request, schema, max_records, data_of)


def _number(text: str, name: str) -> float | None:
    """A number a BYTES tensor holds as text, by the rule JSON and CSV share (an ASCII
    decimal, ``loanrisk.schema.text``); the missing-value words are None."""
    if text.strip() in ("", "nan", "NaN", "null", "None"):
        return None
    try:
        return decimal(text)
    except ValueError:
        raise BadTensor(
            f"attribute {name!r}: {text[:40]!r} is not a number", details={"field": name}
        ) from None


def _check_rows(rows: int, max_records: int) -> None:
    if rows < 1:
        raise BadTensor("no loans: the first dimension of the inputs is 0")
    if rows > max_records:
        raise TooLarge(
            f"{rows} loans: at most {max_records} a request", details={"limit": max_records}
        )


def _columnar(
    request: InferenceRequest,
    schema: LoanSchema,
    max_records: int,
    data_of: Callable[[RequestInput], list[Any]],
) -> list[Loan]:
    by_name = schema.by_name
    ids = {n for n in (schema.id_name, "id") if n}
    names = [t.name for t in request.inputs]
    unknown = [n for n in names if n not in by_name and n not in ids]
    missing = [f for f in schema.feature_names if f not in names]
    if unknown or missing:
        parts = ([f"missing input(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown input(s) {', '.join(unknown)}"] if unknown else []
        )
        raise BadTensor(
            f"{'; '.join(parts)}: send one input per attribute of the schema "
            f"{schema.name!r} ({', '.join(schema.feature_names)}), or one "
            "[N, k] input",
            details={"missing": missing, "unknown": unknown},
        )
    if len(set(names)) != len(names):
        raise BadTensor("an input is given twice")
    columns: dict[str, list[Any]] = {}
    for tensor in request.inputs:
        if len(tensor.shape) == 2 and tensor.shape[1] != 1:
            raise BadTensor(
                f"input {tensor.name!r}: shape {tensor.shape}; one attribute per "
                "input is [N] or [N, 1]",
                details={"field": tensor.name},
            )
        column = by_name.get(tensor.name)
        text = column is not None and column.type in TEXT
        number = column is not None and not text
        if (text and tensor.datatype != "BYTES") or (number and tensor.datatype not in NUMBERS):
            wanted = "BYTES" if text else "a number type (FP64, FP32, INT64, INT32, BOOL)"
            raise BadTensor(
                f"input {tensor.name!r}: {tensor.datatype}, but the attribute is "
                f"{column.type if column else 'an id'}: send {wanted}",
                details={"field": tensor.name},
            )
        columns[tensor.name] = data_of(tensor)
    rows = {t.shape[0] for t in request.inputs}
    if len(rows) != 1:
        raise BadTensor(f"inputs of different lengths {sorted(rows)}: one loan per row")
    (count,) = rows
    _check_rows(count, max_records)
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def requested(request: InferenceRequest) -> tuple[str, ...]:
    """The outputs to return (default: probability, label, band, grade and score)."""
    if request.outputs is None:
        return DEFAULT_OUTPUTS
    names = tuple(o.name for o in request.outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise BadTensor(
            f"unknown output(s) {', '.join(unknown)}: this model gives {', '.join(OUTPUTS)}"
        )
    return names


@dataclass(frozen=True, slots=True)
class OutputTensor:
    """One output of an inference response: ``shape`` ``[N]``, one element per loan."""

    name: str
    datatype: str
    shape: list[int]
    data: list[float] | list[bool] | list[str] | list[int]

    def to_json(self) -> TensorDoc:
        return {
            "name": self.name,
            "datatype": self.datatype,
            "shape": self.shape,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class InferenceResponse:
    """An inference response: the model, the version that answered (``versions``: every
    version that answered some loan, comma-separated, when a canary answered some), the
    request's ``id`` and the outputs asked for."""

    model_name: str
    model_version: str
    outputs: list[OutputTensor]
    id: str | None = None
    versions: str | None = None

    def to_json(self) -> dict[str, str | list[TensorDoc] | dict[str, str]]:
        """The REST body (``id`` and ``parameters`` only when there are any)."""
        body: dict[str, str | list[TensorDoc] | dict[str, str]] = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "outputs": [o.to_json() for o in self.outputs],
        }
        if self.id is not None:
            body["id"] = self.id
        if self.versions is not None:
            body["parameters"] = {"versions": self.versions}
        return body


def outputs(results: Sequence[LoanScore], names: Sequence[str]) -> list[OutputTensor]:
    """The response's output tensors, in the order asked for."""
    n = len(results)
    columns: dict[str, tuple[str, list[float] | list[bool] | list[str] | list[int]]] = {
        "probability": ("FP64", [r.probability for r in results]),
        "label": ("BOOL", [r.label for r in results]),
        "band": ("BYTES", [r.band for r in results]),
        "grade": ("BYTES", [r.grade for r in results]),
        "score": ("INT64", [r.score for r in results]),
    }
    if "reasons" in names:
        columns["reasons"] = (
            "BYTES",
            [json.dumps([reason_json(x) for x in r.reasons or ()]) for r in results],
        )
    if "decline_reasons" in names:
        columns["decline_reasons"] = (
            "BYTES",
            [json.dumps([decline_json(x) for x in r.decline_reasons or ()]) for r in results],
        )
    return [OutputTensor(name, columns[name][0], [n], columns[name][1]) for name in names]


@dataclass(frozen=True, slots=True)
class TensorMetadata:
    name: str
    datatype: str
    shape: list[int]

    def to_json(self) -> TensorMetaDoc:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """A model's metadata: its versions, inputs (one per attribute of ``schema``; the [N, k]
    alternative's columns are ``matrix_columns``) and outputs."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    schema: str
    matrix_columns: list[str]

    def to_json(self) -> MetadataDoc:
        return {
            "name": self.name,
            "versions": self.versions,
            "platform": self.platform,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "parameters": {"schema": self.schema, "matrix_columns": self.matrix_columns},
        }


def model_metadata(name: str, versions: Sequence[int], schema: LoanSchema) -> ModelMetadata:
    """Inputs (one per attribute, and the [N, k] alternative's width in ``parameters``) and
    outputs of a model."""
    return ModelMetadata(
        name=name,
        versions=[str(v) for v in versions],
        platform="xgboost_ubj",
        inputs=[
            TensorMetadata(c.name, "BYTES" if c.type in TEXT else "FP64", [-1])
            for c in schema.features
        ],
        outputs=[
            TensorMetadata("probability", "FP64", [-1]),
            TensorMetadata("label", "BOOL", [-1]),
            TensorMetadata("band", "BYTES", [-1]),
            TensorMetadata("grade", "BYTES", [-1]),
            TensorMetadata("score", "INT64", [-1]),
            TensorMetadata("reasons", "BYTES", [-1]),
            TensorMetadata("decline_reasons", "BYTES", [-1]),
        ],
        schema=schema.name,
        matrix_columns=list(schema.feature_names),
    )
