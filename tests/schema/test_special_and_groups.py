"""Special codes and protected groups: what a lender's file needs that the demo's does not.

Special codes (a past-due count of 98 meaning "unknown", a catch-all 999) are treated as
missing, the same in CSV and JSON, counted in the quality report, never refused under
``missing: refuse`` and never flagged as implausible. A protected column's privileged group
is a value, a set of values or a numeric range ("25 or older"); a group too small to say
anything is warned about; a protected column without a group is reported as not assessed.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.errors import InvalidInput
from loanrisk.inference.records import RecordRules, clean_record, require_clean
from loanrisk.inference.results import score_json
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import LoanSchema, builtin_schema, parse_schema, validate_frame
from loanrisk.schema.model import MIN_GROUP_SIZE, PrivilegedGroup
from loanrisk.storage import MemoryStorage
from loanrisk.training.fairness import describe_group, parity_report, privileged_mask
from loanrisk.training.job import TrainingRequest, run_training

LABEL = {"name": "bad", "role": "label", "type": "integer"}


def schema_of(*columns: dict[str, Any]) -> LoanSchema:
    return LoanSchema.model_validate({"name": "lender", "columns": [*columns, LABEL]})


PAST_DUE = {
    "name": "past_due",
    "type": "integer",
    "missing": "refuse",
    "valid": {"max": 60},
    "plausible": {"max": 12},
    "special": [{"values": [96, 98], "meaning": "unknown"}],
}
NOT_GIVEN = {"values": ["not given"], "meaning": "not answered"}
CATCH_ALL = {"values": ["other"], "meaning": "catch-all", "treat": "category"}
PROFESSION = {
    "name": "profession",
    "type": "categorical",
    "categories": ["clerk", "other"],
    "special": [NOT_GIVEN, CATCH_ALL],
}


def test_special_codes_are_missing_in_a_file_counted_and_never_refused_or_flagged() -> None:
    schema = schema_of(PAST_DUE, PROFESSION)
    frame = pd.DataFrame(
        {
            "past_due": ["0", "98", "3", "96", "1"],
            "profession": ["clerk", "NOT GIVEN", "other", " not given", "clerk"],
            "bad": [0, 1, 0, 1, 0],
        }
    )
    loans = validate_frame(frame, schema=schema)
    assert loans.frame["past_due"].isna().tolist() == [False, True, False, True, False]
    assert loans.frame["profession"].isna().tolist() == [False, True, False, True, False]
    assert loans.frame["profession"][2] == "OTHER"  # a category of its own
    assert loans.report.special == {"past_due": 2, "profession": 2}
    assert loans.report.missing["past_due"] == 2
    assert not loans.report.flagged and not loans.report.rejected  # 98 > 60 and > 12: a code
    assert loans.report.to_dict()["special"] == {"past_due": 2, "profession": 2}


def test_a_gap_is_still_refused_under_missing_refuse_beside_special_codes() -> None:
    frame = pd.DataFrame({"past_due": ["", "98"], "bad": [0, 1]})
    with pytest.raises(InvalidInput, match="past_due': required value missing at row 1"):
        validate_frame(frame, schema=schema_of(PAST_DUE))


def test_a_json_loan_treats_special_codes_as_the_file_does() -> None:
    rules = RecordRules(schema_of(PAST_DUE, PROFESSION))
    clean = require_clean({"past_due": 98, "profession": "Not Given"}, rules)
    assert clean.values == {"past_due": None, "profession": None}
    assert any("98 is a special value (unknown)" in w for w in clean.warnings)
    assert any("is a special value (not answered)" in w for w in clean.warnings)
    assert require_clean({"past_due": "96", "profession": "other"}, rules).values == {
        "past_due": None,
        "profession": "OTHER",
    }
    refused = clean_record({"past_due": 61, "profession": "clerk"}, rules)
    assert isinstance(refused, list) and "impossible value" in refused[0].message


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            {"name": "x", "type": "integer", "special": [{"values": ["n/a"]}]},
            "a number's special values are numbers",
        ),
        (
            {"name": "x", "type": "integer", "special": [{"values": [9], "treat": "category"}]},
            "treated as missing",
        ),
        (
            {
                "name": "x",
                "type": "ordinal",
                "categories": ["a", "b"],
                "special": [{"values": ["a"], "treat": "category"}],
            },
            "no place in the order",
        ),
        (
            {
                "name": "x",
                "type": "categorical",
                "categories": ["a"],
                "special": [{"values": ["z"], "treat": "category"}],
            },
            "must be listed in categories",
        ),
        (
            {"name": "x", "type": "boolean", "special": [{"values": [9]}]},
            "special values apply to numbers and categories",
        ),
        (
            {
                "name": "x",
                "role": "protected",
                "type": "integer",
                "privileged": {"min": 30, "values": ["a"]},
            },
            "either values or a min/max range",
        ),
        (
            {
                "name": "x",
                "role": "protected",
                "type": "integer",
                "privileged": {"min": 30, "max": 20},
            },
            "min 30 is above max 20",
        ),
    ],
)
def test_a_bad_special_or_group_declaration_is_refused_naming_why(
    column: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        schema_of({"name": "f", "type": "numeric"}, column)


def test_privileged_groups_by_value_set_and_range() -> None:
    ages = pd.Series(["24", "25", " 61 ", "", "unknown", "80"], dtype="string")
    over_25 = PrivilegedGroup(min=25)
    assert privileged_mask(ages, over_25).tolist() == [False, True, True, False, False, True]
    working = PrivilegedGroup(min=25, max=61)
    assert privileged_mask(ages, working).tolist() == [False, True, True, False, False, False]
    sexes = pd.Series(["M", " f", None, "m"], dtype="string")
    assert privileged_mask(sexes, "m").tolist() == [True, False, False, True]
    assert privileged_mask(sexes, PrivilegedGroup(values=("F", "X"))).tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert describe_group(over_25) == "at least 25"
    assert describe_group(PrivilegedGroup(values=("F", "X"))) == "F or X"


def test_a_group_smaller_than_the_minimum_is_warned_about() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    privileged = np.zeros(200, dtype=bool)
    privileged[: MIN_GROUP_SIZE - 1] = True
    report = parity_report(
        labels, rng.random(200), privileged, attribute="age", privileged_value="at least 25"
    )
    assert report.warnings == [
        f"the privileged group has {MIN_GROUP_SIZE - 1} loans, fewer than {MIN_GROUP_SIZE}: "
        "its parity ratios are noise"
    ]
    privileged[: MIN_GROUP_SIZE + 1] = True
    assert (
        parity_report(
            labels, rng.random(200), privileged, attribute="age", privileged_value="x"
        ).warnings
        == []
    )


def test_the_built_in_schema_s_hash_never_changes_with_an_upgrade() -> None:
    """Fields added to the schema language are hashed only when set: datasets and models
    stored before them keep matching their schema's hash."""
    assert builtin_schema().fingerprint() == "a5f46c057d61e5d8"
    with_codes = schema_of({"name": "f", "type": "numeric", "special": [{"values": [9]}]})
    without = schema_of({"name": "f", "type": "numeric"})
    assert with_codes.fingerprint() != without.fingerprint()


