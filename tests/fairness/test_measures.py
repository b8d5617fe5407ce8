"""The AIR and SMD equal solas-ai's (its own venv, by subprocess), their intervals scipy's,
the selection rates fairlearn's MetricFrame's, within 1e-9 on shared fixtures; a planted
disparity is flagged and its absence is not, at the rates docs/fairness.md states."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate
from scipy import stats

from loanrisk.errors import InvalidInput
from loanrisk.fairness import (
    adverse_impact_ratio,
    attribute_groups,
    standardized_mean_difference,
)
from loanrisk.fairness.report import attribute_fairness
from loanrisk.schema import LoanSchema
from tests.fairness.conftest import Solas

TOLERANCE = 1e-9


def hard_case(n: int, protected_rate: float, seed: int) -> dict[str, Any]:
    """Two 0/1 groups (40% protected), approvals drawn at 0.7 and ``protected_rate``."""
    rng = np.random.default_rng(seed)
    protected = rng.random(n) < 0.4
    approved = rng.random(n) < np.where(protected, protected_rate, 0.7)
    score = rng.beta(2, 8, n) + 0.03 * protected
    return {
        "outcome": approved.astype(float),
        "score": score,
        "groups": {"P": protected.astype(float), "R": (~protected).astype(float)},
        "protected": ["P"],
        "reference": ["R"],
    }


def proxy_case(n: int, seed: int) -> dict[str, Any]:
    """Membership probabilities (BISG-like) of two groups that sum to one per loan."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 0.5, n)
    approved = rng.random(n) < 0.7 - 0.2 * p
    return {
        "outcome": approved.astype(float),
        "score": rng.beta(2, 8, n) + 0.05 * p,
        "groups": {"P": p, "R": 1 - p},
        "protected": ["P"],
        "reference": ["R"],
    }


