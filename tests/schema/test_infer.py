"""``schema infer``: a draft a person can review, from the public data and from odd files."""

from __future__ import annotations

import io
import re
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
    age back to a feature (drafted as protected: the reference scores with it), the
    encodings, grade as an ordered category, the prior default as a Y/N category."""
    doc = draft.model_dump(mode="json", exclude_defaults=True)
    builtin = builtin_schema()
    for column in doc["columns"]:
        declared = builtin.column(column["name"])
        if declared.role == "feature":
            column["role"] = "feature"
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
    assert schema.column("person_age").role == "protected"  # ECOA: age, for a reviewer
    assert (*schema.feature_names, "person_age") == tuple(
        sorted(builtin_schema().feature_names, key=lambda n: n == "person_age")
    )
    assert schema.column("loan_grade").type == "categorical"  # a person makes it ordinal
    assert schema.column("cb_person_default_on_file").type == "boolean"
    income = schema.column("person_income").plausible
    assert income is not None and income.max < 6_000_000  # a quantile, not the maximum
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
    assert not re.search(r"min: 0\.0\b", text)  # whole numbers are written whole


def odd_file(rows: int = 400) -> bytes:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "Application ID": [f"APP-{i:06d}" for i in range(rows)],
            "applied_on": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "employer": [f"employer {i % 150}" for i in range(rows)],
            "amount": rng.normal(1000, 100, rows).round(2),
            "tier": rng.choice(["low", "mid", "high"], rows),
            "outcome": rng.choice(["good", "bad"], rows, p=[0.8, 0.2]),
        }
    )
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


def lenders_file(rows: int = 4_000, *, delimiter: str = ",", trailing: bool = False) -> bytes:
    """A file shaped like a real lender's: protected attributes by their usual names, a
    past-due count whose 98 means "unknown", a catch-all code 999, a one-valued flag, a
    heavy-tailed income, stray text in a flag column, and a label with a few shifted rows."""
    rng = np.random.default_rng(3)
    past_due = rng.poisson(0.4, rows)
    past_due[rng.random(rows) < 0.03] = 98
    code = rng.integers(1, 300, rows)
    code[rng.random(rows) < 0.1] = 999
    flag = np.where(rng.random(rows) < 0.6, "Y", "N").astype(object)
    flag[:3] = ["JOANA", "EDNA", "VALERIA"]
    frame = pd.DataFrame(
        {
            "Age": rng.integers(18, 80, rows),
            "SEX": rng.choice(["F", "M"], rows),
            "marital_status": rng.choice(["S", "C", "V"], rows),
            "mortgage_amount": rng.integers(0, 9_000, rows),  # "age" inside a word: a feature
            "past_due_count": past_due,
            "profession_code": code,
            "has_card": "N",
            "flag_phone": flag,
            "net_income": np.round(rng.lognormal(7, 1.2, rows), 2),
            "target_label_bad=1": rng.choice(["0", "1"], rows, p=[0.8, 0.2]),
        }
    )
    frame.loc[5:7, "target_label_bad=1"] = "N"
    text = frame.to_csv(index=False, sep=delimiter, lineterminator="\n")
    if trailing:
        text = "".join(line + delimiter + "\n" for line in text.splitlines())
    return text.encode()


@pytest.mark.parametrize(("delimiter", "trailing"), [(",", False), ("\t", True), (";", False)])
def test_a_lender_s_file_is_drafted_with_protected_columns_codes_and_robust_ranges(
    delimiter: str, trailing: bool
) -> None:
    draft = infer_schema(io.BytesIO(lenders_file(delimiter=delimiter, trailing=trailing)))
    schema = draft.schema
    assert [c.name for c in schema.protected] == ["age", "sex", "marital_status"]
    assert not {"age", "sex", "marital_status"} & set(schema.feature_names)
    assert any("ECOA" in n for n in draft.notes["sex"])
    assert schema.column("mortgage_amount").role == "feature"
    past_due = schema.column("past_due_count")
    assert past_due.special_missing == {98.0}  # isolated far above the counts
    assert past_due.plausible is not None and past_due.plausible.max < 98
    assert schema.column("profession_code").special_missing == {999.0}  # a spike at the end
    income = schema.column("net_income").plausible
    assert income is not None and income.max < 0.999 * 10**5
    assert schema.column("has_card").role == "ignored"  # one value
    assert schema.column("flag_phone").role == "feature"
    assert schema.column("flag_phone").categories == ("Y", "N")  # stray text left out
    assert any("3 rare values" in n for n in draft.notes["flag_phone"])
    assert schema.label_name == "target_label_bad=1"  # guessed, despite 3 stray rows
    assert any("3 rows have another label value" in n for n in draft.notes[schema.label_name])
    assert [c.name for c in schema.columns][-1] == "target_label_bad=1"  # no trailing column


def test_a_column_without_sentinels_gets_no_special_values() -> None:
    rng = np.random.default_rng(0)
    ages = rng.integers(18, 100, 5_000)  # 99 is an age here: neither isolated nor a spike
    data = pd.DataFrame({"months": ages, "bad": rng.integers(0, 2, 5_000)})
    draft = infer_schema(io.BytesIO(data.to_csv(index=False).encode()), label="bad")
    assert draft.schema.column("months").special is None


def test_the_reviewed_draft_of_a_lender_s_file_reads_the_file() -> None:
    data = lenders_file(delimiter="\t", trailing=True)
    schema = infer_schema(io.BytesIO(data)).schema
    loans = read_csv(data, schema=schema, on_error="drop")
    # The stray flag texts (rows 1-3) and the shifted rows' "N" labels (rows 6-8).
    assert loans.report.rejected_rows == [1, 2, 3, 6, 7, 8]
    assert loans.report.special["past_due_count"] > 0
    assert loans.report.dropped_columns == []  # the trailing tab is no column


def test_rare_isolated_past_due_codes_are_special_and_named_labels_are_found() -> None:
    """Give Me Some Credit's shape: 96 and 98 in 0.18% of rows, far above counts of 0 to 3;
    a label named SeriousDlqin2yrs; MARRIAGE as a protected attribute."""
    rng = np.random.default_rng(5)
    rows = 20_000
    late = rng.poisson(0.3, rows)
    late[rng.choice(rows, 36, replace=False)] = rng.choice([96, 98], 36)
    dependants = rng.poisson(0.8, rows)
    dependants[:6] = 9  # rare but real: never a code on its own
    frame = pd.DataFrame(
        {
            "SeriousDlqin2yrs": rng.choice([0, 1], rows, p=[0.93, 0.07]),
            "NumberOfTimes90DaysLate": late,
            "dependants": dependants,
            "MARRIAGE": rng.choice(["1", "2", "3"], rows),
            "amount": np.round(rng.lognormal(8, 1, rows), 1),
        }
    )
    schema = infer_schema(io.BytesIO(frame.to_csv(index=False).encode())).schema
    assert schema.label_name == "seriousdlqin2yrs"
    late_column = schema.column("numberoftimes90dayslate")
    assert late_column.special_missing == {96.0, 98.0}
    assert late_column.plausible is not None and late_column.plausible.max < 96
    assert schema.column("dependants").special is None
    assert schema.column("marriage").role == "protected"
    plausible = schema.column("dependants").plausible
    assert plausible is not None and float(plausible.max).is_integer()  # whole bounds


def test_an_origination_date_and_a_loan_amount_are_drafted_for_vintages() -> None:
    """A date named like an origination date is drafted kept with ``origination: true``
    (never a feature), a non-negative number named like an amount with ``amount: true`` (its
    role unchanged); a date named otherwise stays ignored."""
    frame = pd.read_csv(io.BytesIO(odd_file()))
    frame["disbursed_on"] = frame["applied_on"]
    draft = infer_schema(io.BytesIO(frame.to_csv(index=False).encode()), name="odd")
    schema = draft.schema
    assert schema.origination is not None and schema.origination.name == "disbursed_on"
    assert schema.origination.role == "kept"
    assert schema.column("applied_on").role == "ignored"
    assert schema.amount is not None and schema.amount.name == "amount"
    assert schema.amount.role == "feature" and "amount" in schema.feature_names
    assert any("origination date" in n for n in draft.notes["disbursed_on"])
    text = render_yaml(draft)
    assert "origination: true" in text and "amount: true" in text
    assert parse_schema(text) == schema
