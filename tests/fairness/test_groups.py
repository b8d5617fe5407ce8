"""A protected attribute's groups come from the schema: a category's values against the
privileged ones, a rule's outside against its inside, proxy probabilities as weights; bad
declarations are refused naming why, and small groups are warned about."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from loanrisk.errors import InvalidInput
from loanrisk.fairness import attribute_groups, protected_attributes
from loanrisk.fairness.groups import declared_name
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import MIN_GROUP_SIZE, PrivilegedGroup


def schema_of(*columns: dict[str, Any]) -> LoanSchema:
    return LoanSchema.model_validate(
        {
            "name": "lender",
            "columns": [
                {"name": "income", "type": "numeric"},
                *columns,
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )


def proxy(name: str, group: str, *, reference: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "role": "protected",
        "type": "numeric",
        "proxy": {"attribute": "race", "group": group, "reference": reference},
    }


SCHEMA = schema_of(
    {"name": "sex", "role": "protected", "type": "categorical", "privileged": "M"},
    {"name": "age", "role": "protected", "type": "integer", "privileged": {"min": 25}},
    {"name": "marital", "role": "protected", "type": "categorical"},
    proxy("p_white", "white", reference=True),
    proxy("p_black", "black"),
    proxy("p_hispanic", "hispanic"),
)
FRAME = pd.DataFrame(
    {
        "sex": ["M", " f", None, "m", "X"],
        "age": ["24", "25", "", "61", "x"],
        "p_white": [0.9, 0.1, 0.5, None, 1.0],
        "p_black": [0.05, 0.8, 0.25, None, 0.0],
        "p_hispanic": [0.05, 0.1, 0.25, None, 0.0],
    }
)


def test_the_attributes_a_schema_declares_groups_for() -> None:
    assert protected_attributes(SCHEMA) == ["sex", "age", "race"]
    assert SCHEMA.feature_names == ("income",)  # proxies are never features


def test_an_attribute_is_named_as_headers_are_matched_when_unambiguous() -> None:
    assert attribute_groups(SCHEMA, FRAME, " SEX").attribute == "sex"
    assert attribute_groups(SCHEMA, FRAME, "Race").kind == "proxy"
    assert declared_name(["sex", "age"], "AGE") == "age"
    assert declared_name(["Race", "race"], "race") == "race"  # itself first
    assert declared_name(["Race", "race"], "RACE") is None  # two names match: none is taken
    assert declared_name(["sex"], "gender") is None


def test_a_category_s_other_values_are_groups_of_their_own() -> None:
    groups = attribute_groups(SCHEMA, FRAME, "sex")
    assert groups.kind == "category" and groups.reference.name == "M"
    assert groups.reference.weight.tolist() == [1, 0, 0, 1, 0]
    assert {g.name: g.weight.tolist() for g in groups.groups} == {
        "F": [0, 1, 0, 0, 0],
        "X": [0, 0, 0, 0, 1],
    }


def test_a_rule_s_outside_is_the_protected_group_and_unknowns_are_in_none() -> None:
    groups = attribute_groups(SCHEMA, FRAME, "age")
    assert groups.kind == "rule" and groups.reference.name == "at least 25"
    assert groups.reference.weight.tolist() == [0, 1, 0, 1, 0]
    (young,) = groups.groups
    assert young.name == "not at least 25" and young.weight.tolist() == [1, 0, 0, 0, 0]


def test_proxy_probabilities_are_weights_and_a_missing_one_is_zero() -> None:
    groups = attribute_groups(SCHEMA, FRAME, "race")
    assert groups.kind == "proxy" and groups.reference.name == "white"
    assert groups.reference.weight.tolist() == [0.9, 0.1, 0.5, 0.0, 1.0]
    assert [g.name for g in groups.groups] == ["black", "hispanic"]
    assert groups.groups[0].size == pytest.approx(1.1)


def test_a_request_may_name_the_group_of_a_kept_column() -> None:
    frame = pd.DataFrame({"region": ["north", "south", "south"]})
    groups = attribute_groups(
        SCHEMA, frame, "region", privileged=PrivilegedGroup(values=("NORTH",))
    )
    assert [g.name for g in groups.groups] == ["SOUTH"]


def test_small_groups_are_warned_about() -> None:
    sex = np.array(["M"] * 100 + ["F"] * (MIN_GROUP_SIZE - 1))
    groups = attribute_groups(SCHEMA, pd.DataFrame({"sex": sex}), "sex")
    assert groups.warnings() == [
        f"sex group 'F' has {MIN_GROUP_SIZE - 1} loans, fewer than {MIN_GROUP_SIZE}: "
        "its figures are noise"
    ]


@pytest.mark.parametrize(
    ("attribute", "frame", "message"),
    [
        ("marital", FRAME, "no privileged group declared"),
        ("income", FRAME, "is a feature"),
        ("nothing", FRAME, "not a protected column or proxy attribute"),
        ("sex", pd.DataFrame({"sex": ["F", "F"]}), "no loan is in the reference group"),
        ("sex", pd.DataFrame({"sex": ["M", None]}), "no loan is outside the reference group"),
        ("race", pd.DataFrame({"p_white": [1.0]}), "are not among the loans'"),
        ("race", FRAME.assign(p_black=2.0), "probabilities must be in \\[0, 1\\]"),
    ],
)
def test_groups_that_cannot_be_built_are_refused_naming_the_attribute(
    attribute: str, frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        attribute_groups(SCHEMA, frame, attribute)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([{**proxy("p", "a", reference=True), "type": "categorical"}], "protected numeric"),
        ([{**proxy("p", "a", reference=True), "role": "kept"}], "protected numeric"),
        ([proxy("p", "a"), proxy("q", "b")], "exactly one reference group"),
        ([proxy("p", "a", reference=True), proxy("q", "a")], "two or more distinct groups"),
        ([proxy("p", "a", reference=True)], "two or more distinct groups"),
        (
            [proxy("p", "a", reference=True), proxy("q", "b"), {"name": "race", "type": "numeric"}],
            "also a column's name",
        ),
        ([{**proxy("p", "a", reference=True), "privileged": "x"}], "proxy.reference"),
    ],
)
def test_a_bad_proxy_declaration_is_refused_naming_why(
    columns: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        schema_of(*columns)
