"""A scored record's warnings say what the model's FeatureSpec does with a missing or unknown
value, column by column, and the encoded row shows it did just that."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from loanrisk.data.split import split_frame
from loanrisk.features.fit import fit_feature_spec
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.records import CleanRecord, RecordRules, clean_record
from loanrisk.schema import LoanSchema, validate_frame
from tests.schema.second import POLICIES, second_loans, second_record

SCHEMA = LoanSchema.model_validate(POLICIES)
AS_MISSING = "scored as missing (each tree takes the branch it learned for missing values)"
AS_NONE = "scored as none of its categories (every one-hot column 0)"


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    frame = validate_frame(second_loans(1_000), schema=SCHEMA).frame
    return fit_feature_spec(split_frame(frame, label=SCHEMA.label_name)[0], SCHEMA)


def cleaned(record: dict[str, object], rules: RecordRules) -> CleanRecord:
    result = clean_record(record, rules)
    assert isinstance(result, CleanRecord), result
    return result


def test_each_missing_value_is_described_as_its_encoding_scores_it(spec: FeatureSpec) -> None:
    (median,) = spec.imputed
    record = second_record(
        applicant_age=None,
        monthly_income=None,
        bureau_score=" ",
        has_guarantor=None,
        product=None,
        risk_tier=None,
    )
    clean = cleaned(record, RecordRules(SCHEMA, spec=spec))
    assert clean.warnings == [
        f"applicant_age: missing, scored with the training median {median.median:g} in its place",
        f"monthly_income: missing, {AS_MISSING}",  # power
        f"bureau_score: missing, {AS_MISSING}",  # scale
        f"has_guarantor: missing, {AS_MISSING}",  # none (passthrough)
        f"product: missing, {AS_NONE}",  # one-hot
        f"risk_tier: missing, {AS_MISSING}",  # ordinal
    ]
    row = dict(
        zip(
            spec.output_columns,
            FeatureTransformer(spec).transform_record(clean.values),
            strict=True,
        )
    )
    assert row["applicant_age"] == median.median
    assert all(
        math.isnan(row[name])
        for name in ("monthly_income", "bureau_score", "has_guarantor", "risk_tier")
    )
    assert [row[f"product={c}"] for c in ("AUTO", "CARD", "PERSONAL")] == [0.0, 0.0, 0.0]


def test_an_unknown_category_is_described_by_its_policy_and_its_encoding(
    spec: FeatureSpec,
) -> None:
    rules = RecordRules(SCHEMA, spec=spec)
    clean = cleaned(second_record(product="lease", risk_tier="extreme"), rules)
    assert clean.warnings == [
        f"product: unknown category 'lease' (allowed: CARD, AUTO, PERSONAL), treated as "
        f"missing: {AS_NONE}",  # unknown: missing
        f"risk_tier: unknown category 'extreme' (allowed: LOW, MEDIUM, HIGH), {AS_MISSING}",
    ]
    assert clean.values["product"] is None  # a missing value, as the batch path makes it
    assert clean.values["risk_tier"] == "EXTREME"  # refuse_in_training: kept, encoded as NaN
    row = FeatureTransformer(spec).transform_record(clean.values)
    assert math.isnan(row[spec.output_columns.index("risk_tier")])
    batch = pd.DataFrame([second_record(product="lease")])
    frame = validate_frame(batch, schema=SCHEMA, mode="score").frame
    assert frame["product"].isna().all()


def test_without_a_fitted_spec_the_schema_s_encodings_are_described() -> None:
    clean = cleaned(second_record(applicant_age=None, product="lease"), RecordRules(SCHEMA))
    median = "scored with the training median in its place"
    assert clean.warnings[0] == f"applicant_age: missing, {median}"
    assert clean.warnings[1].endswith(f"treated as missing: {AS_NONE}")
