"""The schema's other preprocessing steps (scale, none, ordinal, booleans), held to sklearn's
ColumnTransformer on loans of the second schema, batch and record by record."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.expand import expand
from loanrisk.data.split import split_frame
from loanrisk.features.fit import (
    fit_column_transformer,
    fit_feature_spec,
    sklearn_input,
    spec_from_column_transformer,
)
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.records import CleanRecord, RecordRules, clean_record
from loanrisk.schema import LoanSchema, validate_frame
from tests.schema.second import SECOND, second_loans, second_record

SCHEMA = LoanSchema.model_validate(SECOND)


@pytest.fixture(scope="module")
def loans() -> tuple:
    frame = validate_frame(second_loans(3_000), schema=SCHEMA).frame
    frame.loc[::50, "bureau_score"] = np.nan  # missing values reach every step
    frame.loc[::70, "has_guarantor"] = np.nan
    frame.loc[::90, "risk_tier"] = None
    return split_frame(frame, label=SCHEMA.label_name)


def test_every_declared_step_matches_sklearn(loans: tuple) -> None:
    train, test = loans
    fitted = fit_column_transformer(train, SCHEMA)
    spec = spec_from_column_transformer(fitted, rows=len(train), schema=SCHEMA)
    assert spec == fit_feature_spec(train, SCHEMA)  # the fast fit gives the same numbers
    assert spec.single_columns == (
        "monthly_income",
        "bureau_score",
        "applicant_age",
        "has_guarantor",
        "risk_tier",
    )
    assert spec.output_columns[-3:] == ("product=AUTO", "product=CARD", "product=PERSONAL")
    expected = fitted.transform(sklearn_input(test, SCHEMA))
    ours = FeatureTransformer(spec).transform(test)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    assert np.nanmax(np.abs(ours - expected)) <= 1e-9
    assert set(np.unique(ours[:, 4][~np.isnan(ours[:, 4])])) == {0.0, 1.0, 2.0}  # the order


def test_the_record_path_matches_the_batch_path(loans: tuple) -> None:
    train, _ = loans
    spec = fit_feature_spec(train, SCHEMA)
    transformer = FeatureTransformer(spec)
    rules = RecordRules(SCHEMA)
    records = [
        second_record(),
        second_record(risk_tier=None, has_guarantor="yes"),
        second_record(bureau_score=None, product="LEASE", has_guarantor=None),
    ]
    cleaned = [clean_record(r, rules) for r in records]
    assert all(isinstance(c, CleanRecord) for c in cleaned)
    rows = np.array([transformer.transform_record(c.values) for c in cleaned])
    frame = validate_frame(pd.DataFrame(records), schema=SCHEMA, mode="score").frame
    batch = transformer.transform(frame)
    np.testing.assert_array_equal(np.isnan(rows), np.isnan(batch))
    assert np.nanmax(np.abs(rows - batch)) <= 1e-12
    assert cleaned[2].warnings[-1].startswith("product: unknown category 'LEASE'")


def test_a_version_2_spec_round_trips_and_a_v1_spec_stays_v1(loans: tuple) -> None:
    spec = fit_feature_spec(loans[0], SCHEMA)
    doc = json.loads(spec.to_json())
    assert doc["version"] == 2
    assert doc["ordinal"] == [{"name": "risk_tier", "categories": ["LOW", "MEDIUM", "HIGH"]}]
    assert FeatureSpec.from_json(spec.to_json()) == spec


def test_expansion_noises_each_declared_type(loans: tuple) -> None:
    train, _ = loans
    big = expand(train, 10_000, seed=3, schema=SCHEMA)
    assert len(big) == 10_000
    ages = big["applicant_age"].dropna().to_numpy()
    assert np.all(ages == np.round(ages)) and ages.min() >= 18  # whole, clipped to valid
    repeated = np.resize(train["bureau_score"].to_numpy(), 10_000)
    noised = big["bureau_score"].to_numpy()
    changed = ~np.isnan(repeated) & (repeated != noised)
    assert 0.5 < changed.mean() < 1.0  # integers: +-1 by default (0 a third of the time)
    flips = np.resize(train["has_guarantor"].to_numpy(), 10_000) != big["has_guarantor"].to_numpy()
    assert 0.0 < np.nanmean(flips[~np.isnan(big["has_guarantor"].to_numpy())]) < 0.2
    assert list(big["risk_tier"].cat.categories) == ["LOW", "MEDIUM", "HIGH"]
    assert list(big.columns[:6]) == list(SCHEMA.feature_names)
