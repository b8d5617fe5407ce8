"""Validating one loan record in plain Python: the per-request path never touches pandas.

The rules are the model's declared schema (``loanrisk.schema``), applied in scoring mode:
a record must name every feature of the schema (``null`` for a missing value), so a record of
another schema is refused naming its missing and unexpected fields. A value that is not a
number, an impossible value, or a missing value where the schema refuses one rejects the
record with a message naming the field; an unknown category (unless the schema refuses it)
or an allowed missing value is scored (as the reference does) and reported as a warning
that says what the model's FeatureSpec does with it (the training median, a missing value
for the trees, or none of the one-hot categories). Numbers may come as JSON numbers or
numeric strings; categories are matched case-insensitively.

Text and numbers follow the rule every format shares (``loanrisk.schema.text``): a field
(its name too, and whatever an ignored field holds) with a control character, text UTF-8
cannot encode or more than ``MAX_TEXT_CHARS`` characters rejects the record naming the
field, and a number sent as text is an ASCII decimal (``"٢٢"`` and ``"1_000"`` are not
numbers, as they are not in a CSV file).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import MISSING_BY_ENCODING, FeatureSpec
from loanrisk.inference.compiled import compile_common_case
from loanrisk.schema import Column, LoanSchema, builtin_schema
from loanrisk.schema.model import FALSE_TOKENS, TRUE_TOKENS
from loanrisk.schema.text import all_fit, decimal, shown, strings, text_problem


class SpecialCode(NamedTuple):
    """A declared special code a loan held (``code`` as sent, ``meaning`` as declared)."""

    code: str | float
    meaning: str


#: A cleaned value: a number (booleans as 0/1), a category (upper-case), or None (missing).
CleanValue = float | str | None
#: The values reasons speak of: the cleaned ones, a special code where the loan held one.
ReasonValues = Mapping[str, CleanValue | SpecialCode]


@dataclass
class CleanRecord:
    """A record ready for :meth:`FeatureTransformer.transform_record`, with its warnings and
    the special codes it held (scored as missing; ``reason_values`` shows them to reasons)."""

    values: dict[str, CleanValue]
    warnings: list[str] = field(default_factory=list)
    special: dict[str, SpecialCode] = field(default_factory=dict)

    @property
    def reason_values(self) -> ReasonValues:
        """The values reasons speak of: a special code stands where its missing value is."""
        return {**self.values, **self.special} if self.special else self.values


@dataclass
class FieldError:
    field: str
    message: str


def _number(value: Any) -> float:
    if type(value) is float:  # JSON's numbers, the common case, first
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, bool):
        raise ValueError("true/false is not a number")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise ValueError("not a finite number") from None
    elif isinstance(value, str):
        number = decimal(value)
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

    def __init__(self, schema: LoanSchema, *, spec: FeatureSpec | None = None) -> None:
        """``spec``: the model's fitted preprocessing, which the warnings describe (what a
        missing value is scored as); without one, the schema's declared encodings."""
        self.schema = schema
        #: Per feature, what its missing value is scored as (words that follow "missing, ").
        declared = {c.name: MISSING_BY_ENCODING[c.encoding] for c in schema.features}
        self.missing_as = spec.missing_treatment() if spec is not None else declared
        # Plain floats, not the schema's objects: this runs for every loan scored.
        self.numbers = [
            (
                c.name,
                c.missing == "refuse",
                c.type == "integer",
                c.valid_range.low,
                c.valid_range.high,
                c.valid_range.describe(),
                *_plausible(c),
            )
            for c in schema.features
            if c.type in ("numeric", "integer")
        ]
        self.booleans = [
            (c.name, c.missing == "refuse") for c in schema.features if c.type == "boolean"
        ]
        self.categories = [
            (
                c.name,
                c.missing == "refuse",
                frozenset(c.categories or ()),
                ", ".join(c.categories or ()),
                c.unknown == "refuse",
                c.unknown == "missing",
            )
            for c in schema.features
            if c.type in ("categorical", "ordinal")
        ]
        self.features = frozenset(schema.feature_names)
        #: Columns with special codes treated as missing: name -> (codes, column).
        self.special = {
            c.name: (c.special_missing, c) for c in schema.features if c.special_missing
        }
        # ``id``: the caller's loan id in JSON records (the prediction log keeps it).
        self.known = frozenset([*(c.name for c in schema.columns), "id"])
        #: Kept columns vintages read from the log (the origination date, the amount): a
        #: value sent is checked, so the log holds only readable ones.
        self.declared = [
            c for c in (schema.origination, schema.amount) if c is not None and c.role != "feature"
        ]
        #: The common, plain loan's cleaning, compiled (None: the general path for all).
        self.common_case: Callable[[Any], CleanRecord | None] | None = compile_common_case(
            self, CleanRecord
        )


