"""Monotone constraints from the schema's directions of risk: enforced when asked, and checked
on every version (the check must fail where the data has a non-monotone region)."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import Validated
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

DIRECTIONS = {
    "person_income": "decreasing",
    "loan_grade": "increasing",
    "loan_int_rate": "increasing",
    "loan_percent_income": "increasing",
    "cb_person_default_on_file": "increasing",
}


@pytest.fixture(scope="module")
def trained(real_loans: Validated) -> MemoryStorage:
    """The public data; version 1 unconstrained, version 2 monotone."""
    storage = MemoryStorage()
    process_dataset(real_loans, storage, source="public")
    params = {"max_depth": 6, "learning_rate": 0.1}
    run_training(TrainingRequest(rounds=80, params=params), storage, nthread=2)
    run_training(TrainingRequest(rounds=80, params=params, monotone=True), storage, nthread=2)
    return storage


def test_a_monotone_version_holds_every_direction_and_records_its_encoding(
    trained: MemoryStorage,
) -> None:
    registry = ModelRegistry(trained)
    model = registry.load("loan-default", 2)
    check = model.report.to_json()["monotonicity"]
    assert check["enforced"] is True and check["constraints"] == DIRECTIONS
    assert check["holds"] is True
    for name, feature in check["features"].items():
        assert feature["violations"] == 0 and feature["loans"] == 1_000, name
        assert feature["direction"] == DIRECTIONS[name]
    assert check["features"]["loan_grade"]["grid"] == list("ABCDEFG")
    assert len(check["features"]["loan_percent_income"]["grid"]) >= 20
    # Grade and an earlier default are encoded by their declared order, not one-hot.
    ordinal = {c.name: c.categories for c in model.spec.ordinal}
    assert ordinal == {"loan_grade": tuple("ABCDEFG"), "cb_person_default_on_file": ("N", "Y")}
    assert not any(c.name in ordinal for c in model.spec.onehot)
    manifest = model.manifest.model_dump()
    assert manifest["monotone"] == {"enforced": True, "constraints": DIRECTIONS}
    constraints = manifest["params"]["monotone_constraints"]
    assert constraints.count("1") == 5 and constraints.count("-1") == 1


def test_served_scores_never_move_against_a_declared_direction(trained: MemoryStorage) -> None:
    """Independently of the report: the served scorer (oneDAL where available) along fine
    grids, for several applicants."""
    scorer = Scorer(ModelRegistry(trained).load("loan-default", 2))
    applicants = [
        EXAMPLE_LOAN,
        {**EXAMPLE_LOAN, "person_income": 20_000, "loan_grade": "D"},
        {**EXAMPLE_LOAN, "loan_int_rate": None, "person_emp_length": 1},
    ]
    grids: dict[str, list[object]] = {
        "loan_percent_income": list(np.round(np.linspace(0.0, 0.8, 81), 3)),
        "loan_int_rate": list(np.round(np.linspace(5.0, 23.0, 91), 2)),
        "person_income": list(np.linspace(4_000, 400_000, 100)),
        "loan_grade": list("ABCDEFG"),
        "cb_person_default_on_file": ["N", "Y"],
    }
    for applicant in applicants:
        for name, grid in grids.items():
            scored = scorer.score_records([{**applicant, name: v} for v in grid])
            pd_curve = np.array([r.probability for r in scored.results])
            steps = np.diff(pd_curve) * (1 if DIRECTIONS[name] == "increasing" else -1)
            assert steps.min() >= -1e-6, (name, applicant)


def test_without_constraints_the_check_finds_the_data_s_non_monotone_regions(
    trained: MemoryStorage,
) -> None:
    check = ModelRegistry(trained).load("loan-default", 1).report.to_json()["monotonicity"]
    assert check["enforced"] is False and check["holds"] is False
    broken = [n for n, f in check["features"].items() if not f["holds"]]
    assert "loan_percent_income" in broken and "person_income" in broken
    assert all(check["features"][n]["max_wrong_step"] > 1e-3 for n in broken)


def test_continuing_keeps_the_constraints_and_refuses_a_one_hot_parent(
    trained: MemoryStorage,
) -> None:
    continued = run_training(
        TrainingRequest(rounds=10, continue_from="2", monotone=True, promote=False),
        trained,
        nthread=2,
    )
    assert continued.report.monotonicity.holds is True
    with pytest.raises(InvalidInput, match="loan_grade"):
        run_training(
            TrainingRequest(rounds=5, continue_from="1", monotone=True), trained, nthread=2
        )
    with pytest.raises(InvalidInput, match="not both"):
        run_training(
            TrainingRequest(rounds=5, monotone=True, params={"monotone_constraints": "(1)"}),
            trained,
            nthread=2,
        )
