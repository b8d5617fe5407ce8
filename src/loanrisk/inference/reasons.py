"""A loan's reason: the direction of an applicant's value and the catalog entry it is given.

The catalog itself, which code and statement each attribute and direction has, is a version's
artefact (:mod:`loanrisk.registry.reasons`); this is how a scorer reads it for one loan.
"""

from __future__ import annotations

import numpy as np

from loanrisk.features.spec import FeatureSpec
from loanrisk.registry.reasons import Direction, ReasonEntry, category_key
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import CATEGORY_TYPES


def above_typical(spec: FeatureSpec, features: np.ndarray) -> dict[str, np.ndarray]:
    """Per numeric attribute of ``spec``, whether each encoded row's value is above the
    training data's typical value (the median of an imputed or passthrough column; 0, the
    mean, of a standardised one; 0 for a passthrough column of a spec fitted before its
    median was recorded)."""
    out: dict[str, np.ndarray] = {}
    column = 0
    for entry in spec.imputed:
        out[entry.name] = features[:, column] > entry.median
        column += 1
    for group in (spec.power, spec.scaled):
        for item in group:
            out[item.name] = features[:, column] > 0
            column += 1
    for passed in spec.passthrough:
        out[passed.name] = features[:, column] > (passed.typical or 0.0)
        column += 1
    return out


def direction(
    schema: LoanSchema,
    catalog: dict[tuple[str, str], ReasonEntry],
    name: str,
    value: object,
    above: bool | None,
) -> Direction:
    """The direction of one applicant's ``value`` of attribute ``name``."""
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    column = schema.column(name)
    if (name, "value") in catalog:
        return "value"
    if column.type in CATEGORY_TYPES:
        order = column.categories or ()
        text = category_key(value)
        position = order.index(text) if text in order else -1
        return "high" if position >= (len(order) - 1) / 2 else "low"
    if column.type == "boolean":
        return "high" if bool(value) else "low"
    return "high" if above else "low"


def reason_of(
    schema: LoanSchema,
    entries: dict[tuple[str, str], ReasonEntry],
    by_value: dict[tuple[str, str], ReasonEntry],
    name: str,
    value: object,
    above: bool | None,
) -> tuple[Direction, ReasonEntry | None]:
    """The direction and catalog entry of one applicant's ``value`` of attribute ``name``
    (``entries``: :meth:`ReasonCatalog.lookup`, ``by_value``: :meth:`~ReasonCatalog.value_lookup`):
    the statement of the loan's category where the catalog has one, else its direction's."""
    way = direction(schema, entries, name, value, above)
    if way != "missing" and by_value and schema.column(name).type in CATEGORY_TYPES:
        entry = by_value.get((name, category_key(value)))
        if entry is not None:
            return "value", entry
    return way, entries.get((name, way))