def test_yaml_s_booleans_and_numbers_name_a_privileged_group_as_the_file_writes_it() -> None:
    """``privileged: no`` is false to YAML, ``values: [1]`` a number: both still name the
    group a reviewer meant."""
    schema = parse_schema(
        "name: x\ncolumns:\n"
        "  - {name: foreign_worker, role: protected, type: categorical, privileged: no}\n"
        "  - {name: education, role: protected, type: categorical, privileged: {values: [1]}}\n"
        "  - {name: f, type: numeric}\n  - {name: bad, role: label, type: integer}\n"
    )
    worker, education = schema.column("foreign_worker"), schema.column("education")
    assert worker.privileged == "false"
    assert education.privileged == PrivilegedGroup(values=("1",))
    answers = pd.Series(["no", "yes", "N", "F"], dtype="string")
    assert privileged_mask(answers, worker.privileged).tolist() == [True, False, True, True]
    sexes = pd.Series(["F", "M", "N"], dtype="string")
    assert privileged_mask(sexes, "F").tolist() == [True, False, False]  # plain text stays
    codes = pd.Series(["1", "2", "1"], dtype="string")
    assert privileged_mask(codes, education.privileged).tolist() == [True, False, True]


def test_a_decline_notice_says_what_a_special_code_means_never_that_it_was_not_given() -> None:
    """An adverse-action notice must not tell an applicant that a bureau's "unknown" code
    was information they did not provide: JSON and CSV name the code's declared meaning."""
    schema = schema_of(
        {
            "name": "late",
            "type": "integer",
            "risk": "increasing",
            "reason": "Paid late often",
            "special": [{"values": [96, 98], "meaning": "not reported by the bureau"}],
        },
        {"name": "income", "type": "numeric"},
    )
    rng = np.random.default_rng(2)
    late = rng.poisson(1.0, 2_000).astype(object)
    late[rng.random(2_000) < 0.15] = 98
    income = rng.lognormal(8, 0.5, 2_000)
    bad = ((late == 98) | (income < 2_000)).astype(int)
    frame = pd.DataFrame({"late": late, "income": income, "bad": bad})
    storage = MemoryStorage()
    process_dataset(validate_frame(frame, schema=schema), storage, source="x", schema=schema)
    run_training(TrainingRequest(rounds=20), storage, nthread=1)
    scorer = Scorer(ModelRegistry(storage).load("loan-default", 1), threshold=0.3)
    loan = {"late": 98, "income": 1_500.0}
    (reason,) = [
        r
        for r in score_json(scorer.score_record(loan, explain=True))["reasons"]
        if r["feature"] == "late"
    ]
    assert reason["reason"] == "late: not reported by the bureau"
    assert (reason["value"], reason["direction"]) == (98, "special")
    body = io.BytesIO(b"late,income\n98,1500\n2,1500\n")
    results, _ = scorer.score_frame(pd.read_csv(body, dtype=str), decline_reasons=True)
    assert "late: not reported by the bureau" in results["decline_reasons"][0]
    assert "was not provided" not in " ".join(results["decline_reasons"])
