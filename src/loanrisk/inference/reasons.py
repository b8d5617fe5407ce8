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
when risk increases, ``low`` when it decreases). Other pairs get a generic statement from the
feature's title. Codes are ``R01``, ``R02`` ... in catalog order. Only features are in a catalog:
protected and kept columns are never features, so they can never be a reason.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import CATEGORY_TYPES

Direction = Literal["high", "low", "missing", "value"]
FORMAT: Literal["loanrisk.reasons"] = "loanrisk.reasons"


class ReasonEntry(BaseModel):
    """One reason: the code and statement for an attribute moving one way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(min_length=1, max_length=128, description="A feature of the schema.")
    direction: Direction
    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,16}$", description="The lender's reason code.")
    statement: str = Field(min_length=1, max_length=300, description="What the notice says.")


class ReasonCatalog(BaseModel):
    """A version's reasons (``reasons.json``), or a lender's override of some of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["loanrisk.reasons"] = FORMAT
    version: Literal[1] = 1
    reasons: tuple[ReasonEntry, ...] = Field(max_length=10_000)

    def lookup(self) -> dict[tuple[str, str], ReasonEntry]:
        return {(r.attribute, r.direction): r for r in self.reasons}


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
    return {
        "high": f"{title} is higher than typical",
        "low": f"{title} is lower than typical",
        "missing": f"{title} was not provided",
        "value": f"{title}",
    }[direction]


def derived_catalog(schema: LoanSchema, override: ReasonCatalog | None = None) -> ReasonCatalog:
    """The schema's catalog, with ``override``'s entries in place of the derived ones.

    Raises :class:`InvalidInput` for an override naming a column that is not a feature (a
    protected or kept column can never be a reason) or a direction the feature cannot take."""
    entries: list[ReasonEntry] = []
    for name in schema.feature_names:
        for direction in _directions(schema, name):
            entries.append(ReasonEntry(attribute=name, direction=direction,
                                       code=f"R{len(entries) + 1:02d}",
                                       statement=_statement(schema, name, direction)))  # fmt: skip
    if override is None:
        return ReasonCatalog(reasons=tuple(entries))
    known = {(e.attribute, e.direction) for e in entries}
    for entry in override.reasons:
        if entry.attribute not in schema.feature_names:
            raise InvalidInput(
                f"reason catalog: {entry.attribute!r} is not a feature of schema "
                f"{schema.name!r}; only features can be reasons"
            )
        if (entry.attribute, entry.direction) not in known:
            allowed = ", ".join(_directions(schema, entry.attribute))
            raise InvalidInput(f"reason catalog: {entry.attribute!r} takes the directions "
                               f"{allowed}, not {entry.direction!r}")  # fmt: skip
    replaced = override.lookup()
    return ReasonCatalog(reasons=tuple(replaced.get((e.attribute, e.direction), e)
                                       for e in entries))  # fmt: skip


def above_typical(spec: FeatureSpec, features: np.ndarray) -> dict[str, np.ndarray]:
    """Per numeric attribute of ``spec``, whether each encoded row's value is above the
    training data's typical value (the median of an imputed column; 0, the mean, of a
    standardised one; 0 of a passthrough one)."""
    out: dict[str, np.ndarray] = {}
    column = 0
    for entry in spec.imputed:
        out[entry.name] = features[:, column] > entry.median
        column += 1
    for group in (spec.power, spec.scaled, spec.passthrough):
        for item in group:
            out[item.name] = features[:, column] > 0
            column += 1
    return out


def direction(schema: LoanSchema, catalog: dict[tuple[str, str], ReasonEntry], name: str,
              value: object, above: bool | None) -> Direction:  # fmt: skip
    """The direction of one applicant's ``value`` of attribute ``name``."""
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    column = schema.column(name)
    if (name, "value") in catalog:
        return "value"
    if column.type in CATEGORY_TYPES:
        order = column.categories or ()
        text = str(value).strip().upper()
        position = order.index(text) if text in order else -1
        return "high" if position >= (len(order) - 1) / 2 else "low"
    if column.type == "boolean":
        return "high" if bool(value) else "low"
    return "high" if above else "low"
