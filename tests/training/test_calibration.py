"""Calibration: fitted on held-out training rows, stored as JSON in the version, and applied by
every backend and route, so the PD a client sees is the calibrated one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.registry.calibration import (
    MIN_HELD_OUT,
    Calibration,
    SizeBound,
    check_calibration_size,
)
from loanrisk.schema import Validated, validate_frame
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, check_request, run_training
from tests.builtin import LABEL

#: Weighting defaults 8 to 1 inflates every PD: a deliberately miscalibrated model.
SKEWED = {"max_depth": 5, "learning_rate": 0.1, "scale_pos_weight": 8}


@pytest.fixture(scope="module")
def trained(real_loans: Validated) -> MemoryStorage:
    """Versions 1-3 of the skewed model: uncalibrated, isotonic, Platt."""
    storage = MemoryStorage()
    process_dataset(real_loans, storage, source="public")
    for method in ("none", "isotonic", "platt"):
        run_training(
            TrainingRequest(rounds=60, params=SKEWED, calibration=method), storage, nthread=2
        )
    return storage


@pytest.mark.parametrize(("version", "method"), [(2, "isotonic"), (3, "platt")])
def test_calibration_repairs_a_miscalibrated_model(
    trained: MemoryStorage, version: int, method: str
) -> None:
    registry = ModelRegistry(trained)
    plain = registry.report("loan-default", 1).to_json()
    report = registry.report("loan-default", version).to_json()
    step = report["calibration_step"]
    assert step["method"] == method
    assert step["fitted"]["rows"] == pytest.approx(0.1 * 24_435, abs=2)  # 10% of the train split
    before, after = step["before"], step["after"]
    assert after["brier"] < before["brier"] - 0.01 and after["ece"] < before["ece"] / 2
    assert report["brier"] == after["brier"] and report["ece"] == after["ece"]
    assert plain["brier"] > report["brier"] + 0.01 and "calibration_step" not in plain
    assert len(before["calibration"]) == len(after["calibration"]) == 10
    manifest = registry.manifest("loan-default", version)
    assert "calibration.json" in manifest.files
    assert manifest.model_dump()["calibration"]["method"] == method


def test_every_backend_and_route_serves_the_calibrated_pd(
    trained: MemoryStorage, real_loans: Validated
) -> None:
    model = ModelRegistry(trained).load("loan-default", 2)
    assert model.calibration is not None and model.calibration.method == "isotonic"
    frame = real_loans.frame.head(300).drop(columns=[LABEL])
    features = FeatureTransformer(model.spec).transform(frame, dtype=np.float32)
    raw = model.booster.predict(xgb.DMatrix(features))
    expected = model.calibration.apply(raw)
    assert np.abs(expected - raw).max() > 0.2  # the calibration matters for these loans
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for scorer in (Scorer(model, backend="auto"), Scorer(model, backend="xgboost")):
        scored = [r.probability for r in scorer.score_records(records).results]
        assert np.abs(np.array(scored) - expected).max() <= 1e-5, scorer.backend.name
        one = scorer.score_record(records[7]).probability
        assert one == pytest.approx(expected[7], abs=1e-5)
        batch, _ = scorer.score_frame(frame)
        assert np.abs(batch["probability"].to_numpy() - expected).max() <= 1e-5


def test_the_stored_calibration_is_plain_json_and_malformed_ones_are_refused(
    trained: MemoryStorage,
) -> None:
    registry = ModelRegistry(trained)
    text = registry.file("loan-default", 3, "calibration.json")
    assert text is not None
    doc = json.loads(text)
    assert doc["format"] == "loanrisk.calibration" and set(doc) >= {"method", "a", "b"}
    assert Calibration.from_json(text).method == "platt"
    for bad in (
        '{"format": "x"}',
        '{"format": "loanrisk.calibration", "version": 1, '
        '"method": "isotonic", "x": [0.5, 0.1], "y": [0, 1]}',
        "[]",
    ):
        with pytest.raises(InvalidInput):
            Calibration.from_json(bad)


def test_a_held_out_set_too_small_to_help_is_refused_saying_what_it_holds() -> None:
    """The German credit data's case: 1,000 loans, 750 for training (225 defaults), 10% held
    out is 74 loans with 22 defaults, on which isotonic made the Brier score worse."""
    with pytest.raises(InvalidInput) as caught:
        check_calibration_size("isotonic", rows=750, defaults=225, fraction=0.1)
    assert caught.value.message == (
        "isotonic calibration needs at least 1,000 loans and 100 defaults in its held-out set, "
        "and calibration_fraction 0.1 of the 750 training loans holds out 74 loans, 22 of them "
        "defaults: fitted on fewer, calibration made the PD worse on average where it was "
        "measured (docs/training.md, Calibration). Use more training loans (no "
        "calibration_fraction below 0.5 holds out 1,000 loans and 100 defaults), or "
        "calibration platt with a calibration_fraction of 0.22, or calibration none."
    )
    assert caught.value.details == {
        "field": "calibration",
        "method": "isotonic",
        "held_out_rows": 74,
        "held_out_defaults": 22,
        "needed_rows": 1_000,
        "needed_minority": 100,
        "suggested_fraction": None,
    }
    with pytest.raises(InvalidInput) as caught:
        check_calibration_size("platt", rows=750, defaults=225, fraction=0.1)
    assert caught.value.details["field"] == "calibration_fraction"
    assert caught.value.message.endswith("Use a calibration_fraction of 0.22, or calibration none.")
    check_calibration_size("platt", rows=750, defaults=225, fraction=0.22)
    # The rarer class counts: 95% defaults hold out too few repaid loans.
    with pytest.raises(InvalidInput, match="needs at least 50 repaid loans"):
        check_calibration_size("platt", rows=4_000, defaults=3_800, fraction=0.2)
    # Isotonic: both bounds; 2,000 loans with 90 defaults are too few defaults.
    with pytest.raises(InvalidInput, match="holds out 2,000 loans, 90 of them") as caught:
        check_calibration_size("isotonic", rows=20_000, defaults=900, fraction=0.1)
    assert caught.value.details["suggested_fraction"] == 0.12
    assert caught.value.message.endswith("or calibration platt, or calibration none.")
    check_calibration_size("isotonic", rows=10_000, defaults=1_000, fraction=0.1)
    assert MIN_HELD_OUT["platt"] == SizeBound(rows=0, minority=50)


def test_the_training_refuses_it_before_a_job_or_a_tree() -> None:
    storage = MemoryStorage()
    process_dataset(validate_frame(generate_sample(1_000, seed=4)), storage, source="small")
    request = TrainingRequest(rounds=5, calibration="isotonic")
    for attempt in (check_request, lambda r, s: run_training(r, s, nthread=1)):
        with pytest.raises(InvalidInput, match="isotonic calibration needs at least") as caught:
            attempt(request, storage)
        assert caught.value.details["field"] == "calibration"
    assert ModelRegistry(storage).models() == []
    check_request(
        request.model_copy(update={"calibration": "platt", "calibration_fraction": 0.4}), storage
    )
