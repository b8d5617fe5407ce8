"""Validation: the corpus of broken files, cleaning, flagging, grouping and capping."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.ingest import read_csv
from loanrisk.errors import InvalidInput
from loanrisk.schema import LoanSchema, Validated, validate_frame, validate_records
from loanrisk.schema.validate import MAX_EXAMPLE_ROWS
from tests.builtin import FEATURES, LABEL, SCHEMA
from tests.conftest import FIXTURES
from tests.schema.second import POLICIES, second_loans

BAD = FIXTURES / "bad_csv"
EXPECTED: dict[str, str] = json.loads((BAD / "expected.json").read_text())


def test_the_corpus_covers_every_file() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in BAD.glob("*.csv"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_broken_file_fails_with_its_exact_message(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_csv(str(BAD / name))
    assert caught.value.message == EXPECTED[name]


def test_bytes_and_streams_are_read_like_paths() -> None:
    data = (BAD / "non_numeric.csv").read_bytes()
    with pytest.raises(InvalidInput, match="not a number at row 2"):
        read_csv(data)
    with (BAD / "non_numeric.csv").open("rb") as stream, pytest.raises(InvalidInput):
        read_csv(stream)


def test_a_missing_file_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_csv("/nonexistent/loans.csv")


def test_messy_but_valid_file_is_cleaned_and_the_cleaning_reported() -> None:
    loans = read_csv(str(FIXTURES / "messy_valid.csv"))
    frame = loans.frame
    assert list(frame.columns) == [*FEATURES, LABEL]
    assert frame["person_home_ownership"].tolist() == ["RENT", "OWN", "MORTGAGE", "RENT"]
    assert frame["person_age"].tolist() == [22.0, 21.0, 25.0, 23.0]
    assert frame[LABEL].tolist() == [1, 0, 1, 1]
    report = loans.report
    assert report.dropped_columns == ["comment"]
    assert "extra column 'comment' dropped" in report.warnings
    assert report.cleaned["column_names"] == 12
    assert report.cleaned["person_home_ownership"] == 4


def test_out_of_range_but_plausible_values_are_flagged_not_dropped(real_loans: Validated) -> None:
    assert len(real_loans.frame) == 32_581
    flagged = {issue.column: issue for issue in real_loans.report.flagged}
    assert flagged["person_age"].count == 5  # ages 123 and 144
    assert flagged["person_age"].examples[0] == "144"
    assert flagged["person_emp_length"].count == 2  # 123 years
    assert real_loans.frame["person_age"].max() == 144
    assert real_loans.report.missing["loan_int_rate"] == 3_116
    assert real_loans.report.missing["person_emp_length"] == 895


def test_types_of_clean_data(real_loans: Validated) -> None:
    frame = real_loans.frame
    assert frame[LABEL].dtype == np.int8
    for spec in SCHEMA.features:
        if spec.categories is not None:
            assert list(frame[spec.name].cat.categories) == list(spec.categories)
    assert frame["loan_int_rate"].dtype == np.float64


def test_one_bad_cell_in_a_large_frame_gives_one_precise_message(real_loans: Validated) -> None:
    big = pd.concat([real_loans.frame] * 16, ignore_index=True)  # ~520k rows
    big = big.astype({"loan_grade": "string", "person_income": "string"})
    big.loc[400_000, "person_income"] = "12k"
    big.loc[400_001, "loan_grade"] = "Q"
    with pytest.raises(InvalidInput) as caught:
        validate_frame(big)
    message = caught.value.message
    assert message.startswith("2 invalid values: ")
    assert "column 'person_income': not a number at row 400001 ('12k')" in message
    assert "column 'loan_grade': unknown category" in message
    assert len(caught.value.details["issues"]) == 2


def test_many_bad_rows_are_grouped_and_capped(real_loans: Validated) -> None:
    frame = real_loans.frame.copy()
    frame["loan_amnt"] = -1.0
    with pytest.raises(InvalidInput) as caught:
        validate_frame(frame)
    (issue,) = caught.value.details["issues"]
    assert issue["count"] == 32_581
    assert issue["rows"] == list(range(1, MAX_EXAMPLE_ROWS + 1))
    assert "and 32576 more" in caught.value.message


def test_unknown_category_is_an_error_in_training_but_a_warning_when_scoring() -> None:
    record = {
        "person_age": 30,
        "person_income": 50_000,
        "person_home_ownership": "YURT",
        "person_emp_length": 3,
        "loan_intent": "personal",
        "loan_grade": "b",
        "loan_amnt": 5_000,
        "loan_int_rate": None,
        "loan_percent_income": 0.1,
        "cb_person_default_on_file": "N",
        "cb_person_cred_hist_length": 4,
    }
    with pytest.raises(InvalidInput, match="unknown category"):
        validate_records([{**record, LABEL: 0}], mode="train")
    scored = validate_records([record], mode="score")
    assert scored.frame["person_home_ownership"].isna().tolist() == [True]
    assert scored.frame["loan_grade"].tolist() == ["B"]
    assert [i.column for i in scored.report.unknown_categories] == ["person_home_ownership"]
    assert LABEL not in scored.frame.columns


def test_booleans_are_not_numbers_and_empty_records_are_refused() -> None:
    frame = pd.DataFrame({name: [True] for name in FEATURES})
    with pytest.raises(InvalidInput, match="true/false is not a number"):
        validate_frame(frame, mode="score")
    with pytest.raises(InvalidInput, match="no records given"):
        validate_records([])


def test_chunked_reading_names_the_file_row_of_a_huge_field() -> None:
    from loanrisk.schema.rawcsv import iter_csv_chunks

    lines = (FIXTURES / "messy_valid.csv").read_text().splitlines()
    header, row = lines[0], lines[1]
    huge = row.replace("PERSONAL", "X" * 20_000)
    data = "\n".join([header, row, row, row, huge, row]).encode()
    with pytest.raises(InvalidInput, match=r"at row 4$"):
        list(iter_csv_chunks(io.BytesIO(data), chunk_rows=2))


def test_missing_feature_values_are_kept_and_counted() -> None:
    text = (BAD / "missing_label_value.csv").read_text().splitlines()
    header, rows = text[0], text[2:]
    rows[0] = ",,RENT,5,EDUCATION,,1000,11.14,0,0.1,N,2"
    loans = read_csv(("\n".join([header, *rows]) + "\n").encode())
    assert len(loans.frame) == 3
    report = loans.report.to_dict()
    assert report["missing"]["person_age"] == 1
    assert report["missing"]["person_income"] == 1
    assert report["missing"]["loan_grade"] == 1


def test_the_report_counts_every_value_the_model_receives_as_missing() -> None:
    """Blank values, and unknown categories kept as missing values: under ``unknown: missing``
    in training, and under ``refuse_in_training`` when scoring."""
    schema = LoanSchema.model_validate(POLICIES)
    loans = second_loans(40)
    loans.loc[0:2, "product"] = ["lease", "LEASE ", ""]
    loans.loc[3, "applicant_age"] = None
    trained = validate_frame(loans, schema=schema)
    report = trained.report.to_dict()
    assert report["missing"]["product"] == 3  # two unknown, one blank
    assert report["missing"]["applicant_age"] == 1
    for name in schema.feature_names:  # the count is what the frame holds as missing
        assert report["missing"][name] == int(trained.frame[name].isna().sum()), name
    (issue,) = report["unknown_categories"]
    assert issue["count"] == 2 and issue["message"].endswith("kept as a missing value")
    loans.loc[4, "risk_tier"] = "extreme"
    with pytest.raises(InvalidInput, match="risk_tier': unknown category"):
        validate_frame(loans, schema=schema)  # refuse_in_training
    scored = validate_frame(loans.drop(columns=["outcome"]), schema=schema, mode="score")
    assert scored.report.missing["risk_tier"] == 1 == scored.frame["risk_tier"].isna().sum()
    assert scored.report.missing["product"] == 3


def test_rows_that_cannot_be_used_can_be_dropped_with_their_row_numbers() -> None:
    loans = read_csv(str(BAD / "missing_label_value.csv"), on_error="drop")
    assert len(loans.frame) == 3
    assert loans.report.rejected_rows == [1]


def test_dropped_rows_are_neither_flagged_as_kept_nor_counted_as_missing() -> None:
    # Row 1 (no label) also employs someone for 123 years; row 6 (bad label) lacks its rate.
    text = (BAD / "missing_label_value.csv").read_text()
    text += "44,59000,RENT,2,PERSONAL,D,35000,,1,0.59,Y,3\n"
    text += "144,59000,RENT,2,PERSONAL,D,35000,,x,0.59,Y,3\n"
    loans = read_csv(text.encode(), on_error="drop")
    report = loans.report
    assert report.rejected_rows == [1, 6]
    assert {i.column for i in report.rejected} == {LABEL}
    assert report.flagged == []
    assert not any("person_emp_length" in w or "person_age" in w for w in report.warnings)
    assert report.missing["loan_int_rate"] == 1 == loans.frame["loan_int_rate"].isna().sum()


def test_a_long_header_is_read_whole() -> None:
    text = (BAD / "missing_label_value.csv").read_text().splitlines()
    extra = [f"x{i}" for i in range(2_000)]  # an 11,000-character header
    lines = [",".join([text[0], *extra]), *(",".join([row, *([""] * 2_000)]) for row in text[2:])]
    loans = read_csv(("\n".join(lines) + "\n").encode())
    assert loans.report.dropped_columns == extra
    with pytest.raises(InvalidInput, match="duplicate column"):
        read_csv(("\n".join([lines[0] + ",x15", *(r + "," for r in lines[1:])]) + "\n").encode())
    with pytest.raises(InvalidInput, match="header line is longer than 65,536 bytes"):
        read_csv(("a," * 40_000 + "\n1\n").encode())


def test_a_stored_file_s_columns_are_read_from_its_header_or_schema_alone() -> None:
    from loanrisk.schema.rawcsv import stored_columns
    from loanrisk.storage import MemoryStorage

    storage = MemoryStorage()
    rows = "\n".join(f"{i},RENT" for i in range(50_000))  # far more than the header is read
    storage.write_bytes("a.csv", ("\ufeffid, person_home_ownership\n" + rows).encode())
    assert stored_columns(storage, "a.csv") == ["id", "person_home_ownership"]
    buffer = io.BytesIO()
    pd.DataFrame({"id": [1], "loan_amnt": [500.0]}).to_parquet(buffer)
    storage.write_bytes("a.parquet", buffer.getvalue())
    assert stored_columns(storage, "a.parquet") == ["id", "loan_amnt"]
    storage.write_bytes("b.csv", b"\x00\x01binary")
    with pytest.raises(InvalidInput, match="binary data"):
        stored_columns(storage, "b.csv")
    storage.write_bytes("b.parquet", b"not parquet")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        stored_columns(storage, "b.parquet")
