"""A protected attribute's groups, read from the declared schema, as weights per loan.

Three ways a schema declares them (docs/schema.md, Protected groups):

- a **category** column (``privileged: M`` or ``{values: [...]}``): the privileged values are
  the reference group; every other value seen in the data is a group of its own;
- a **rule** on a number (``privileged: {min: 25}``): inside the range is the reference
  group, a number outside it the one protected group;
- **proxy probabilities**: numeric columns with ``proxy: {attribute, group}`` hold each
  loan's probability of membership (e.g. BISG's); the column marked ``reference: true`` is
  the reference group, the others its protected groups. They are weights, never features.

A missing (or, for a rule, non-numeric) value is in no group. A group's weights are 0/1 for
a category or rule, the probabilities for a proxy (a missing probability is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.errors import InvalidInput
from loanrisk.fairness.models import Kind
from loanrisk.schema.model import (
    FALSE_TOKENS,
    MIN_GROUP_SIZE,
    TRUE_TOKENS,
    LoanSchema,
    PrivilegedGroup,
)


@dataclass(frozen=True)
class Group:
    """One group of an attribute: its name and each loan's weight (0/1 or a probability)."""

    name: str
    weight: np.ndarray

    @property
    def size(self) -> float:
        """Its number of loans (the sum of the weights for a proxy)."""
        return float(self.weight.sum())


@dataclass(frozen=True)
class AttributeGroups:
    """A protected attribute's reference group and the groups measured against it."""

    attribute: str
    kind: Kind
    reference: Group
    groups: tuple[Group, ...]

    def warnings(self, minimum: int = MIN_GROUP_SIZE) -> list[str]:
        """One line per group (reference included) with fewer than ``minimum`` loans."""
        return [
            f"{self.attribute} group {g.name!r} has {g.size:g} loans, fewer than {minimum}: "
            "its figures are noise"
            for g in (self.reference, *self.groups)
            if g.size < minimum
        ]


def describe_group(rule: str | PrivilegedGroup) -> str:
    """The privileged group in words: its value, values or range."""
    return rule if isinstance(rule, str) else rule.describe()


def privileged_mask(values: pd.Series[Any], rule: str | PrivilegedGroup) -> np.ndarray:
    """Which loans are in the privileged group: text matched trimmed and case-insensitively
    against a value or a set of values, numbers against a range (a missing or non-numeric
    value is never privileged)."""
    if isinstance(rule, PrivilegedGroup) and rule.values is None:
        inside, _ = _range_masks(values, rule)
        return inside
    wanted = {w.strip().upper() for w in ([rule] if isinstance(rule, str) else rule.values or ())}
    text = values.astype("string").str.strip()
    mask = text.str.upper().isin(wanted)
    # ``privileged: no`` reads in YAML as false: any way of writing false (or true) matches.
    for word, tokens in (("TRUE", TRUE_TOKENS), ("FALSE", FALSE_TOKENS)):
        if word in wanted:
            mask |= text.str.lower().isin(tokens)
    return mask.to_numpy(dtype=bool, na_value=False)


def _range_masks(values: pd.Series[Any], rule: PrivilegedGroup) -> tuple[np.ndarray, np.ndarray]:
    """(inside the range, a number outside it)."""
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    low = -np.inf if rule.min is None else rule.min
    high = np.inf if rule.max is None else rule.max
    inside = numbers.between(low, high, inclusive="both").to_numpy(dtype=bool, na_value=False)
    known = numbers.notna().to_numpy(dtype=bool)
    return inside, known & ~inside


def protected_attributes(schema: LoanSchema) -> list[str]:
    """The attributes a schema declares groups for, in column order: each protected column
    with ``privileged``, and each proxy attribute (once)."""
    names: list[str] = []
    for column in schema.protected:
        name = column.proxy.attribute if column.proxy is not None else column.name
        declared = column.proxy is not None or column.privileged is not None
        if declared and name not in names:
            names.append(name)
    return names


