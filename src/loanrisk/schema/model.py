"""The declared loan schema: which columns a lender's data has, and what each one means.

A schema is data (YAML or JSON), validated by :class:`LoanSchema`. It names every column with
its role (feature, label, id, protected, kept, ignored) and type (numeric, integer,
categorical, ordinal, boolean, date), and for features the ranges, categories, missing-value
policy, preprocessing, expected direction of risk and plain-language reason. Two flags name
the columns vintages read (validation): ``origination: true`` on a kept date (the loan's
origination date) and ``amount: true`` on a number (the loan's amount). Everything
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
#: Longest adverse-action statement (a reason catalog entry's limit too).
REASON_CHARS = 300


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


class Special(_Strict):
    """Codes that stand for something other than their value (a past-due count of 96 or 98
    meaning "unknown", a catch-all profession code 999): ``missing`` treats them as a
    missing value (never range-checked or flagged; the trees learn a branch of their own
    for missing numbers unless ``preprocess: median`` fills them); ``category`` (categorical
    and ordinal columns only) keeps them as a category of their own, outside any order."""

    values: tuple[float | str, ...] = Field(min_length=1, max_length=100)
    meaning: str = Field("special value", min_length=1, max_length=80)
    treat: Literal["missing", "category"] = "missing"


class PrivilegedGroup(_Strict):
    """A protected column's privileged group as a rule: a set of ``values`` (text, matched
    case-insensitively), or a numeric range (``min``/``max``, inclusive: ``{min: 25}`` is
    "25 or older")."""

    values: tuple[str, ...] | None = Field(None, min_length=1, max_length=1000)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> PrivilegedGroup:
        numeric = self.min is not None or self.max is not None
        if numeric == (self.values is not None):
            raise ValueError("a privileged group is either values or a min/max range")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    def describe(self) -> str:
        if self.values is not None:
            return " or ".join(self.values)
        return Range(min=self.min, max=self.max).describe()


class Proxy(_Strict):
    """A protected column of membership probabilities (a lender's proxy such as BISG): the
    ``attribute`` it estimates, the ``group`` it is the probability of, and whether that
    group is the attribute's ``reference`` (exactly one column per attribute is)."""

    attribute: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    group: str = Field(min_length=1, max_length=80)
    reference: bool = False


#: Column fields added after the schema format's first release (hashed only when set: not
#: null, not false).
ADDED_FIELDS = ("reasons", "special", "proxy", "origination", "amount")
#: Column fields never hashed: how the prediction log keeps a value, not what it means.
UNHASHED_FIELDS = ("pii",)
#: Fewest test loans in either group of a protected attribute for its parity ratios to be
#: reported without a warning (the four-fifths rule on fewer is noise).
MIN_GROUP_SIZE = 30


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
    reasons: dict[str, str] | None = Field(
        None,
        description="Categorical or ordinal feature: the adverse-action statement per category "
        "(a key may group categories with '|': 'OTHER|RENT') when the loan's category raised "
        "the risk; categories without one fall back to reason.",
    )
    noise: Noise | None = Field(None, description="Expansion noise of a number.")
    swap: float = Field(0.1, ge=0, le=1, description="Expansion: share of category values redrawn.")
    example: Any = Field(None, description="A typical value, for examples in the API docs.")
    positive: tuple[LabelValue, ...] | None = Field(None, description="Label values of a default.")
    negative: tuple[LabelValue, ...] | None = Field(
        None, description="Label values of a repaid loan."
    )
    privileged: str | PrivilegedGroup | None = Field(
        None, description="Protected column: the privileged value, or a rule (values, min/max)."
    )
    special: tuple[Special, ...] | None = Field(
        None, description="Codes that are not values: treated as missing or as a category."
    )
    proxy: Proxy | None = Field(
        None,
        description="Protected numeric column: a membership probability (e.g. BISG) of a "
        "group of an attribute, a weight in the fairness measures, never a feature.",
    )
    date_format: str | None = Field(None, description="strftime format of a date; ISO if unset.")
    pii: bool = Field(
        False,
        description="Personal data: the prediction log stores it hashed or drops it "
        "(LOANRISK_LOG_PII), never in clear; drift leaves it out. Not for the id or the label.",
    )
    origination: bool = Field(
        False,
        description="The loan's origination date (a kept date column, one per schema): "
        "vintages date each loan by it instead of the time it was scored. Never a feature.",
    )
    amount: bool = Field(
        False,
        description="The loan's amount (a non-negative number: a feature or a kept column, one "
        "per schema): vintages report default rates by amount too. Its role says whether the "
        "model uses it.",
    )

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        if value != value.strip().lower() or any(ord(c) < 32 for c in value):
            raise ValueError(
                f"write {value.strip().lower()!r}: headers are matched trimmed and lower-case"
            )
        return value

    @field_validator("privileged", mode="before")
    @classmethod
    def _group_as_text(cls, value: Any) -> Any:
        """YAML reads ``no`` as false and ``1`` as a number: a privileged value is text."""
        if isinstance(value, dict) and isinstance(value.get("values"), list | tuple):
            return {**value, "values": [_as_text(v) for v in value["values"]]}
        return value if isinstance(value, dict) or value is None else _as_text(value)

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
        self._check_type()
        self._check_risk()
        self._check_reasons()
        self._check_preprocess()
        self._check_applies()
        self._check_special()
        self._check_vintage_flags()
        if self.role == "label":
            self._check_label()
        return self

    def _check_type(self) -> None:
        """A feature's type: no date; categories where (and only where) a type has them."""
        t, role = self.type, self.role
        if role == "feature" and t == "date":
            raise ValueError("a date cannot be a feature: derive a number (e.g. months on book)")
        if t in CATEGORY_TYPES and role in ("feature",) and not self.categories:
            raise ValueError(f"a {t} feature needs its categories")
        if t not in CATEGORY_TYPES and self.categories is not None and role != "label":
            raise ValueError(f"categories apply to categorical and ordinal columns, not {t}")

    def _check_risk(self) -> None:
        t, role = self.type, self.role
        if self.risk is not None and (role != "feature" or t == "categorical"):
            raise ValueError(
                "a risk direction needs an ordered feature: declare the column ordinal, "
                "numeric, integer or boolean"
                if t == "categorical"
                else "a risk direction applies to features only"
            )

    def _check_reasons(self) -> None:
        if self.reasons is None:
            return
        if self.role != "feature" or self.type not in CATEGORY_TYPES:
            raise ValueError(
                "reasons (a statement per category) apply to categorical and ordinal "
                "features; a number's statement is its reason"
            )
        self.category_reasons()  # raises naming an undeclared or repeated category

    def _check_preprocess(self) -> None:
        if self.preprocess is None:
            return
        t, role = self.type, self.role
        allowed = PREPROCESSING.get(t, ())
        if role != "feature" or self.preprocess not in allowed:
            raise ValueError(
                f"preprocess {self.preprocess!r} does not apply to a {t} {role}"
                + (f" (use one of: {', '.join(allowed)})" if role == "feature" else "")
            )

    def _check_applies(self) -> None:
        """Fields of one kind of column only: numbers, the label, protected columns."""
        if (self.valid or self.plausible or self.noise) and self.type not in NUMBER_TYPES:
            raise ValueError(f"valid, plausible and noise apply to numbers, not {self.type}")
        if (self.positive is not None or self.negative is not None) and self.role != "label":
            raise ValueError("positive and negative apply to the label")
        if self.privileged is not None and self.role != "protected":
            raise ValueError("privileged applies to protected columns")
        if self.proxy is not None and (self.role != "protected" or self.type != "numeric"):
            raise ValueError("proxy applies to protected numeric columns (probabilities)")
        if self.proxy is not None and self.privileged is not None:
            raise ValueError("a proxy column's reference group is proxy.reference, not privileged")
        if self.pii and self.role in ("id", "label"):
            raise ValueError(
                f"pii does not apply to the {self.role}: the loan id joins outcomes and "
                "erasures (declare the applicant's own attributes pii)"
                if self.role == "id"
                else "pii does not apply to the label (it is not logged)"
            )

    def _check_vintage_flags(self) -> None:
        """``origination`` on a kept date, ``amount`` on a feature or kept number; neither
        personal (vintages read them from the prediction log, which never holds pii in clear)."""
        if self.origination and (self.type != "date" or self.role != "kept"):
            raise ValueError(
                "origination applies to a date column of role kept "
                f"(this one is a {self.type} {self.role})"
            )
        if self.amount and (self.type not in NUMBER_TYPES or self.role not in ("feature", "kept")):
            raise ValueError(
                "amount applies to a numeric or integer column of role feature or kept "
                f"(this one is a {self.type} {self.role})"
            )
        if (self.origination or self.amount) and self.pii:
            flag = "origination" if self.origination else "amount"
            raise ValueError(
                f"{flag} cannot be pii: vintages read it from the prediction log, which holds "
                "personal fields hashed or not at all"
            )
        if (
            self.amount
            and self.valid is not None
            and self.valid.min is not None
            and self.valid.min < 0
        ):
            raise ValueError("an amount is not negative: its valid range starts at 0 or above")

    def _check_special(self) -> None:
        for special in self.special or ():
            problem = self._special_problem(special)
            if problem:
                raise ValueError(problem)

    def _special_problem(self, special: Special) -> str | None:
        if self.type in NUMBER_TYPES:
            if special.treat == "category":
                return (
                    "a number's special values are treated as missing "
                    "(treat: category is for categorical and ordinal columns)"
                )
            if any(isinstance(v, str) for v in special.values):
                return "a number's special values are numbers"
            return None
        if self.type not in CATEGORY_TYPES:
            return f"special values apply to numbers and categories, not {self.type}"
        if special.treat == "category" and self.type == "ordinal":
            return (
                "an ordinal's special values are treated as missing (a category of their "
                "own has no place in the order)"
            )
        absent = {str(v).strip().upper() for v in special.values} - set(self.categories or ())
        if special.treat == "category" and absent:
            return f"special categories {', '.join(sorted(absent))} must be listed in categories"
        return None

    @cached_property
    def special_missing(self) -> frozenset[float | str]:
        """Values treated as missing: numbers as floats, categories upper-case text."""
        numbers = self.type in NUMBER_TYPES
        return frozenset(
            float(v) if numbers else str(v).strip().upper()
            for s in self.special or ()
            if s.treat == "missing"
            for v in s.values
        )

    def special_meaning(self, value: float | str) -> str:
        """What a special value stands for (its declared meaning)."""
        key = float(value) if self.type in NUMBER_TYPES else str(value).strip().upper()
        for special in self.special or ():
            numbers = self.type in NUMBER_TYPES
            if key in {float(v) if numbers else str(v).strip().upper() for v in special.values}:
                return special.meaning
        return "special value"

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

    def category_reasons(self) -> dict[str, str]:
        """``reasons`` per declared category (upper-case; a ``'|'``-grouped key gives each
        of its categories the statement); raises ValueError for a key naming an undeclared
        category, a category given two statements, or an empty or over-long statement."""
        out: dict[str, str] = {}
        declared = self.categories or ()
        for key, statement in (self.reasons or {}).items():
            whole = key.strip().upper()
            values = [whole] if whole in declared else [v.strip().upper() for v in key.split("|")]
            for value in values:
                if value not in declared:
                    raise ValueError(
                        f"reasons: {value!r} is not a declared category "
                        f"(categories: {', '.join(declared)})"
                    )
                if value in out:
                    raise ValueError(f"reasons: category {value!r} has two statements")
                out[value] = statement.strip()
            if not 1 <= len(statement.strip()) <= REASON_CHARS:
                raise ValueError(
                    f"reasons: the statement of {key!r} must be 1 to {REASON_CHARS} characters"
                )
        return out

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


def _as_text(value: Any) -> Any:
    """A YAML scalar as the text a file holds: true/false, whole numbers without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int | float) else value


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
        for flag in ("origination", "amount"):
            flagged = [c.name for c in self.columns if getattr(c, flag)]
            if len(flagged) > 1:
                raise ValueError(f"more than one {flag} column: {', '.join(flagged)}")
        self._check_proxies()
        return self

    def _check_proxies(self) -> None:
        """Each proxy attribute: one reference column, distinct groups, no column's name."""
        by_attribute: dict[str, list[Proxy]] = {}
        for column in self.columns:
            if column.proxy is not None:
                by_attribute.setdefault(column.proxy.attribute, []).append(column.proxy)
        for attribute, proxies in by_attribute.items():
            if attribute in {c.name for c in self.columns}:
                raise ValueError(f"proxy attribute {attribute!r} is also a column's name")
            if sum(p.reference for p in proxies) != 1:
                raise ValueError(f"proxy attribute {attribute!r} needs exactly one reference group")
            groups = [p.group for p in proxies]
            if len(set(groups)) != len(groups) or len(groups) < 2:
                raise ValueError(f"proxy attribute {attribute!r}: two or more distinct groups")

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

    @cached_property
    def origination(self) -> Column | None:
        """The declared origination date column (``origination: true``), if any."""
        return next((c for c in self.columns if c.origination), None)

    @cached_property
    def amount(self) -> Column | None:
        """The declared amount column (``amount: true``), if any."""
        return next((c for c in self.columns if c.amount), None)

    @cached_property
    def personal(self) -> frozenset[str]:
        """The columns declared personal (``pii: true``)."""
        return frozenset(c.name for c in self.columns if c.pii)

    def column(self, name: str) -> Column:
        return self.by_name[name]

    def example_record(self) -> dict[str, Any]:
        """One loan built from the schema's examples (the API docs show it)."""
        return {c.name: c.example_value() for c in self.features}

    # -- identity ------------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_defaults=True) + "\n"

    def fingerprint(self) -> str:
        """A short hash of the whole schema (what data and models record to be matched).
        Column fields added after the first release (:data:`ADDED_FIELDS`) are hashed only
        when set, so an upgrade never changes the hash of a schema that does not use them;
        :data:`UNHASHED_FIELDS` never are."""
        doc = self.model_dump(mode="json")
        for column in doc["columns"]:
            for name in ADDED_FIELDS:
                if column.get(name) in (None, False):
                    column.pop(name, None)
            for name in UNHASHED_FIELDS:
                column.pop(name, None)
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
            problems.append(
                f"feature {old.name!r} changed preprocessing from {old.encoding} to {new.encoding}"
            )
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
        problems.append(
            f"the label changed from {old_label.name!r} to {new_label.name!r} "
            "or its positive/negative values changed"
        )
    return problems
