"""Validating one loan record in plain Python: the per-request path never touches pandas.

The rules are the model's declared schema (``loanrisk.schema``), applied in scoring mode:
a record must name every feature of the schema (``null`` for a missing value), so a record of
another schema is refused naming its missing and unexpected fields. A value that is not a
number, an impossible value, or a missing value where the schema refuses one rejects the
record with a message naming the field; an unknown category (unless the schema refuses it)
or an allowed missing value is scored (as the reference does) and reported as a warning.
Numbers may come as JSON numbers or numeric strings; categories are matched
case-insensitively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from loanrisk.errors import InvalidInput
from loanrisk.schema import Column, LoanSchema, builtin_schema
from loanrisk.schema.model import FALSE_TOKENS, TRUE_TOKENS


@dataclass
class CleanRecord:
    """A record ready for :meth:`FeatureTransformer.transform_record`, with its warnings."""

    values: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass
class FieldError:
    field: str
    message: str


def _number(value: Any) -> float:
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


#: A field the record does not have (``None`` is a field sent as null).
ABSENT = object()


def _plausible(column: Column) -> tuple[float, float, str]:
    box = column.plausible
    return (box.low, box.high, box.describe()) if box else (-math.inf, math.inf, "")


class RecordRules:
    """A schema's rules for one record, compiled once (a scorer holds one per model)."""

    def __init__(self, schema: LoanSchema) -> None:
        self.schema = schema
        # Plain floats, not the schema's objects: this runs for every loan scored.
        self.numbers = [
            (c.name, c.missing == "refuse", c.type == "integer", c.valid_range.low,
             c.valid_range.high, c.valid_range.describe(), *_plausible(c))
            for c in schema.features if c.type in ("numeric", "integer")
        ]  # fmt: skip
        self.booleans = [(c.name, c.missing == "refuse") for c in schema.features
                         if c.type == "boolean"]  # fmt: skip
        self.categories = [
            (c.name, c.missing == "refuse", frozenset(c.categories or ()),
             ", ".join(c.categories or ()), c.unknown == "refuse")
            for c in schema.features if c.type in ("categorical", "ordinal")
        ]  # fmt: skip
        self.features = frozenset(schema.feature_names)
        # ``id``: the caller's loan id in JSON records (the prediction log keeps it).
        self.known = frozenset([*(c.name for c in schema.columns), "id"])


def _shape(lowered: Mapping[str, Any], rules: RecordRules) -> list[FieldError]:
    """A record that lacks features of the schema: the missing and the unexpected fields."""
    absent = [name for name in rules.schema.feature_names if name not in lowered]
    problems = [FieldError(name, "missing field (send null for a missing value)")
                for name in absent]  # fmt: skip
    unexpected = sorted(set(lowered) - rules.known)
    if unexpected:
        problems.append(FieldError("", f"unexpected field(s) {', '.join(unexpected)}: the "
                                       f"model's schema {rules.schema.name!r} does not "
                                       "declare them"))  # fmt: skip
    return problems


def clean_record(
    record: Mapping[str, Any], rules: RecordRules | None = None
) -> CleanRecord | list[FieldError]:
    """The cleaned record, or every problem that rejects it (never raises for bad data)."""
    if not isinstance(record, Mapping):
        return [FieldError("", "a loan record must be a JSON object")]
    rules = rules or _builtin_rules()
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    out: dict[str, Any] = {}
    warnings: list[str] = []
    problems: list[FieldError] = []
    for name, required, integer, low, high, valid_text, p_low, p_high, p_text in rules.numbers:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return _shape(lowered, rules)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                problems.append(FieldError(name, "required value missing"))
            else:
                warnings.append(f"{name}: missing, scored as missing")
            out[name] = None
            continue
        try:
            number = _number(raw)
        except ValueError as exc:
            reason = str(exc) if "number" in str(exc) else "not a number"
            problems.append(FieldError(name, f"{reason} ({raw!r})"))
            continue
        if integer and number != int(number):
            problems.append(FieldError(name, f"not a whole number ({raw!r})"))
            continue
        if not low <= number <= high:
            problems.append(FieldError(name, f"impossible value {raw!r} (must be {valid_text})"))
            continue
        if not p_low <= number <= p_high:
            warnings.append(f"{name}: {raw!r} is outside the plausible range {p_text} (scored)")
        out[name] = number
    for name, required in rules.booleans:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return _shape(lowered, rules)
        token = str(raw).strip().lower() if raw is not None else ""
        if isinstance(raw, bool):
            out[name] = 1.0 if raw else 0.0
        elif not token:
            if required:
                problems.append(FieldError(name, "required value missing"))
            else:
                warnings.append(f"{name}: missing, scored as missing")
            out[name] = None
        elif token in TRUE_TOKENS or token in FALSE_TOKENS:
            out[name] = 1.0 if token in TRUE_TOKENS else 0.0
        else:
            problems.append(FieldError(name, f"not true/false ({raw!r})"))
    for name, required, allowed, allowed_text, refuse_unknown in rules.categories:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return _shape(lowered, rules)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                problems.append(FieldError(name, "required value missing"))
            else:
                warnings.append(f"{name}: missing, scored as none of the categories")
            out[name] = None
            continue
        if not isinstance(raw, str):
            problems.append(FieldError(name, f"expected text, got {raw!r}"))
            continue
        value = raw.strip().upper()
        if value not in allowed:
            if refuse_unknown:
                problems.append(FieldError(name, f"unknown category {raw!r} "
                                                 f"(allowed: {allowed_text})"))  # fmt: skip
                continue
            warnings.append(f"{name}: unknown category {raw!r}, scored as none of "
                            f"{allowed_text}")  # fmt: skip
        out[name] = value
    extra = sorted(set(lowered) - rules.known)
    if extra:
        warnings.append(f"ignored field(s): {', '.join(extra)}")
    return problems if problems else CleanRecord(out, warnings)


@cache
def _builtin_rules() -> RecordRules:
    return RecordRules(builtin_schema())


def require_clean(
    record: Mapping[str, Any], rules: RecordRules | None = None, *, index: int | None = None
) -> CleanRecord:
    """:func:`clean_record`, raising :class:`InvalidInput` naming the record and fields."""
    result = clean_record(record, rules)
    if isinstance(result, CleanRecord):
        return result
    where = f"record {index}: " if index is not None else ""
    text = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in result)
    raise InvalidInput(
        f"{where}{text}",
        details={"record": index, "fields": [{"field": p.field, "message": p.message}
                                             for p in result]},
    )  # fmt: skip
