"""The model card's limitations say how each often-missing column was scored: what the
version's FeatureSpec does with a missing value, never one story for every column; they
advise a search for a less discriminatory model only for a group approved less often than
its reference group; and they name no calibration bin too small to judge."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from loanrisk.data.process import process_dataset
from loanrisk.fairness.measures import adverse_impact_ratio
from loanrisk.fairness.models import AttributeFairness, GroupFigures
from loanrisk.registry import ModelRegistry
from loanrisk.registry.report import CalibrationBin
from loanrisk.reporting.facts import VersionFacts, limitations, version_facts, wilson_interval
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.schema.second import POLICIES, second_loans


def test_each_often_missing_column_is_described_by_its_encoding() -> None:
    schema = LoanSchema.model_validate(POLICIES)
    loans = second_loans(1_500)
    every = np.arange(len(loans))
    loans.loc[every % 10 == 0, "applicant_age"] = None  # median
    loans.loc[every % 10 == 1, "monthly_income"] = None  # power
    loans.loc[every % 12 == 2, "risk_tier"] = None  # ordinal
    loans.loc[every % 10 == 3, "product"] = "lease"  # unknown: missing, one-hot
    loans.loc[every % 50 == 4, "bureau_score"] = None  # scale, 2%: under the 5% named
    storage = MemoryStorage()
    process_dataset(validate_frame(loans, schema=schema), storage, source="policies", schema=schema)
    run_training(TrainingRequest(rounds=5, params={"max_depth": 3}), storage, nthread=1)
    registry = ModelRegistry(storage)
    facts = version_facts(registry, "loan-default", 1)
    (imputed,) = registry.load("loan-default", 1).spec.imputed
    missing = [line for line in limitations(facts) if " was missing in " in line]
    left = "scored as missing (each tree takes the branch it learned for missing values)."
    assert missing == [
        "applicant_age was missing in 10.0% of the raw loans: scored with the training median "
        f"{imputed.median:g} in its place.",
        f"monthly_income was missing in 10.0% of the raw loans: {left}",
        "product was missing in 10.0% of the raw loans: scored as none of its categories "
        "(every one-hot column 0).",
        f"risk_tier was missing in 8.3% of the raw loans: {left}",
    ]
    assert not any("filled with the training median" in line for line in limitations(facts))


@pytest.fixture(scope="module")
def facts() -> VersionFacts:
    """A small XGBoost version's facts, whose report the tests below rewrite."""
    storage = MemoryStorage()
    schema = LoanSchema.model_validate(POLICIES)
    loans = validate_frame(second_loans(600), schema=schema)
    process_dataset(loans, storage, source="policies", schema=schema)
    run_training(TrainingRequest(rounds=3, params={"max_depth": 2}), storage, nthread=1)
    return version_facts(ModelRegistry(storage), "loan-default", 1)


def _with(facts: VersionFacts, **report: object) -> VersionFacts:
    return dataclasses.replace(facts, report=facts.report.model_copy(update=report))


def _group(name: str, approved: int, loans: int, reference: tuple[int, int]) -> GroupFigures:
    decided = np.r_[np.ones(approved), np.zeros(loans - approved)]
    decided = np.r_[decided, np.ones(reference[0]), np.zeros(reference[1] - reference[0])]
    member = np.r_[np.ones(loans), np.zeros(reference[1])]
    air = adverse_impact_ratio(decided, member, 1 - member)
    return GroupFigures(
        group=name, loans=loans, approval_rate=approved / loans, mean_pd=None, air=air
    )


def test_only_groups_approved_less_often_are_flagged_for_a_less_discriminatory_search(
    facts: VersionFacts,
) -> None:
    reference = (1_400, 2_000)  # approved 70%
    groups = [
        _group("F", 3_040, 4_000, reference),  # 76%: significantly more often
        _group("X", 2_640, 4_000, reference),  # 66%: significantly less often
        _group("Y", 2_000, 4_000, reference),  # 50%: below four fifths too
    ]
    assert all(g.air is not None and g.air.significant for g in groups)
    measures = AttributeFairness(
        attribute="sex",
        kind="category",
        threshold=0.5,
        loans=14_000,
        reference=GroupFigures(group="M", loans=2_000, approval_rate=0.7, mean_pd=None),
        groups=groups,
    )
    flagged = [
        line
        for line in limitations(_with(facts, fairness_measures={"sex": measures}))
        if line.startswith("Fair lending")
    ]
    p_x, p_y = (g.air.p_value for g in groups[1:] if g.air is not None)
    advice = "look for a less discriminatory alternative (docs/fairness.md)."
    assert flagged == [
        "Fair lending on 'sex': group 'X' is approved at 0.94 times the rate of 'M' "
        f"(significantly below 1, p = {p_x:.2g}); {advice}",
        "Fair lending on 'sex': group 'Y' is approved at 0.71 times the rate of 'M' "
        f"(below the four-fifths rule; significantly below 1, p = {p_y:.2g}); {advice}",
    ]
    assert [g.air.flags for g in groups if g.air is not None] == [
        ["significant, in favour"],
        ["significant"],
        ["below 4/5", "significant"],
    ]


@pytest.mark.parametrize(
    ("events", "n"), [(0, 1), (1, 1), (1, 3), (5, 10), (137, 373), (0, 500), (500, 500)]
)
def test_the_wilson_interval_is_scipys(events: int, n: int) -> None:
    low, high = wilson_interval(events, n)
    ci = stats.binomtest(events, n).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_a_calibration_bin_too_small_to_judge_is_not_named(facts: VersionFacts) -> None:
    rows = [
        CalibrationBin(bin=[0.8, 0.9], count=1, mean_predicted=0.841, observed_rate=1.0),
        CalibrationBin(bin=[0.7, 0.8], count=10, mean_predicted=0.738, observed_rate=0.5),
        CalibrationBin(bin=[0.4, 0.5], count=373, mean_predicted=0.441, observed_rate=0.367),
        CalibrationBin(bin=[0.1, 0.2], count=5_000, mean_predicted=0.15, observed_rate=0.16),
    ]
    named = [
        line for line in limitations(_with(facts, calibration=rows)) if "miscalibrated" in line
    ]
    assert named == [
        "Probabilities between 0.4 and 0.5 are miscalibrated: predicted 44.1% on average, "
        "observed 36.7% (373 loans). Do not read them as a PD for pricing or provisions "
        "without calibration."
    ]
