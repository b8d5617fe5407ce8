"""Validating one loan record in plain Python: the per-request path never touches pandas.

The rules are the schema's (``loanrisk.schema``), applied in scoring mode: a missing required
field, a value that is not a number, or an impossible value rejects the record with a message
naming the field; an unknown category or a missing optional value is scored (as the reference
does) and reported as a warning. Numbers may come as JSON numbers or numeric strings;
categories are matched case-insensitively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loanrisk.errors import InvalidInput
from loanrisk.schema import CATEGORICAL, LABEL, NUMERIC

_KNOWN = {c.name for c in NUMERIC} | {c.name for c in CATEGORICAL} | {LABEL}


@dataclass
class CleanRecord:
    """A record ready for :meth:`FeatureTransformer.transform_record`, with its warnings."""

    values: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class FieldError:
    field: str
    message: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        raise ValueError("true/false is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def clean_record(record: Mapping[str, Any]) -> CleanRecord | list[FieldError]:
    """The cleaned record, or every problem that rejects it (never raises for bad data)."""
    if not isinstance(record, Mapping):
        return [FieldError("", "a loan record must be a JSON object")]
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    out: dict[str, Any] = {}
    warnings: list[str] = []
    problems: list[FieldError] = []
    for spec in NUMERIC:
        raw = lowered.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if spec.required:
                problems.append(FieldError(spec.name, "required value missing"))
            else:
                warnings.append(f"{spec.name}: missing, scored as missing")
            out[spec.name] = None
            continue
        try:
            number = _number(raw)
        except ValueError as exc:
            reason = str(exc) if "number" in str(exc) else "not a number"
            problems.append(FieldError(spec.name, f"{reason} ({raw!r})"))
            continue
        low, high = spec.valid
        if number is not None and not low <= number <= high:
            allowed = f"at least {low:g}" if high == math.inf else f"{low:g} to {high:g}"
            problems.append(FieldError(spec.name, f"impossible value {raw!r} (must be {allowed})"))
            continue
        plausible_low, plausible_high = spec.plausible
        if number is not None and not plausible_low <= number <= plausible_high:
            warnings.append(f"{spec.name}: {raw!r} is outside the plausible range "
                            f"{plausible_low:g} to {plausible_high:g} (scored)")  # fmt: skip
        out[spec.name] = number
    for category in CATEGORICAL:
        raw = lowered.get(category.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if category.required:
                problems.append(FieldError(category.name, "required value missing"))
            else:
                warnings.append(f"{category.name}: missing, scored as none of the categories")
            out[category.name] = None
            continue
        if not isinstance(raw, str):
            problems.append(FieldError(category.name, f"expected text, got {raw!r}"))
            continue
        value = raw.strip().upper()
        if value not in category.categories:
            warnings.append(f"{category.name}: unknown category {raw!r}, scored as none of "
                            f"{', '.join(category.categories)}")  # fmt: skip
        out[category.name] = value
    extra = sorted(set(lowered) - _KNOWN)
    if extra:
        warnings.append(f"ignored field(s): {', '.join(extra)}")
    return problems if problems else CleanRecord(out, warnings)


def require_clean(record: Mapping[str, Any], *, index: int | None = None) -> CleanRecord:
    """:func:`clean_record`, raising :class:`InvalidInput` naming the record and fields."""
    result = clean_record(record)
    if isinstance(result, CleanRecord):
        return result
    where = f"record {index}: " if index is not None else ""
    text = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in result)
    raise InvalidInput(
        f"{where}{text}",
        details={"record": index, "fields": [{"field": p.field, "message": p.message}
                                             for p in result]},
    )  # fmt: skip
