"""Importance per attribute: the gain of a model's inputs summed to the schema's columns.

A model sees one input per numeric or ordinal attribute and one per category of a one-hot
attribute (``home_ownership=RENT``); a reader asks how much *home ownership* matters, so every
one-hot input is summed to its attribute and labelled with the schema's plain-language name.
Gain given per attribute already (nothing to sum) passes through unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from loanrisk.schema import LoanSchema

#: Between an attribute's name and a category in a one-hot input's name.
SEPARATOR = "="


@dataclass(frozen=True)
class AttributeGain:
    """The total gain of one attribute (``inputs``: how many model inputs were summed)."""

    name: str
    label: str
    gain: float
    inputs: int


def attribute_of(column: str, attributes: Collection[str] = ()) -> str:
    """The attribute a model input belongs to: ``column`` itself when it is an attribute, the
    longest attribute ``a`` with ``column`` starting ``a=`` (a column name may hold ``=``), or
    else the part before the first ``=``."""
    if column in attributes or SEPARATOR not in column:
        return column
    owners = [a for a in attributes if column.startswith(a + SEPARATOR)]
    return max(owners, key=len) if owners else column.partition(SEPARATOR)[0]


def by_attribute(
    gain: Mapping[str, float], *, schema: LoanSchema | None = None
) -> list[AttributeGain]:
    """``gain`` (by model input, or by attribute) summed per attribute, largest first (ties by
    name). Labels are the schema's titles (:attr:`Column.label_text`), the name for an
    attribute the schema does not declare, and the name in brackets after a title two
    attributes share."""
    declared = schema.by_name if schema is not None else {}
    totals: dict[str, float] = {}
    inputs: dict[str, int] = {}
    for column, value in gain.items():
        name = attribute_of(column, declared)
        totals[name] = totals.get(name, 0.0) + float(value)
        inputs[name] = inputs.get(name, 0) + 1
    labels = {n: declared[n].label_text if n in declared else n for n in totals}
    shared = {label for label, n in Counter(labels.values()).items() if n > 1}
    ranked = sorted(totals, key=lambda n: (-totals[n], n))
    return [
        AttributeGain(
            n, f"{labels[n]} ({n})" if labels[n] in shared else labels[n], totals[n], inputs[n]
        )
        for n in ranked
    ]


def top_and_others(
    ranked: Sequence[AttributeGain], top: int
) -> tuple[list[AttributeGain], AttributeGain | None]:
    """The first ``top`` of ``ranked`` and, when more follow, their sum as one item (named
    ``""``, labelled with how many attributes it holds)."""
    if len(ranked) <= top:
        return list(ranked), None
    shown, rest = list(ranked[:top]), ranked[top:]
    others = AttributeGain(
        "", f"{len(rest)} other attributes", sum(a.gain for a in rest), sum(a.inputs for a in rest)
    )
    return shown, others
