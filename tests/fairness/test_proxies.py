"""Proxy probabilities through training: declared in the schema, carried with the data, never
features, measured as weights in the report and shown on the card (docs/fairness.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loanrisk.data.process import process_dataset
from loanrisk.registry import ModelRegistry
from loanrisk.reporting.card import model_card
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training


def proxy(name: str, group: str, *, reference: bool = False) -> dict[str, object]:
    return {
        "name": name,
        "role": "protected",
        "type": "numeric",
        "proxy": {"attribute": "race", "group": group, "reference": reference},
    }


def test_proxy_probabilities_are_weights_in_the_report_never_features() -> None:
    rng = np.random.default_rng(0)
    black = rng.beta(0.5, 0.5, 2_000)
    income = rng.normal(50, 10, 2_000) - 5 * black
    bad = (rng.random(2_000) < 1 / (1 + np.exp((income - 40) / 5))).astype(int)
    frame = pd.DataFrame({"income": income, "p_white": 1 - black, "p_black": black, "bad": bad})
    schema = LoanSchema.model_validate(
        {
            "name": "lender",
            "columns": [
                {"name": "income", "type": "numeric"},
                proxy("p_white", "white", reference=True),
                proxy("p_black", "black"),
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )
    storage = MemoryStorage()
    process_dataset(validate_frame(frame, schema=schema), storage, source="x", schema=schema)
    run_training(TrainingRequest(rounds=10, threshold=0.3), storage, nthread=1)
    model = ModelRegistry(storage).load("loan-default", 1)
    assert tuple(model.spec.input_columns) == ("income",)
    report = model.report
    assert report is not None and report.fairness_not_assessed is None
    race = report.fairness_measures["race"]
    (group,) = race.groups
    assert (race.kind, race.reference.group, group.group) == ("proxy", "white", "black")
    assert race.reference.loans + group.loans == report.rows  # the weights sum to one a loan
    assert group.air is not None and group.air.air is not None and group.air.air < 1
    card = model_card(ModelRegistry(storage), "loan-default", 1, Settings(storage="memory://x"))
    assert "membership probabilities as weights" in card
