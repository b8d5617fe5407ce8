"""The numpy transform against sklearn's, on the public dataset; the JSON spec."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.compose import ColumnTransformer

from loanrisk.data.split import split_frame
from loanrisk.errors import InvalidInput
from loanrisk.features.fit import (
    fit_column_transformer,
    fit_feature_spec,
    sklearn_input,
    spec_from_column_transformer,
)
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer, yeo_johnson
from loanrisk.schema import Validated, validate_records
from tests.builtin import FEATURES


@pytest.fixture(scope="module")
def fitted(real_loans: Validated) -> tuple[ColumnTransformer, FeatureSpec]:
    train, _ = split_frame(real_loans.frame)
    sklearn_fitted = fit_column_transformer(train)
    return sklearn_fitted, spec_from_column_transformer(sklearn_fitted, rows=len(train))


def test_batch_transform_matches_sklearn_on_the_public_dataset(
    real_loans: Validated, fitted: tuple[ColumnTransformer, FeatureSpec]
) -> None:
    sklearn_fitted, spec = fitted
    expected = sklearn_fitted.transform(sklearn_input(real_loans.frame))
    ours = FeatureTransformer(spec).transform(real_loans.frame)
    assert ours.shape == expected.shape == (32_581, 26)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    assert np.nanmax(np.abs(ours - expected)) <= 1e-6


def test_unknown_categories_encode_as_all_zero(
    fitted: tuple[ColumnTransformer, FeatureSpec],
) -> None:
    sklearn_fitted, spec = fitted
    record = {
        "person_age": 30,
        "person_income": 40_000,
        "person_home_ownership": "HOUSEBOAT",
        "person_emp_length": None,
        "loan_intent": "VENTURE",
        "loan_grade": "Z",
        "loan_amnt": 4_000,
        "loan_int_rate": None,
        "loan_percent_income": 0.1,
        "cb_person_default_on_file": "N",
        "cb_person_cred_hist_length": 3,
    }
    loans = validate_records([record], mode="score")
    ours = FeatureTransformer(spec).transform(loans.frame)
    columns = spec.output_columns
    home = [i for i, c in enumerate(columns) if c.startswith("person_home_ownership=")]
    grade = [i for i, c in enumerate(columns) if c.startswith("loan_grade=")]
    assert ours[0, home].sum() == 0 and ours[0, grade].sum() == 0
    assert ours[0, columns.index("loan_intent=VENTURE")] == 1
    unknown = sklearn_input(loans.frame).assign(person_home_ownership="HOUSEBOAT", loan_grade="Z")
    np.testing.assert_allclose(ours, sklearn_fitted.transform(unknown), atol=1e-6)


def test_missing_values_in_columns_never_imputed_stay_missing_as_in_sklearn(
    real_loans: Validated, fitted: tuple[ColumnTransformer, FeatureSpec]
) -> None:
    sklearn_fitted, spec = fitted
    frame = real_loans.frame.head(50).copy()
    frame.loc[[3, 7], "person_age"] = np.nan
    frame.loc[[5], "person_income"] = np.nan
    ours = FeatureTransformer(spec).transform(frame)
    expected = sklearn_fitted.transform(sklearn_input(frame))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    assert np.isnan(ours).sum() == 3


def clean_record(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FEATURES:
        value = row[name]
        out[name] = None if pd.isna(value) else (value if isinstance(value, float) else str(value))
    return out


def test_single_record_path_equals_the_batch_path(
    real_loans: Validated, fitted: tuple[ColumnTransformer, FeatureSpec]
) -> None:
    transformer = FeatureTransformer(fitted[1])
    frame = real_loans.frame.sample(500, random_state=1)
    batch = transformer.transform(frame)
    single = np.array([transformer.transform_record(clean_record(r)) for _, r in frame.iterrows()])
    np.testing.assert_array_equal(np.isnan(single), np.isnan(batch))
    assert np.nanmax(np.abs(single - batch)) <= 1e-12


@pytest.mark.parametrize("lmbda", [0.0, 0.37, 1.0, 2.0, -1.3, 3.5])
def test_yeo_johnson_matches_scipy_on_both_signs_and_the_special_lambdas(lmbda: float) -> None:
    x = np.array([-50.0, -1.0, -0.25, 0.0, 0.5, 3.0, 1e6])
    np.testing.assert_allclose(yeo_johnson(x, lmbda), stats.yeojohnson(x, lmbda), rtol=1e-12)
    assert np.isnan(yeo_johnson(np.array([np.nan]), lmbda)).all()


def test_spec_round_trips_through_json_and_is_human_readable(
    fitted: tuple[ColumnTransformer, FeatureSpec],
) -> None:
    spec = fitted[1]
    text = spec.to_json()
    doc = json.loads(text)
    assert doc["format"] == "loanrisk.feature_spec" and doc["version"] == 1
    assert doc["output_columns"][:3] == [  # the imputed group, in the schema's order
        "person_emp_length",
        "loan_int_rate",
        "cb_person_cred_hist_length",
    ]
    assert doc["onehot"][2]["categories"] == ["A", "B", "C", "D", "E", "F", "G"]
    again = FeatureSpec.from_json(text)
    assert again == spec
    assert again.fingerprint() == spec.fingerprint()
    assert all(math.isfinite(p.lmbda) for p in again.power)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "other"}, "not a feature spec"),
        ({"format": "loanrisk.feature_spec", "version": 99}, "version 99 is not supported"),
        ({"format": "loanrisk.feature_spec", "version": 1, "imputed": [{}]}, "malformed"),
    ],
)
def test_a_bad_spec_is_refused_clearly(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        FeatureSpec.from_json(json.dumps(doc))
    with pytest.raises(InvalidInput, match="malformed"):
        FeatureSpec.from_json("{not json")


def test_the_fast_fit_gives_the_column_transformers_spec(
    real_loans: Validated, fitted: tuple[ColumnTransformer, FeatureSpec]
) -> None:
    train, _ = split_frame(real_loans.frame)
    fast = fit_feature_spec(train)
    reference = fitted[1]
    assert [c.name for c in fast.imputed] == [c.name for c in reference.imputed]
    for ours, theirs in zip(fast.imputed, reference.imputed, strict=True):
        assert ours.median == theirs.median
    for ours_p, theirs_p in zip(fast.power, reference.power, strict=True):
        assert ours_p.name == theirs_p.name
        assert (ours_p.lmbda, ours_p.mean, ours_p.scale) == pytest.approx(
            (theirs_p.lmbda, theirs_p.mean, theirs_p.scale), rel=1e-12
        )
    assert fast.onehot == reference.onehot
    assert fast.output_columns == reference.output_columns


def test_a_category_absent_from_training_is_absent_from_the_vocabulary(
    real_loans: Validated,
) -> None:
    train = real_loans.frame[real_loans.frame["person_home_ownership"] != "OTHER"]
    spec = fit_feature_spec(train)
    assert spec.onehot[0].categories == ("MORTGAGE", "OWN", "RENT")
    assert spec == spec_from_column_transformer(fit_column_transformer(train), rows=len(train))
