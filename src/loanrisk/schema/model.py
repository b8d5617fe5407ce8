"""The declared loan schema: which columns a lender's data has, and what each one means.

A schema is data (YAML or JSON), validated by :class:`LoanSchema`. It names every column with
its role (feature, label, id, protected, kept, ignored) and type (numeric, integer,
categorical, ordinal, boolean, date), and for features the ranges, categories, missing-value
policy, preprocessing, expected direction of risk and plain-language reason. Everything
downstream (validation, the FeatureSpec fit, expansion, the split, training, reasons, the
API's fields) reads it; docs/schema.md documents it field by field.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FORMAT: Literal["loanrisk.schema"] = "loanrisk.schema"

Role = Literal["feature", "label", "id", "protected", "kept", "ignored"]
ColumnType = Literal["numeric", "integer", "categorical", "ordinal", "boolean", "date"]
Preprocess = Literal["median", "power", "scale", "none", "onehot", "ordinal"]
Risk = Literal["increasing", "decreasing"]
Unknown = Literal["refuse", "refuse_in_training", "missing"]
LabelValue = str | int | float | bool

#: Preprocessing each type allows; the first is the default.
PREPROCESSING: dict[str, tuple[str, ...]] = {
    "numeric": ("none", "median", "power", "scale"),
    "integer": ("none", "median", "power", "scale"),
    "boolean": ("none",),
    "categorical": ("onehot",),
    "ordinal": ("ordinal", "onehot"),
}
NUMBER_TYPES = ("numeric", "integer")
CATEGORY_TYPES = ("categorical", "ordinal")
#: Text read as true / false in boolean columns (case-insensitive).
TRUE_TOKENS = ("true", "t", "yes", "y", "1")
FALSE_TOKENS = ("false", "f", "no", "n", "0")
#: Most columns a schema declares (a loan file with more is not a loan file).
MAX_COLUMNS = 1_000
#: Schema names: letters, digits, '.', '_', '-'; at most 64; never a path.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """Bounds of a number; either may be left out (unbounded)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    @property
    def low(self) -> float:
        return -math.inf if self.min is None else self.min

    @property
    def high(self) -> float:
        return math.inf if self.max is None else self.max

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"at least {self.min:g}"
        return f"at most {self.max:g}" if self.max is not None else "any number"


