"""The reference's request fields, parsed once into a typed model.

Its clients send loose values: the string ``"None"`` (or nothing) for an absent value,
``size`` as a number or as text (``"4000000"``, ``"4e6"``), ``continue_training`` as
``"False"``. :class:`ReferenceFields` turns all of that into typed values where the request
enters, naming the field of any value it cannot use; the flavours' handlers take the model,
never the raw form or JSON.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from starlette.datastructures import UploadFile

from loanrisk.serving.locations import given

#: A ``size`` written longer than this is not a row count.
MAX_SIZE_CHARS = 40


def _text(value: object) -> str | None:
    if isinstance(value, dict | list | UploadFile):
        raise ValueError("expected a text value")
    return given(value)


def _size(value: object) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not number.is_integer() or len(text) > MAX_SIZE_CHARS:
        raise ValueError(f"a whole number of rows, not {text[:40]!r}")
    if number < 1:
        raise ValueError("at least 1 row")
    return int(number)


def _flag(value: object) -> bool:
    text = (_text(value) or "false").lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"True or False, not {text[:20]!r}")
    return text in ("true", "1", "yes")


Text = Annotated[str | None, BeforeValidator(_text)]


class ReferenceFields(BaseModel):
    """Every field either flavour sends; fields it does not know are ignored, as the
    reference ignored them."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    # The Azure flavour (multipart form): the file-share mount and folders inside it.
    az_file_path: Text = None
    data_directory: Text = None
    model_directory: Text = None
    sample_directory: Text = None
    file: UploadFile | None = None
    # The AWS flavour (JSON): a bucket and keys in it, or local paths.
    backend: Literal["s3", "local"] = "s3"
    bucket: Text = None
    key: Text = None
    target_path: Text = None
    local_path: Text = None
    data_key: Text = None
    model_key: Text = None
    local_model_path: Text = None
    local_data_path: Text = None
    preprocessor_path: Text = None
    csv_payload: Text = None
    sample: list[Any] | None = None
    # Both.
    model_name: Text = None
    size: Annotated[int | None, BeforeValidator(_size)] = None
    continue_training: Annotated[bool, BeforeValidator(_flag)] = Field(False)
    # Ours, not the reference's (its clients never send it): /predict adds decline notices.
    decline_reasons: Annotated[bool, BeforeValidator(_flag)] = Field(False)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object) -> object:
        text = _text(value)
        return "s3" if text is None else text.lower()

    @field_validator("sample", mode="before")
    @classmethod
    def _one_loan_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value

    @field_validator("file", mode="before")
    @classmethod
    def _upload(cls, value: object) -> object:
        if value is None or isinstance(value, UploadFile):
            return value
        if given(value) is None:
            return None
        raise ValueError("a file upload")
