"""The compiled common case (``loanrisk.inference.compiled``) cleans a loan exactly as the
general path does, or leaves it to it: on schemas Hypothesis draws (every type, missing and
unknown policy, special codes, ranges, other declared columns) and loans made odd field by
field (nulls, booleans, huge and non-finite numbers, numeric text, categories in other case or
padded, special codes, control characters, unknown and non-text fields); and a plain loan
takes it."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loanrisk.inference.records import CleanRecord, RecordRules, clean_record
from loanrisk.schema import Column, LoanSchema, builtin_schema
from tests.builtin import EXAMPLE_LOAN
from tests.schema.generated import loans_of, record_of, schemas


def general(record: Any, rules: RecordRules) -> Any:
    compiled, rules.common_case = rules.common_case, None
    try:
        return clean_record(record, rules)
    finally:
        rules.common_case = compiled


def plain_value(column: Column) -> Any:
    """A value the common case takes: inside the valid and plausible ranges, a declared
    category as declared, a boolean."""
    if column.type == "boolean":
        return True
    if column.type in ("categorical", "ordinal"):
        codes = column.special_missing
        return next(c for c in column.categories or () if c == c.strip().upper() and c not in codes)
    low = max(column.valid_range.low, column.plausible.low if column.plausible else -math.inf)
    value = 2 if low == -math.inf else int(low) + 1
    return value if column.type == "integer" else value + 0.5


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-5, 300),
    st.floats(-5, 300),
    st.sampled_from([98, 999, 9999, 0, -1, 1e308 * 10, -0.0, 2.5, "12", " 7 ", "1_000", ""]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=6),
    st.sampled_from(["true", "NOT GIVEN", "not given", "\x01"]),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def loans_for(draw: st.DrawFn, schema: LoanSchema) -> dict[str, Any]:
    """A loan of ``schema``: plain, a row of a generated file, then fields made odd."""
    if draw(st.booleans()):
        record = {c.name: plain_value(c) for c in schema.features}
    else:
        record = record_of(schema, loans_of(schema, draw(st.integers(0, 99)), rows=8), 3)
    for column in draw(st.lists(st.sampled_from(schema.features), max_size=3)):
        if column.type in ("categorical", "ordinal") and draw(st.booleans()):
            category = draw(st.sampled_from(list(column.categories or ["X"])))
            record[column.name] = draw(
                st.sampled_from([category.lower(), f" {category}", category + "?"])
            )
        else:
            record[column.name] = draw(ODD)
    others = [c.name for c in schema.columns if c.role != "feature"]
    for name in draw(st.lists(st.sampled_from([*others, "id", "nickname", "ID"]), max_size=2)):
        record[name] = draw(ODD)
    if draw(st.integers(0, 9)) == 0 and schema.features:
        del record[schema.features[0].name]
    return record


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_common_case_cleans_as_the_general_path_or_leaves_the_loan_to_it(
    data: st.DataObject,
) -> None:
    schema = data.draw(schemas())
    rules = RecordRules(schema)
    assert rules.common_case is not None
    plain = {c.name: plain_value(c) for c in schema.features}
    taken = rules.common_case(plain)
    assert isinstance(taken, CleanRecord), "a plain loan takes the common case"
    assert repr(taken) == repr(general(plain, rules))
    for _ in range(5):
        record = data.draw(loans_for(schema))
        compiled = rules.common_case(record)
        if compiled is not None:
            # the same values in the same order, types included, and the same warnings
            assert repr(compiled) == repr(general(record, rules))


def test_the_reference_loan_takes_the_common_case_with_its_warning() -> None:
    rules = RecordRules(builtin_schema())
    clean = rules.common_case(dict(EXAMPLE_LOAN))  # type: ignore[misc]
    assert isinstance(clean, CleanRecord)
    assert clean.warnings == [
        "person_emp_length: 123 is outside the plausible range 0 to 60 (scored)"
    ]
    assert repr(clean) == repr(general(dict(EXAMPLE_LOAN), rules))
    assert rules.common_case({**EXAMPLE_LOAN, "loan_grade": "d"}) is None  # type: ignore[misc]
    assert rules.common_case({**EXAMPLE_LOAN, "person_age": True}) is None  # type: ignore[misc]


def test_what_the_general_path_refuses_or_reads_otherwise_is_left_to_it() -> None:
    schema = LoanSchema.model_validate(
        {
            "name": "odd",
            "columns": [
                {"name": "months", "type": "integer", "valid": {"min": 0}},
                {
                    "name": "shop",
                    "type": "categorical",
                    "categories": ["A", "NG", "b"],
                    "special": [{"values": ["NG"], "meaning": "not given"}],
                },
                {"name": "owner", "type": "boolean"},
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )
    rules = RecordRules(schema)
    plain = {"months": 30.0, "shop": "A", "owner": False}
    for record in (
        plain,
        {**plain, "months": 2.5},  # not a whole number
        {**plain, "months": -1},  # outside the valid range
        {**plain, "months": 2**1100},  # beyond any float
        {**plain, "shop": "NG"},  # a declared category that is also a special code
        {**plain, "shop": "b"},  # declared in lower case: read upper-case, unknown
        {**plain, "owner": "yes"},
        {**plain, "id": "\x07"},  # an id breaking the text rule
        {**plain, "id": 7, "bad": 1},  # other declared columns: taken
    ):
        compiled = rules.common_case(record)  # type: ignore[misc]
        expected = general(record, rules)
        taken = record is plain or ("id" in record and record["id"] == 7)
        assert (compiled is not None) == taken, record
        if compiled is not None:
            assert repr(compiled) == repr(expected)