def three_groups_with_unknowns(n: int, seed: int) -> dict[str, Any]:
    """Groups A and B against R, and loans in no group (null), which still count in the
    SMD's population."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B", "R", "?"], n, p=[0.2, 0.3, 0.4, 0.1])
    groups = {g: np.where(group == "?", np.nan, (group == g).astype(float)) for g in "ABR"}
    return {
        "outcome": (rng.random(n) < np.where(group == "B", 0.5, 0.7)).astype(float),
        "score": rng.beta(2, 8, n) + 0.04 * (group == "A"),
        "groups": groups,
        "protected": ["A", "B"],
        "reference": ["R"],
    }


CASES = [
    hard_case(60, 0.5, 0),  # Fisher's exact test (a cell of at most 100 loans)
    hard_case(400, 0.5, 1),
    hard_case(3000, 0.6, 2),  # every cell above 100: chi-squared with Yates's correction
    hard_case(3000, 0.7, 3),  # no disparity
    proxy_case(300, 4),
    proxy_case(3000, 5),
    three_groups_with_unknowns(800, 6),
]


@pytest.fixture(scope="module")
def solas_figures(solas: Solas) -> list[dict[str, dict[str, float]]]:
    return solas(CASES)


def weights(case: dict[str, Any], group: str) -> np.ndarray:
    return np.nan_to_num(case["groups"][group], nan=0.0)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_air_and_smd_equal_solas_ai_s(
    index: int, solas_figures: list[dict[str, dict[str, float]]]
) -> None:
    case = CASES[index]
    reference = weights(case, "R")
    for group in case["protected"]:
        theirs = solas_figures[index][group]
        air = adverse_impact_ratio(case["outcome"], weights(case, group), reference)
        smd = standardized_mean_difference(case["score"], weights(case, group), reference)
        assert air.air == pytest.approx(theirs["air"], rel=TOLERANCE, abs=TOLERANCE)
        assert air.p_value == pytest.approx(theirs["air_p_value"], rel=TOLERANCE, abs=1e-300)
        assert air.protected_rate == pytest.approx(theirs["protected_rate"], abs=TOLERANCE)
        assert air.reference_rate == pytest.approx(theirs["reference_rate"], abs=TOLERANCE)
        assert air.protected_count == pytest.approx(theirs["protected_count"], abs=TOLERANCE)
        assert smd.smd is not None
        # solas-ai states the SMD in percent of the standard deviation.
        assert 100 * smd.smd == pytest.approx(theirs["smd"], rel=TOLERANCE, abs=TOLERANCE)
        assert smd.p_value == pytest.approx(theirs["smd_p_value"], rel=TOLERANCE, abs=1e-300)


def test_the_tests_switch_where_solas_ai_switches() -> None:
    assert adverse_impact_ratio(**as_arrays(CASES[0])).test == "fisher"
    assert adverse_impact_ratio(**as_arrays(CASES[2])).test == "chi_squared"


def as_arrays(case: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        "approved": case["outcome"],
        "protected_weight": weights(case, "P"),
        "reference_weight": weights(case, "R"),
    }


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_intervals_equal_scipy_s(index: int) -> None:
    """The AIR's Katz log interval is scipy's ``relative_risk`` interval; the SMD's is the
    pooled t-test's interval of the mean difference over the population's deviation."""
    case = CASES[index]
    protected = case["groups"]["P"].astype(bool)
    approved = case["outcome"].astype(bool)
    air = adverse_impact_ratio(**as_arrays(case))
    theirs = stats.contingency.relative_risk(
        int(approved[protected].sum()),
        int(protected.sum()),
        int(approved[~protected].sum()),
        int((~protected).sum()),
    )
    interval = theirs.confidence_interval(0.95)
    assert (air.low, air.high) == pytest.approx((interval.low, interval.high), rel=TOLERANCE)
    score = case["score"]
    smd = standardized_mean_difference(score, protected.astype(float), (~protected).astype(float))
    t_interval = stats.ttest_ind(score[protected], score[~protected]).confidence_interval(0.95)
    deviation = score.std(ddof=1)
    assert (smd.low, smd.high) == pytest.approx(
        (t_interval.low / deviation, t_interval.high / deviation), rel=TOLERANCE
    )


SEX = {"name": "sex", "role": "protected", "type": "categorical", "privileged": "M"}


def lender_schema(*columns: dict[str, Any]) -> LoanSchema:
    return LoanSchema.model_validate(
        {
            "name": "lender",
            "columns": [
                {"name": "income", "type": "numeric"},
                *columns,
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )


def test_selection_rates_equal_fairlearn_s_metric_frame() -> None:
    rng = np.random.default_rng(7)
    sex = rng.choice(["M", "F", "X", None], 500, p=[0.5, 0.35, 0.1, 0.05])
    frame = pd.DataFrame({"sex": sex})
    probability = rng.beta(2, 6, 500)
    labels = rng.integers(0, 2, 500)
    groups = attribute_groups(lender_schema(SEX), frame, "sex")
    figures = attribute_fairness(groups, probability, threshold=0.3, labels=labels)
    known = pd.notna(sex)
    theirs = MetricFrame(
        metrics=selection_rate,
        y_true=labels[known],
        y_pred=(probability <= 0.3)[known].astype(int),
        sensitive_features=sex[known],
    ).by_group
    ours = {g.group: g.approval_rate for g in [figures.reference, *figures.groups]}
    assert ours == pytest.approx({"M": theirs["M"], "F": theirs["F"], "X": theirs["X"]}, abs=1e-12)


def planted(seed: int, protected_rate: float) -> Any:
    """1,000 loans per group of ``sex``, approved with probability 0.70 (M) and
    ``protected_rate`` (F): PDs below the 0.5 threshold for approvals, above for refusals."""
    rng = np.random.default_rng(seed)
    sex = np.repeat(["M", "F"], 1000)
    approved = rng.random(2000) < np.where(sex == "F", protected_rate, 0.70)
    probability = np.where(approved, rng.uniform(0.01, 0.5, 2000), rng.uniform(0.51, 0.99, 2000))
    groups = attribute_groups(lender_schema(SEX), pd.DataFrame({"sex": sex}), "sex")
    (female,) = attribute_fairness(groups, probability, threshold=0.5).groups
    assert female.air is not None
    return female.air


def test_a_planted_disparity_is_flagged_and_its_absence_is_not() -> None:
    """docs/fairness.md: an approval rate of 0.49 against 0.70 (AIR 0.70) is flagged by the
    four-fifths rule and the test on every one of 20 draws; equal rates are never flagged by
    the four-fifths rule, and by the test on about 5% of draws (at most 3 of 20 here)."""
    unfair = [planted(seed, 0.49) for seed in range(20)]
    assert all(r.four_fifths and r.significant for r in unfair)
    fair = [planted(seed, 0.70) for seed in range(20, 40)]
    assert not any(r.four_fifths for r in fair)
    assert sum(r.significant for r in fair) <= 3


def test_undefined_figures_are_none_never_a_division_by_zero() -> None:
    approved = np.array([0, 0, 1, 1])
    none_approved = adverse_impact_ratio(approved, np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1]))
    assert none_approved.air == 0 and none_approved.low is None and none_approved.four_fifths
    no_reference = adverse_impact_ratio(approved, np.array([0, 0, 1, 1]), np.zeros(4))
    assert no_reference.air is None and no_reference.p_value is None
    assert not no_reference.four_fifths and not no_reference.significant
    everyone = adverse_impact_ratio(np.ones(4), np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1]))
    assert (everyone.air, everyone.low, everyone.high, everyone.p_value) == (1, 1, 1, 1)
    flat = standardized_mean_difference(np.ones(4), np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1]))
    assert flat.smd is None and flat.protected_mean == 1.0


@pytest.mark.parametrize(
    ("approved", "protected", "reference", "message"),
    [
        ([1, 0], [1, 0, 0], [0, 1], "protected_weight"),
        ([1, 0], [1.5, 0], [0, 1], "probabilities in \\[0, 1\\]"),
        ([1, 0], [np.nan, 0], [0, 1], "probabilities in \\[0, 1\\]"),
        ([2, 0], [1, 0], [0, 1], "approved"),
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(
    approved: list[float], protected: list[float], reference: list[float], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        adverse_impact_ratio(np.array(approved), np.array(protected), np.array(reference))
