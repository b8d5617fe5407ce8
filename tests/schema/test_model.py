"""The schema file: the built-in schema, what a bad file is told, the JSON Schema, and which
schemas a model may continue training across."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from loanrisk.cli import app
from loanrisk.errors import InvalidInput
from loanrisk.schema import builtin_schema, incompatibilities, json_schema, parse_schema
from loanrisk.schema.model import LoanSchema

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The loan of the reference's sample /predict request (REFERENCE.md), field for field.
REFERENCE_LOAN = {
    "person_age": 22,
    "person_income": 59000,
    "person_home_ownership": "RENT",
    "person_emp_length": 123,
    "loan_intent": "PERSONAL",
    "loan_grade": "D",
    "loan_amnt": 35000,
    "loan_int_rate": 16.02,
    "loan_percent_income": 0.59,
    "cb_person_default_on_file": "Y",
    "cb_person_cred_hist_length": 3,
}


def small(**changes: Any) -> dict[str, Any]:
    """A valid two-feature schema document, with ``changes`` applied to its columns."""
    columns = [
        {
            "name": "score",
            "type": "integer",
            "valid": {"min": 300, "max": 850},
            "risk": "decreasing",
        },
        {"name": "product", "type": "categorical", "categories": ["card", "auto"]},
        {
            "name": "outcome",
            "role": "label",
            "type": "categorical",
            "positive": ["bad"],
            "negative": ["good"],
        },
    ]
    for name, change in changes.items():
        columns = [({**c, **change} if c["name"] == name else c) for c in columns]
    return {"name": "small", "columns": [c for c in columns if c.get("drop") is not True]}


def refused(doc: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_schema(yaml.safe_dump(doc))
    return caught.value.message


def test_the_built_in_schema_is_the_public_dataset_and_the_reference_loan() -> None:
    schema = builtin_schema()
    assert schema.name == "credit-risk"
    assert len(schema.features) == 11
    assert schema.label_name == "loan_status"
    assert schema.example_record() == REFERENCE_LOAN
    assert parse_schema(schema.to_json()) == schema
    assert parse_schema(schema.to_json()).fingerprint() == schema.fingerprint()
    assert schema.column("loan_grade").categories == tuple("ABCDEFG")


def test_a_valid_schema_reads_from_yaml_and_json_with_categories_upper_case() -> None:
    schema = parse_schema(yaml.safe_dump(small()))
    assert schema.feature_names == ("score", "product")
    assert schema.column("product").categories == ("CARD", "AUTO")
    assert parse_schema(json.dumps(small())) == schema
    assert schema.column("score").encoding == "none"  # the type's default
    assert schema.column("product").encoding == "onehot"


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (
            small(score={"type": "decimal"}),
            "columns[0] (score).type: must be one of 'numeric', 'integer', 'categorical', "
            "'ordinal', 'boolean' or 'date'",
        ),
        (small(outcome={"drop": True}), "no column has role label"),
        (
            small(product={"risk": "increasing"}),
            "columns[1] (product): a risk direction needs an ordered feature",
        ),
        (
            {"name": "small", "columns": [*small()["columns"], small()["columns"][0]]},
            "duplicate column name(s): score",
        ),
        (small(score={"preprocess": "onehot"}), "preprocess 'onehot' does not apply to a integer"),
        (small(outcome={"positive": None}), "a categorical label needs its positive value(s)"),
        (small(score={"Name": "x"}), "columns[0] (score).Name: Extra inputs are not permitted"),
        (small(product={"categories": ["card", "CARD"]}), "category listed twice"),
        (small(score={"name": "Score"}), "write 'score': headers are matched trimmed"),
        (
            small(score={"origination": True}),
            "columns[0] (score): origination applies to a date column of role kept "
            "(this one is a integer feature)",
        ),
        (
            small(product={"amount": True}),
            "columns[1] (product): amount applies to a numeric or integer column",
        ),
        (small(score={"amount": True, "pii": True}), "columns[0] (score): amount cannot be pii"),
        (
            small(score={"amount": True, "valid": {"min": -5}}),
            "columns[0] (score): an amount is not negative",
        ),
        (
            {
                "name": "small",
                "columns": [
                    *small(score={"amount": True})["columns"],
                    {"name": "limit", "role": "kept", "type": "numeric", "amount": True},
                ],
            },
            "more than one amount column: score, limit",
        ),
        (small(score={"amount": "maybe"}), "columns[0] (score).amount: "),
    ],
)
def test_a_bad_schema_is_refused_with_one_clear_line(doc: Any, line: str) -> None:
    message = refused(doc)
    assert line in message
    assert "\n" not in message


def test_the_cli_checks_a_file_and_prints_one_line_per_problem(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(small(score={"amount": True})))
    bad.write_text(yaml.safe_dump(small(score={"type": "decimal"}, product={"risk": "increasing"})))
    runner = CliRunner()
    ok = runner.invoke(app, ["schema", "check", str(good)], env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    assert "score" in ok.output and "outcome" in ok.output
    assert "feature (amount)" in ok.output
    failed = runner.invoke(app, ["schema", "check", str(bad)])
    assert failed.exit_code == 2
    assert "columns[0] (score).type" in failed.output
    assert "columns[1] (product): a risk direction" in failed.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert "not YAML or JSON at line" in runner.invoke(app, ["schema", "check", str(broken)]).output


def test_origination_and_amount_columns_are_declared_and_hashed_only_when_set() -> None:
    dated = {"name": "opened_on", "role": "kept", "type": "date", "origination": True}
    doc = small(score={"amount": True})
    schema = parse_schema(yaml.safe_dump({**doc, "columns": [*doc["columns"], dated]}))
    assert schema.origination is not None and schema.origination.name == "opened_on"
    assert schema.amount is not None and schema.amount.name == "score"
    assert schema.feature_names == ("score", "product")  # the date is never a feature
    plain = parse_schema(yaml.safe_dump(small()))
    assert (plain.origination, plain.amount) == (None, None)
    # Unset flags leave the hash of a schema written before them as it was; set, they count.
    assert "amount" not in plain.to_json()
    assert plain.fingerprint() != parse_schema(yaml.safe_dump(doc)).fingerprint()


def test_the_published_json_schema_is_the_model_s() -> None:
    published = (DOCS / "schema.schema.json").read_text()
    assert published == json_schema(), "regenerate: loanrisk schema json-schema > docs/..."
    doc = json.loads(published)
    assert doc["properties"]["columns"]["type"] == "array"
    assert "Column" in doc["$defs"]


def test_continued_training_allows_added_categories_and_refuses_changed_types() -> None:
    parent = LoanSchema.model_validate(small())
    more = LoanSchema.model_validate(small(product={"categories": ["card", "auto", "loan"]}))
    assert incompatibilities(parent, more) == []
    retyped = LoanSchema.model_validate(small(score={"type": "numeric"}))
    assert incompatibilities(parent, retyped) == [
        "feature 'score' changed type from integer to numeric"
    ]
    assert "feature 'product' is missing" in incompatibilities(
        parent, LoanSchema.model_validate(small(product={"drop": True}))
    )
    assert incompatibilities(parent, builtin_schema())[0] == "feature 'score' is missing"