class Noise(_Strict):
    """How synthetic expansion varies a number: ``normal`` adds N(0, sd) (``sd`` left out:
    1% of the column's standard deviation in the input); ``integers`` adds ``step`` times an
    integer drawn from [low, high]; ``none`` repeats the value."""

    kind: Literal["none", "normal", "integers"]
    sd: float | None = Field(None, ge=0)
    low: int = -1
    high: int = 1
    step: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Noise:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class Column(_Strict):
    """One column of the loan data. See docs/schema.md for each field."""

    name: str = Field(
        min_length=1, max_length=128, description="Column name as in the CSV header, lower-case."
    )
    role: Role = Field("feature", description="What the column is for.")
    type: ColumnType = Field(description="How its values are read.")
    title: str | None = Field(None, description="Plain-language name, used in reasons.")
    description: str = ""
    missing: Literal["allow", "refuse"] = Field(
        "allow", description="A missing value: kept (the model handles it) or refused."
    )
    valid: Range | None = Field(None, description="Outside it a value is impossible: refused.")
    plausible: Range | None = Field(None, description="Outside it a value is flagged, kept.")
    categories: tuple[str, ...] | None = Field(
        None, description="Allowed values (matched case-insensitively); for ordinal, in order."
    )
    unknown: Unknown = Field(
        "refuse_in_training",
        description="An undeclared category: refused everywhere, refused in training data "
        "only (scored as none of the categories, with a warning), or treated as missing.",
    )
    preprocess: Preprocess | None = Field(None, description="Encoding; default per type.")
    risk: Risk | None = Field(None, description="Expected direction of risk as the value rises.")
    reason: str | None = Field(None, description="Adverse-action statement when it raises risk.")
    noise: Noise | None = Field(None, description="Expansion noise of a number.")
    swap: float = Field(0.1, ge=0, le=1, description="Expansion: share of category values redrawn.")
    example: Any = Field(None, description="A typical value, for examples in the API docs.")
    positive: tuple[LabelValue, ...] | None = Field(None, description="Label values of a default.")
    negative: tuple[LabelValue, ...] | None = Field(
        None, description="Label values of a repaid loan."
    )
    privileged: str | None = Field(None, description="Protected column: the privileged value.")
    date_format: str | None = Field(None, description="strftime format of a date; ISO if unset.")

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        if value != value.strip().lower() or any(ord(c) < 32 for c in value):
            raise ValueError(
                f"write {value.strip().lower()!r}: headers are matched trimmed and lower-case"
            )
        return value

    @field_validator("categories")
    @classmethod
    def _upper(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        upper = tuple(str(v).strip().upper() for v in value)
        repeated = sorted({v for v in upper if upper.count(v) > 1})
        if repeated:
            raise ValueError(f"category listed twice (case-insensitively): {', '.join(repeated)}")
        if not upper or any(not v for v in upper):
            raise ValueError("categories must be non-empty text")
        return upper

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        t, role = self.type, self.role
        if role == "feature" and t == "date":
            raise ValueError("a date cannot be a feature: derive a number (e.g. months on book)")
        if t in CATEGORY_TYPES and role in ("feature",) and not self.categories:
            raise ValueError(f"a {t} feature needs its categories")
        if t not in CATEGORY_TYPES and self.categories is not None and role != "label":
            raise ValueError(f"categories apply to categorical and ordinal columns, not {t}")
        if self.risk is not None and (role != "feature" or t == "categorical"):
            raise ValueError(
                "a risk direction needs an ordered feature: declare the column ordinal, "
                "numeric, integer or boolean"
                if t == "categorical"
                else "a risk direction applies to features only"
            )
        if self.preprocess is not None:
            allowed = PREPROCESSING.get(t, ())
            if role != "feature" or self.preprocess not in allowed:
                raise ValueError(
                    f"preprocess {self.preprocess!r} does not apply to a {t} {role}"
                    + (f" (use one of: {', '.join(allowed)})" if role == "feature" else "")
                )
        if (self.valid or self.plausible or self.noise) and t not in NUMBER_TYPES:
            raise ValueError(f"valid, plausible and noise apply to numbers, not {t}")
        if (self.positive is not None or self.negative is not None) and role != "label":
            raise ValueError("positive and negative apply to the label")
        if self.privileged is not None and role != "protected":
            raise ValueError("privileged applies to protected columns")
        if role == "label":
            self._check_label()
        return self

    def _check_label(self) -> None:
        if self.type not in ("integer", "categorical", "boolean"):
            raise ValueError(f"a label is integer, categorical or boolean, not {self.type}")
        if self.type == "categorical" and self.positive is None:
            raise ValueError("a categorical label needs its positive value(s), e.g. ['bad']")
        positive = {label_token(v) for v in self.positive_values}
        negative = {label_token(v) for v in self.negative_values or ()}
        if positive & negative:
            raise ValueError(f"value(s) both positive and negative: {sorted(positive & negative)}")

    @property
    def encoding(self) -> str:
        """The preprocessing: declared, or the type's default."""
        return self.preprocess or PREPROCESSING[self.type][0]

    @property
    def label_text(self) -> str:
        """The plain-language name."""
        return self.title or self.name.replace("_", " ")

    @property
    def positive_values(self) -> tuple[LabelValue, ...]:
        if self.positive is not None:
            return self.positive
        return TRUE_TOKENS if self.type == "boolean" else (1,)

    @property
    def negative_values(self) -> tuple[LabelValue, ...] | None:
        """Declared negative values; ``None``: every value that is not positive (integer and
        boolean labels default to 0 / false)."""
        if self.negative is not None:
            return self.negative
        if self.type == "boolean":
            return FALSE_TOKENS
        return (0,) if self.type == "integer" and self.positive is None else None

    @property
    def valid_range(self) -> Range:
        return self.valid or Range()

    def example_value(self) -> Any:
        """The declared example, else a value that passes validation."""
        if self.example is not None:
            return self.example
        if self.type in CATEGORY_TYPES:
            return self.categories[0] if self.categories else "A"
        if self.type == "boolean":
            return False
        box = self.plausible or self.valid
        if box is not None and box.min is not None and box.max is not None:
            middle = (box.min + box.max) / 2
            return round(middle) if self.type == "integer" else middle
        low = box.min if box is not None and box.min is not None else 0
        return int(low) if self.type == "integer" else float(low)


def label_token(value: Any) -> str:
    """A label value as compared: text stripped and lower-cased, numbers by value (``1``,
    ``1.0`` and ``"1"`` are one token)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


class LoanSchema(_Strict):
    """A declared loan schema: the columns of a lender's data, in file order."""

    format: Literal["loanrisk.schema"] = FORMAT
    version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN, description="The schema's name.")
    description: str = ""
    columns: tuple[Column, ...] = Field(min_length=1, max_length=MAX_COLUMNS)

    @model_validator(mode="after")
    def _roles(self) -> LoanSchema:
        names = [c.name for c in self.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"duplicate column name(s): {', '.join(repeated)}")
        labels = [c.name for c in self.columns if c.role == "label"]
        if len(labels) != 1:
            raise ValueError(
                "no column has role label"
                if not labels
                else f"more than one label: {', '.join(labels)}"
            )
        if not any(c.role == "feature" for c in self.columns):
            raise ValueError("no column has role feature")
        ids = [c.name for c in self.columns if c.role == "id"]
        if len(ids) > 1:
            raise ValueError(f"more than one id column: {', '.join(ids)}")
        return self

    # -- views, computed once per schema ---------------------------------------------------

    @cached_property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    @cached_property
    def features(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role == "feature")

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.features)

    @cached_property
    def label(self) -> Column:
        return next(c for c in self.columns if c.role == "label")

    @property
    def label_name(self) -> str:
        return self.label.name

    @cached_property
    def id_name(self) -> str | None:
        return next((c.name for c in self.columns if c.role == "id"), None)

    @cached_property
    def carried(self) -> tuple[Column, ...]:
        """Protected and kept columns: carried along with the loans, never features."""
        return tuple(c for c in self.columns if c.role in ("protected", "kept"))

    @cached_property
    def protected(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role == "protected")

    def column(self, name: str) -> Column:
        return self.by_name[name]

    def example_record(self) -> dict[str, Any]:
        """One loan built from the schema's examples (the API docs show it)."""
        return {c.name: c.example_value() for c in self.features}

    # -- identity ------------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_defaults=True) + "\n"

    def fingerprint(self) -> str:
        """A short hash of the whole schema (what data and models record to be matched)."""
        doc = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def incompatibilities(parent: LoanSchema, child: LoanSchema) -> list[str]:
    """Why a model trained on ``parent`` cannot continue training on data of ``child``
    (empty when it can). Added categories are allowed; a feature that is gone, new, or of
    another type or encoding is not, nor is another label definition."""
    problems = []
    child_features = {c.name: c for c in child.features}
    for old in parent.features:
        new = child_features.pop(old.name, None)
        if new is None:
            problems.append(f"feature {old.name!r} is missing")
            continue
        if new.type != old.type:
            problems.append(f"feature {old.name!r} changed type from {old.type} to {new.type}")
        elif new.encoding != old.encoding:
            problems.append(f"feature {old.name!r} changed preprocessing from "
                            f"{old.encoding} to {new.encoding}")  # fmt: skip
        elif (
            new.type == "ordinal"
            and old.categories
            and new.categories
            and (list(new.categories[: len(old.categories)]) != list(old.categories))
        ):
            problems.append(f"feature {old.name!r} changed the order of its categories")
    problems += [f"feature {name!r} is not in the parent's schema" for name in child_features]
    old_label, new_label = parent.label, child.label
    if (old_label.name, old_label.positive_values, old_label.negative_values) != (
        new_label.name,
        new_label.positive_values,
        new_label.negative_values,
    ):
        problems.append(f"the label changed from {old_label.name!r} to {new_label.name!r} "
                        "or its positive/negative values changed")  # fmt: skip
    return problems
