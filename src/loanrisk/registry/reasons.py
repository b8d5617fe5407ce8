"""The adverse-action reason catalog: which code and plain-language statement a declined
applicant is given for each attribute and direction.

A version stores its catalog as ``reasons.json``. Training derives it from the schema, and a
lender's own catalog (``--reason-catalog``) overrides entries by attribute and direction. Each
feature has a statement per direction:

- ``high`` / ``low``: the applicant's value is above / below the training data's typical value
  (the median for an imputed number, the standardised mean for a transformed one, the middle
  of the declared order for an ordinal, true / false for a boolean);
- ``missing``: the value was not given;
- ``value``: a category (a one-hot attribute has no order: "Purpose of the loan").

A feature's declared ``reason`` is the statement for its declared direction of risk (``high``
when risk increases, ``low`` when it decreases; ``value`` for a category with no order). Other
pairs get a generic statement from the feature's title (a category's: ``"<title>: {value}"``).
Codes are ``R01``, ``R02`` ... in catalog order. Only features are in a catalog: protected and
kept columns are never features, so they can never be a reason.

A categorical or ordinal feature may also have a statement **per category** (an entry with a
``value``, direction ``value``): the schema's ``reasons`` (a group of categories sharing a
statement shares its code; these codes follow the per-attribute ones, so a schema without
``reasons`` numbers its codes as before), or a catalog entry naming the category. A loan whose
category has one is given it instead of its direction's. A statement may show the loan's value
with ``{value}``. Catalogs stored before per-category statements read as they always did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loanrisk.errors import InvalidInput
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import CATEGORY_TYPES, REASON_CHARS

Direction = Literal["high", "low", "missing", "value"]
FORMAT: Literal["loanrisk.reasons"] = "loanrisk.reasons"


class ReasonEntry(BaseModel):
    """One reason: the code and statement for an attribute moving one way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(min_length=1, max_length=128, description="A feature of the schema.")
    direction: Direction
    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,16}$", description="The lender's reason code.")
    statement: str = Field(
        min_length=1,
        max_length=REASON_CHARS,
        description="What the notice says; '{value}' is replaced by the loan's value.",
    )
    value: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A declared category of a categorical or ordinal attribute (direction "
        "value, matched case-insensitively): the statement for loans of that category.",
    )

    @model_validator(mode="after")
    def _value_is_a_category(self) -> ReasonEntry:
        if self.value is not None and self.direction != "value":
            raise ValueError("an entry for one category (value) has direction 'value'")
        return self

    def says(self, value: object) -> str:
        """The statement, ``{value}`` replaced by the loan's ``value``."""
        return self.statement.replace("{value}", "" if value is None else str(value))


class ReasonCatalog(BaseModel):
    """A version's reasons (``reasons.json``), or a lender's override of some of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["loanrisk.reasons"] = FORMAT
    version: Literal[1] = 1
    reasons: tuple[ReasonEntry, ...] = Field(max_length=10_000)

    def lookup(self) -> dict[tuple[str, str], ReasonEntry]:
        """The per-attribute entries by ``(attribute, direction)``."""
        return {(r.attribute, r.direction): r for r in self.reasons if r.value is None}

    def value_lookup(self) -> dict[tuple[str, str], ReasonEntry]:
        """The per-category entries by ``(attribute, CATEGORY)`` (upper-case)."""
        return {
            (r.attribute, category_key(r.value)): r for r in self.reasons if r.value is not None
        }


def category_key(value: object) -> str:
    """A category as the schema declares it (trimmed, upper-case)."""
    return str(value).strip().upper()


def _directions(schema: LoanSchema, name: str) -> tuple[Direction, ...]:
    column = schema.column(name)
    if column.type in CATEGORY_TYPES and column.encoding == "onehot" and column.risk is None:
        return ("value", "missing")
    return ("high", "low", "missing")


def _statement(schema: LoanSchema, name: str, direction: Direction) -> str:
    column = schema.column(name)
    title = column.label_text
    declared = {"increasing": "high", "decreasing": "low"}.get(column.risk or "")
    if column.reason and (direction == declared or (direction == "value" and declared is None)):
        return column.reason
    if column.type == "boolean" and direction in ("high", "low"):
        return f"{title}: {'yes' if direction == 'high' else 'no'}"
    return {
        "high": f"{title} is higher than typical",
        "low": f"{title} is lower than typical",
        "missing": f"{title} was not provided",
        "value": f"{title}: {{value}}",
    }[direction]


def _value_entries(schema: LoanSchema, first_code: int) -> list[ReasonEntry]:
    """The schema's per-category statements, one code per distinct statement of a feature."""
    entries: list[ReasonEntry] = []
    code = first_code
    for column in schema.features:
        codes: dict[str, str] = {}
        for value, statement in column.category_reasons().items():
            if statement not in codes:
                codes[statement] = f"R{code:02d}"
                code += 1
            entries.append(
                ReasonEntry(
                    attribute=column.name,
                    direction="value",
                    value=value,
                    code=codes[statement],
                    statement=statement,
                )
            )
    return entries


