"""``schema infer``: a draft a person can review, from the public data and from odd files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from loanrisk.cli import app
from loanrisk.data.ingest import read_csv
from loanrisk.errors import InvalidInput
from loanrisk.features.fit import fit_feature_spec
from loanrisk.schema import LoanSchema, builtin_schema, parse_schema
from loanrisk.schema.infer import infer_schema, render_yaml


def review(draft: LoanSchema) -> LoanSchema:
    """What a person does to the public data's draft to reach the reference's preprocessing:
    the encodings, grade as an ordered category, the prior default as a Y/N category."""
    doc = draft.model_dump(mode="json", exclude_defaults=True)
    builtin = builtin_schema()
    for column in doc["columns"]:
        declared = builtin.column(column["name"])
        if declared.role == "feature":
            column["preprocess"] = declared.encoding
            if declared.categories is not None:
                column["type"] = declared.type
                column["categories"] = list(declared.categories)
    return LoanSchema.model_validate(doc)


def test_the_public_data_s_draft_after_review_fits_the_built_in_spec(real_csv: Path) -> None:
    with real_csv.open("rb") as stream:
        draft = infer_schema(stream, name="public")
    schema = draft.schema
    assert schema.label_name == "loan_status"
    assert schema.feature_names == builtin_schema().feature_names
    assert schema.column("loan_grade").type == "categorical"  # a person makes it ordinal
    assert schema.column("cb_person_default_on_file").type == "boolean"
    assert schema.column("person_age").plausible is not None
    assert schema.column("person_age").plausible.max == 144  # observed, for review
    reviewed = review(schema)
    ours = read_csv(str(real_csv), schema=reviewed).frame
    theirs = read_csv(str(real_csv)).frame
    assert fit_feature_spec(ours, reviewed) == fit_feature_spec(theirs)


def test_the_draft_is_commented_yaml_that_reads_back_as_the_same_schema(real_csv: Path) -> None:
    with real_csv.open("rb") as stream:
        draft = infer_schema(stream, name="public", source="credit_risk_dataset.csv")
    text = render_yaml(draft)
    assert text.startswith("# Draft schema for credit_risk_dataset.csv")
    assert "# missing 3,116 of 32,581 (9.6%)" in text  # loan_int_rate
    assert "# REVIEW: if the categories have an order" in text
    assert parse_schema(text) == draft.schema
    assert "min: 0.0" not in text  # whole numbers are written whole


def odd_file(rows: int = 400) -> bytes:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "Application ID": [f"APP-{i:06d}" for i in range(rows)],
        "applied_on": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
        "employer": [f"employer {i % 150}" for i in range(rows)],
        "amount": rng.normal(1000, 100, rows).round(2),
        "tier": rng.choice(["low", "mid", "high"], rows),
        "outcome": rng.choice(["good", "bad"], rows, p=[0.8, 0.2]),
    })  # fmt: skip
    return frame.to_csv(index=False).encode()


def test_high_cardinality_text_ids_dates_and_a_text_label_are_drafted_for_review() -> None:
    draft = infer_schema(io.BytesIO(odd_file()), name="odd")
    schema = draft.schema
    assert schema.id_name == "application id"
    assert schema.column("applied_on").type == "date"
    assert schema.column("applied_on").role == "ignored"
    employer = schema.column("employer")
    assert employer.role == "ignored"  # 150 values: never silently a category
    assert any("150 distinct text values" in n for n in draft.notes["employer"])
    assert schema.column("tier").categories is not None
    assert schema.label.positive == ("bad",) and schema.label.negative == ("good",)
    assert schema.feature_names == ("amount", "tier")


def test_the_rarer_label_value_is_guessed_and_marked_for_review() -> None:
    data = odd_file().replace(b",bad", b",late").replace(b",good", b",paid")
    draft = infer_schema(io.BytesIO(data), name="odd", label="outcome")
    assert draft.schema.label.positive == ("late",)
    assert any(
        n.startswith("REVIEW: is 'late' the value of a default") for n in draft.notes["outcome"]
    )


def test_a_file_without_a_label_asks_for_one() -> None:
    with pytest.raises(InvalidInput, match="no label column found: name it with --label"):
        infer_schema(io.BytesIO(b"a,b\n1,2\n3,4\n"))
    with pytest.raises(InvalidInput, match="label column 'nope' is not in the file"):
        infer_schema(io.BytesIO(b"a,b\n1,2\n3,4\n"), label="nope")


def test_the_cli_writes_a_draft_and_never_over_a_file(tmp_path: Path) -> None:
    source = tmp_path / "odd loans.csv"
    source.write_bytes(odd_file())
    target = tmp_path / "schema.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["schema", "infer", str(source), "--output", str(target)])
    assert result.exit_code == 0, result.output
    schema = parse_schema(target.read_text())
    assert schema.name == "odd-loans"
    again = runner.invoke(app, ["schema", "infer", str(source), "--output", str(target)])
    assert again.exit_code == 2 and "exists" in again.output
    printed = runner.invoke(app, ["schema", "infer", str(source)])
    assert yaml.safe_load(printed.output)["name"] == "odd-loans"