def _shape(lowered: Mapping[str, Any], rules: RecordRules) -> list[FieldError]:
    """A record that lacks features of the schema: the missing and the unexpected fields."""
    absent = [name for name in rules.schema.feature_names if name not in lowered]
    problems = [
        FieldError(name, "missing field (send null for a missing value)") for name in absent
    ]
    unexpected = sorted(set(lowered) - rules.known)
    if unexpected:
        problems.append(
            FieldError(
                "",
                f"unexpected field(s) {', '.join(unexpected)}: the "
                f"model's schema {rules.schema.name!r} does not "
                "declare them",
            )
        )
    return problems


def _category_text(raw: Any) -> str | None:
    """A category as text: a JSON number is the text a file holds for it (categories coded
    as numbers, ``1`` for ``"1"``, as a CSV reads them); None for anything else."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return str(int(raw)) if float(raw).is_integer() else repr(float(raw))


def _special(
    rules: RecordRules,
    name: str,
    value: float | str,
    raw: Any,
    warnings: list[str],
    special: dict[str, SpecialCode],
) -> bool:
    """Whether ``value`` is one of the column's special codes treated as missing (then noted
    in ``special``, and a warning names its meaning and how a missing value is scored)."""
    codes = rules.special.get(name)
    if codes is None or value not in codes[0]:
        return False
    meaning = codes[1].special_meaning(value)
    special[name] = SpecialCode(raw, meaning)
    warnings.append(
        f"{name}: {raw!r} is a special value ({meaning}), treated as missing: "
        f"{rules.missing_as[name]}"
    )
    return True


def clean_record(
    record: Mapping[str, Any], rules: RecordRules | None = None
) -> CleanRecord | list[FieldError]:
    """The cleaned record, or every problem that rejects it (never raises for bad data)."""
    rules = rules or _builtin_rules()
    if rules.common_case is not None and (plain := rules.common_case(record)) is not None:
        return plain
    if not isinstance(record, Mapping):
        return [FieldError("", "a loan record must be a JSON object")]
    bad_text = _text_problems(record)
    if bad_text:
        return bad_text
    # a field named as the schema names it (the usual case) is its own lower-case name
    known = rules.known
    lowered = {k if k in known else str(k).strip().lower(): v for k, v in record.items()}
    clean = CleanRecord({})
    problems: list[FieldError] = []
    if not (
        _clean_numbers(lowered, rules, clean, problems)
        and _clean_booleans(lowered, rules, clean, problems)
        and _clean_categories(lowered, rules, clean, problems)
    ):
        return _shape(lowered, rules)
    if rules.declared:
        _check_declared(lowered, rules, problems)
    extra = lowered.keys() - rules.known
    if extra:
        clean.warnings.append(f"ignored field(s): {', '.join(sorted(extra))}")
    return problems if problems else clean


def _check_declared(
    lowered: Mapping[str, Any], rules: RecordRules, problems: list[FieldError]
) -> None:
    """The kept origination date and amount, where sent (absent or null: the loan is dated
    by its scoring, its amount unknown): a date as the column declares it, a non-negative
    number."""
    for column in rules.declared:
        raw = lowered.get(column.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if column.type == "date":
            if not _is_date(raw, column.date_format):
                expected = column.date_format or "an ISO date, e.g. 2024-03-31"
                problems.append(
                    FieldError(column.name, f"not a date ({raw!r}; expected {expected})")
                )
            continue
        try:
            number = _number(raw)
        except ValueError:
            problems.append(FieldError(column.name, f"not a number ({raw!r})"))
            continue
        if number < 0:
            problems.append(FieldError(column.name, f"an amount is not negative ({raw!r})"))


def _is_date(raw: Any, date_format: str | None) -> bool:
    """Whether ``raw`` is text holding a date (``date_format``, else ISO 8601)."""
    if not isinstance(raw, str):
        return False
    try:
        if date_format is None:
            datetime.fromisoformat(raw.strip())
        else:
            datetime.strptime(raw.strip(), date_format)
    except ValueError:
        return False
    return True


def _text_problems(record: Mapping[str, Any]) -> list[FieldError]:
    """The fields whose name or text breaks the shared text rule (nested values included,
    which an ignored field may hold: the prediction log keeps the record as sent)."""
    texts = [k for k in record if type(k) is str]
    plain = len(texts) == len(record)
    for value in record.values():
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif kind is not float and kind is not int and value is not None and kind is not bool:
            plain = False
    if plain and all_fit(texts):  # the common case: one search over the whole record
        return []
    problems: list[FieldError] = []
    for key, value in record.items():
        if isinstance(key, str) and (problem := text_problem(key)) is not None:
            problems.append(FieldError(shown(key.strip().lower()), f"field name: {problem}"))
            continue
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                problems.append(FieldError(shown(str(key).strip().lower()), problem))
        elif isinstance(value, dict | list):
            for place, text in strings(value, shown(str(key).strip().lower())):
                if (problem := text_problem(text)) is not None:
                    problems.append(FieldError(place, problem))
                    break
    return problems


def _missing(
    rules: RecordRules, name: str, required: bool, clean: CleanRecord, problems: list[FieldError]
) -> None:
    """A missing value: refused where the schema says so, otherwise scored with a warning."""
    if required:
        problems.append(FieldError(name, "required value missing"))
    else:
        clean.warnings.append(f"{name}: missing, {rules.missing_as[name]}")
    clean.values[name] = None


def _clean_numbers(
    lowered: Mapping[str, Any],
    rules: RecordRules,
    clean: CleanRecord,
    problems: list[FieldError],
) -> bool:
    """Clean the numeric and integer features into ``clean`` (problems into ``problems``):
    numbers within their valid range; special codes and missing values as missing; outside
    the plausible range scored, with a warning. False if the record lacks one of them."""
    out, warnings = clean.values, clean.warnings
    for name, required, integer, low, high, valid_text, p_low, p_high, p_text in rules.numbers:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return False
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            _missing(rules, name, required, clean, problems)
            continue
        try:
            number = _number(raw)
        except ValueError as exc:
            reason = str(exc) if "number" in str(exc) else "not a number"
            problems.append(FieldError(name, f"{reason} ({raw!r})"))
            continue
        if _special(rules, name, number, raw, warnings, clean.special):
            out[name] = None
        elif integer and number != int(number):
            problems.append(FieldError(name, f"not a whole number ({raw!r})"))
        elif not low <= number <= high:
            problems.append(FieldError(name, f"impossible value {raw!r} (must be {valid_text})"))
        else:
            if not p_low <= number <= p_high:
                warnings.append(f"{name}: {raw!r} is outside the plausible range {p_text} (scored)")
            out[name] = number
    return True


def _clean_booleans(
    lowered: Mapping[str, Any],
    rules: RecordRules,
    clean: CleanRecord,
    problems: list[FieldError],
) -> bool:
    """Clean the boolean features: true/false, or one of the schema's true and false words.
    False if the record lacks one of them."""
    out = clean.values
    for name, required in rules.booleans:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return False
        token = str(raw).strip().lower() if raw is not None else ""
        if isinstance(raw, bool):
            out[name] = 1.0 if raw else 0.0
        elif not token:
            _missing(rules, name, required, clean, problems)
        elif token in TRUE_TOKENS or token in FALSE_TOKENS:
            out[name] = 1.0 if token in TRUE_TOKENS else 0.0
        else:
            problems.append(FieldError(name, f"not true/false ({raw!r})"))
    return True


def _clean_categories(
    lowered: Mapping[str, Any],
    rules: RecordRules,
    clean: CleanRecord,
    problems: list[FieldError],
) -> bool:
    """Clean the categorical and ordinal features: a declared category (matched upper-case),
    or an unknown one as the column's ``unknown`` policy says. False if the record lacks one
    of them."""
    out = clean.values
    for name, required, allowed, allowed_text, refuse_unknown, unknown_missing in rules.categories:
        raw = lowered.get(name, ABSENT)
        if raw is ABSENT:
            return False
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            _missing(rules, name, required, clean, problems)
            continue
        text = _category_text(raw)
        if text is None:
            problems.append(FieldError(name, f"expected text, got {raw!r}"))
            continue
        value = text.strip().upper()
        if _special(rules, name, value, raw, clean.warnings, clean.special):
            out[name] = None
        elif value in allowed:
            out[name] = value
        elif refuse_unknown:
            problems.append(FieldError(name, f"unknown category {raw!r} (allowed: {allowed_text})"))
        else:
            # Encoded, an unknown category is what a missing one is (one-hot: every column 0;
            # ordinal: NaN); under ``unknown: missing`` it is a missing value everywhere.
            treated = "treated as missing: " if unknown_missing else ""
            clean.warnings.append(
                f"{name}: unknown category {raw!r} (allowed: {allowed_text}), "
                f"{treated}{rules.missing_as[name]}"
            )
            out[name] = None if unknown_missing else value
    return True


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
        details={
            "record": index,
            "fields": [{"field": p.field, "message": p.message} for p in result],
        },
    )