def _check_value_entry(schema: LoanSchema, entry: ReasonEntry) -> ReasonEntry:
    """A lender's per-category entry, its category as declared; InvalidInput when the
    attribute has no such category."""
    column = schema.column(entry.attribute)
    if column.type not in CATEGORY_TYPES:
        raise InvalidInput(
            f"reason catalog: {entry.attribute!r} is {column.type}: only categorical and "
            "ordinal features have statements per category"
        )
    value = category_key(entry.value)
    if value not in (column.categories or ()):
        raise InvalidInput(
            f"reason catalog: {entry.value!r} is not a category of {entry.attribute!r} "
            f"({', '.join(column.categories or ())})"
        )
    return entry.model_copy(update={"value": value})


def derived_catalog(schema: LoanSchema, override: ReasonCatalog | None = None) -> ReasonCatalog:
    """The schema's catalog, with ``override``'s entries in place of the derived ones.

    Raises :class:`InvalidInput` for an override naming a column that is not a feature (a
    protected or kept column can never be a reason), a direction the feature cannot take, or
    a category (``value``) the feature does not declare."""
    entries: list[ReasonEntry] = []
    for name in schema.feature_names:
        for direction in _directions(schema, name):
            entries.append(
                ReasonEntry(
                    attribute=name,
                    direction=direction,
                    code=f"R{len(entries) + 1:02d}",
                    statement=_statement(schema, name, direction),
                )
            )
    by_value = _value_entries(schema, len(entries) + 1)
    if override is None:
        return ReasonCatalog(reasons=(*entries, *by_value))
    known = {(e.attribute, e.direction) for e in entries}

    def key(e: ReasonEntry) -> tuple[str, str]:
        return (e.attribute, e.direction if e.value is None else f"={e.value}")

    replaced: dict[tuple[str, str], ReasonEntry] = {}
    for entry in override.reasons:
        if entry.attribute not in schema.feature_names:
            raise InvalidInput(
                f"reason catalog: {entry.attribute!r} is not a feature of schema "
                f"{schema.name!r}; only features can be reasons"
            )
        if entry.value is not None:
            checked = _check_value_entry(schema, entry)
            replaced[key(checked)] = checked
            continue
        if (entry.attribute, entry.direction) not in known:
            allowed = ", ".join(_directions(schema, entry.attribute))
            raise InvalidInput(
                f"reason catalog: {entry.attribute!r} takes the directions "
                f"{allowed}, not {entry.direction!r}"
            )
        replaced[key(entry)] = entry
    merged = [replaced.pop(key(e), e) for e in (*entries, *by_value)]
    return ReasonCatalog(reasons=(*merged, *replaced.values()))  # new categories' entries last
