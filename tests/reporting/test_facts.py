"""The model card's limitations say how each often-missing column was scored: what the
version's FeatureSpec does with a missing value, never one story for every column."""

from __future__ import annotations

import numpy as np

from loanrisk.data.process import process_dataset
from loanrisk.registry import ModelRegistry
from loanrisk.reporting.facts import limitations, version_facts
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
