"""Personal fields in the prediction log: what a schema declares ``pii: true`` never reaches
the log in clear.

The setting ``log_pii`` chooses how such a field is stored: ``drop`` leaves it out of the
logged loan; ``hash`` stores ``hmac-sha256:<hex>``, a keyed HMAC-SHA256 (secret
``log_pii_key``) of the value's text, so rows of one applicant still join on it while the
value cannot be read back, nor guessed without the key. A missing value stays ``null``.
Reports that read the loans back (drift) leave such fields out (:func:`readable_schema`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loanrisk.schema.model import Column, LoanSchema
from loanrisk.settings import Settings

#: The prefix of a hashed value in the log.
HASHED = "hmac-sha256:"


def _text(value: Any) -> str:
    """A value's text as hashed: one text per value, whatever JSON or CSV carried it
    (``1``, ``1.0`` and ``"1"`` are one text; booleans ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class PersonalFields:
    """How the log stores a schema's personal fields (``drop``, or ``hash`` with ``key``)."""

    mode: Literal["hash", "drop"] = "drop"
    key: bytes | None = None

    def __post_init__(self) -> None:
        if self.mode == "hash" and not self.key:
            raise ValueError("hashing personal fields needs a key")

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonalFields:
        key = settings.log_pii_key
        return cls(settings.log_pii, None if key is None else key.get_secret_value().encode())

    def digest(self, value: Any) -> str:
        """The stored form of a value under ``hash``."""
        assert self.key is not None
        text = _text(value).encode("utf-8", "surrogatepass")
        return HASHED + hmac.new(self.key, text, hashlib.sha256).hexdigest()

    def protect(self, record: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
        """``record`` with its fields named in ``names`` (matched trimmed and lower-case, as
        headers are) dropped or hashed; other fields as received."""
        out: dict[str, Any] = {}
        for field, value in record.items():
            if str(field).strip().lower() not in names:
                out[field] = value
            elif self.mode == "hash":
                out[field] = None if value is None else self.digest(value)
        return out


def readable_schema(schema: LoanSchema) -> tuple[LoanSchema | None, list[str]]:
    """``schema`` as the log's loans can be read back, and the features left out: each
    personal feature becomes an ignored column (its logged value is a hash, or absent).
    None when every feature is personal: no feature can be read back."""
    left_out = [c.name for c in schema.features if c.pii]
    if not left_out:
        return schema, []
    columns = [
        Column(name=c.name, role="ignored", type=c.type, pii=True)
        if c.role == "feature" and c.pii
        else c
        for c in schema.columns
    ]
    if not any(c.role == "feature" for c in columns):
        return None, left_out
    doc = {**schema.model_dump(), "columns": [c.model_dump() for c in columns]}
    return LoanSchema.model_validate(doc), left_out
