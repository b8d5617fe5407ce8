"""The built-in sample: same schema, measured marginals, a real signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from loanrisk.data.sample import GRADE_SHARE, HOME_SHARE, generate_sample
from loanrisk.data.split import split_frame
from loanrisk.features.fit import fit_feature_spec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.schema import validate_frame
from tests.builtin import LABEL

PUBLIC_DEFAULT_RATE_BY_GRADE = {"A": 0.0996, "B": 0.1628, "C": 0.2073, "D": 0.5905, "E": 0.6442}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_sample(50_000, seed=7)


def test_same_seed_same_rows_and_other_seed_other_rows() -> None:
    pd.testing.assert_frame_equal(generate_sample(500, seed=3), generate_sample(500, seed=3))
    assert not generate_sample(500, seed=3).equals(generate_sample(500, seed=4))


def test_sample_passes_training_validation_with_flagged_outliers(sample: pd.DataFrame) -> None:
    loans = validate_frame(sample)
    assert len(loans.frame) == 50_000
    assert {i.column for i in loans.report.flagged} >= {"person_age", "person_emp_length"}
    assert loans.report.missing["loan_int_rate"] > 0


def test_marginals_follow_the_public_dataset(sample: pd.DataFrame) -> None:
    grade_share = sample["loan_grade"].value_counts(normalize=True)
    for grade, share in GRADE_SHARE.items():
        assert abs(grade_share.get(grade, 0) - share) < 0.01, grade
    home_share = sample["person_home_ownership"].value_counts(normalize=True)
    for home, share in HOME_SHARE.items():
        assert abs(home_share.get(home, 0) - share) < 0.01, home
    assert abs(sample[LABEL].mean() - 0.218) < 0.02
    assert 24 <= sample["person_age"].median() <= 28
    assert 45_000 <= sample["person_income"].median() <= 65_000
    assert sample["loan_percent_income"].max() <= 0.9


def test_default_rate_by_grade_follows_the_public_dataset(sample: pd.DataFrame) -> None:
    rates = sample.groupby("loan_grade", observed=True)[LABEL].mean()
    for grade, rate in PUBLIC_DEFAULT_RATE_BY_GRADE.items():
        assert abs(rates[grade] - rate) < 0.08, (grade, rates[grade], rate)
    assert rates.is_monotonic_increasing


def test_a_model_trained_on_the_sample_reaches_a_real_auc() -> None:
    loans = validate_frame(generate_sample(20_000, seed=0))
    train, test = split_frame(loans.frame)
    transformer = FeatureTransformer(fit_feature_spec(train))
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "learning_rate": 0.1,
        "max_depth": 6,
        "nthread": 2,
    }
    booster = xgb.train(params, xgb.DMatrix(transformer.transform(train), label=train[LABEL]), 100)
    auc = roc_auc_score(test[LABEL], booster.predict(xgb.DMatrix(transformer.transform(test))))
    assert auc > 0.80


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_sample(0)
    assert np.all(generate_sample(1).notna().sum() >= 0)