def declared_name(declared: Sequence[str], given: str) -> str | None:
    """``given`` as one of the ``declared`` names: itself, else the one name it matches
    ignoring case and surrounding spaces, as a file's headers are matched (``SEX`` for
    ``sex``); None when no name, or more than one, matches."""
    if given in declared:
        return given
    matches = {d for d in declared if d.strip().lower() == given.strip().lower()}
    return matches.pop() if len(matches) == 1 else None


def attribute_groups(
    schema: LoanSchema,
    frame: pd.DataFrame,
    attribute: str,
    *,
    privileged: str | PrivilegedGroup | None = None,
) -> AttributeGroups:
    """The groups of ``attribute`` (a protected column, or a proxy attribute of the schema)
    among the loans of ``frame``; ``privileged`` overrides a column's declared reference
    group (and names the groups of a column the schema does not declare, kept with the
    data: a category). Raises :class:`InvalidInput` naming the attribute when there are no
    groups for it, its columns are not in ``frame``, or no loan is in the reference group or
    in any other group. ``attribute`` is matched to the schema's names as
    :func:`declared_name` matches."""
    known = [*protected_attributes(schema), *schema.by_name]
    attribute = declared_name(known, attribute) or attribute
    proxies = [
        c for c in schema.protected if c.proxy is not None and c.proxy.attribute == attribute
    ]
    if proxies:
        return _proxy_groups(attribute, frame, proxies)
    column = schema.by_name.get(attribute)
    if column is not None and column.role == "feature":
        raise InvalidInput(f"{attribute!r} is a feature: a protected attribute never is one")
    if privileged is None and (column is None or column.role != "protected"):
        raise InvalidInput(f"{attribute!r} is not a protected column or proxy attribute")
    rule = privileged if privileged is not None else column.privileged if column else None
    if rule is None:
        raise InvalidInput(
            f"attribute {attribute!r}: no privileged group declared "
            "(privileged: a value, values or a min/max range)"
        )
    if attribute not in frame.columns:
        raise InvalidInput(f"attribute {attribute!r} is not among the loans' columns")
    values = frame[attribute]
    reference = privileged_mask(values, rule)
    if isinstance(rule, PrivilegedGroup) and rule.values is None:
        _, outside = _range_masks(values, rule)
        groups = [Group(f"not {rule.describe()}", outside.astype(np.float64))]
        kind: Kind = "rule"
    else:
        text = values.astype("string").str.strip().str.upper()
        others = text[~reference & text.notna() & (text != "")]
        groups = [
            Group(str(name), (text == name).to_numpy(dtype=bool, na_value=False).astype(float))
            for name in sorted(others.unique())
        ]
        kind = "category"
    return _checked(
        AttributeGroups(
            attribute=attribute,
            kind=kind,
            reference=Group(describe_group(rule), reference.astype(np.float64)),
            groups=tuple(groups),
        )
    )


def _proxy_groups(attribute: str, frame: pd.DataFrame, columns: list[Any]) -> AttributeGroups:
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise InvalidInput(f"attribute {attribute!r}: columns {missing} are not among the loans'")
    weights = {}
    for column in columns:
        values = pd.to_numeric(frame[column.name], errors="coerce").fillna(0.0)
        weight = values.to_numpy(dtype=np.float64)
        if weight.size and (weight.min() < 0 or weight.max() > 1):
            raise InvalidInput(f"proxy column {column.name!r}: probabilities must be in [0, 1]")
        weights[column.name] = weight
    reference = next(c for c in columns if c.proxy.reference)
    return _checked(
        AttributeGroups(
            attribute=attribute,
            kind="proxy",
            reference=Group(reference.proxy.group, weights[reference.name]),
            groups=tuple(
                Group(c.proxy.group, weights[c.name]) for c in columns if not c.proxy.reference
            ),
        )
    )


def _checked(groups: AttributeGroups) -> AttributeGroups:
    if groups.reference.size <= 0:
        raise InvalidInput(
            f"attribute {groups.attribute!r}: no loan is in the reference group "
            f"{groups.reference.name!r}"
        )
    if not any(g.size > 0 for g in groups.groups):
        raise InvalidInput(
            f"attribute {groups.attribute!r}: no loan is outside the reference group"
        )
    return groups
