"""Issue 29's "Done when" on the public dataset, age a rule-defined protected attribute (25 or
older the reference group): the training report's AIR and SMD equal solas-ai's on the test
split; the card and the console show them; a window of the prediction log gives the same
figures through ``GET /v1/models/{name}/fairness``, ``loanrisk monitor fairness`` and the
``loanrisk_air`` gauge, with calibration and AUC per group from the outcomes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.fairness.groups import attribute_groups
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.scorer import Scorer
from loanrisk.interop.mlflow_run import report_metrics
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.registry import ModelRegistry
from loanrisk.reporting.card import model_card
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.schema.validate import Validated
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from tests.builtin import LABEL
from tests.fairness.conftest import Solas, solas_case
from tests.monitoring.logged import wait_for_loans
from tests.monitoring.test_backtest_window import post_outcomes
from tests.monitoring.test_drift import as_records
from tests.test_cli import run

AGE = "person_age"
LOANS = 6_000
SCORED = 2_000
TOLERANCE = 1e-9


def age_protected() -> LoanSchema:
    """The built-in schema with age protected (never a feature), 25 or older privileged."""
    doc = builtin_schema().model_dump(exclude_none=True)
    for column in doc["columns"]:
        if column["name"] == AGE:
            for field in ("preprocess", "risk", "reason"):
                column.pop(field, None)
            column.update(role="protected", privileged={"min": 25})
    return LoanSchema.model_validate({**doc, "name": "credit-risk-age"})


@dataclass(frozen=True)
class Trained:
    root: Path
    storage: FsspecStorage
    report: Any
    test: pd.DataFrame
    probability: np.ndarray


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, real_loans: Validated) -> Trained:
    root = tmp_path_factory.mktemp("fairness") / "store"
    storage = FsspecStorage(str(root))
    schema = age_protected()
    sample = real_loans.frame.sample(LOANS, random_state=3)
    dataset = process_dataset(
        validate_frame(sample, schema=schema), storage, source="public", schema=schema
    )
    from loanrisk.training.job import TrainingRequest, run_training

    run_training(TrainingRequest(rounds=30, calibration="none"), storage, nthread=1)
    model = ModelRegistry(storage).load("loan-default", 1)
    test = DatasetCatalogue(storage, "data").load_split(dataset.id, "test")
    # The test split's PDs as training computed them (the booster on the encoded rows).
    features = FeatureTransformer(model.spec).transform(test, dtype=np.float32)
    booster = model.require_booster("the test")
    probability = np.asarray(booster.predict(xgb.DMatrix(features, nthread=1)))
    return Trained(root, storage, model.report, test, probability)


def test_the_report_s_air_and_smd_equal_solas_ai_s(trained: Trained, solas: Solas) -> None:
    measures = trained.report.fairness_measures[AGE]
    assert measures.kind == "rule" and measures.reference.group == "at least 25"
    (young,) = measures.groups
    assert young.group == "not at least 25" and young.loans > 30
    groups = attribute_groups(age_protected(), trained.test, AGE)
    approved = trained.probability <= trained.report.threshold
    (theirs,) = solas([solas_case(groups, approved, trained.probability)])
    figures = theirs[young.group]
    assert young.air.air == pytest.approx(figures["air"], rel=TOLERANCE)
    assert young.air.p_value == pytest.approx(figures["air_p_value"], rel=TOLERANCE)
    assert 100 * young.smd.smd == pytest.approx(figures["smd"], rel=TOLERANCE)
    assert young.smd.p_value == pytest.approx(figures["smd_p_value"], rel=TOLERANCE)
    assert young.air.low < young.air.air < young.air.high
    assert young.smd.low < young.smd.smd < young.smd.high
    assert young.outcomes is not None and 0.5 < young.outcomes.auc < 1  # the test split's
    logged = report_metrics(trained.report)  # MLflow's names: no character it refuses
    assert logged[f"air.{AGE}.not at least 25"] == young.air.air


def test_the_card_and_the_console_show_the_measures(trained: Trained) -> None:
    registry = ModelRegistry(trained.storage)
    card = model_card(registry, "loan-default", 1, Settings(storage=str(trained.root)))
    assert f'id="fairness-{AGE}"' in card and "not at least 25" in card
    settings = Settings(storage=str(trained.root), nthread=1, drift_interval=0)
    with TestClient(create_app(settings)) as client:  # no API keys: the console is open
        page = client.get("/console/models/loan-default/versions/1")
    assert page.status_code == 200, page.text
    assert f'id="fairness-{AGE}"' in page.text


@pytest.fixture(scope="module")
def logged(trained: Trained, real_loans: Validated) -> Iterator[TestClient]:
    """SCORED loans (age sent with them) scored, logged and given outcomes drawn from their
    PDs; the app serving the model."""
    loans = real_loans.frame.sample(SCORED, random_state=4).drop(columns=[LABEL])
    records = [{**r, "id": f"L{i}"} for i, r in enumerate(as_records(loans))]
    scorer = Scorer(ModelRegistry(trained.storage).load("loan-default", "production"))
    log = PredictionLog(trained.storage, "prediction-log", flush_seconds=60)
    log.scored_records(scorer, records, scorer.score_records(records), source="test")
    log.close()
    rows = wait_for_loans(trained.storage, [r["id"] for r in records])
    settings = Settings(storage=str(trained.root), nthread=1, drift_interval=0)
    with TestClient(create_app(settings)) as client:
        drawn = np.random.default_rng(5).random(len(rows)) < rows["probability"].to_numpy()
        post_outcomes(client, rows, drawn)
        yield client


def test_a_window_s_figures_are_the_logged_decisions_and_outcomes(
    trained: Trained, logged: TestClient, solas: Solas
) -> None:
    answer = logged.get("/v1/models/loan-default/fairness")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["loans"] == report["scored"] == SCORED and report["with_outcome"] == SCORED
    (age,) = report["attributes"]
    (young,) = age["groups"]
    assert young["outcomes"]["loans"] == young["loans"] and young["outcomes"]["auc"] is not None
    rows = wait_for_loans(trained.storage, [])
    frame = pd.DataFrame.from_records([json.loads(t) for t in rows["features"]])
    groups = attribute_groups(age_protected(), frame, AGE)
    probability = rows["probability"].to_numpy()
    (theirs,) = solas([solas_case(groups, ~rows["label"].to_numpy(), probability)])
    assert young["air"]["air"] == pytest.approx(theirs[young["group"]]["air"], rel=TOLERANCE)
    assert 100 * young["smd"]["smd"] == pytest.approx(theirs[young["group"]]["smd"], rel=TOLERANCE)
    metrics = logged.get("/metrics").text
    gauge = f'loanrisk_air{{attribute="{AGE}",group="not at least 25",model="loan-default",'
    assert gauge in metrics
    cli = run(
        "monitor", "fairness", "--attribute", AGE.upper(), "--storage", str(trained.root), "--json"
    )
    assert cli.returncode == 0, cli.stderr  # named as a file's header may spell it
    assert json.loads(cli.stdout)["attributes"] == report["attributes"]
    table = run("monitor", "fairness", "--storage", str(trained.root))
    assert "not at least 25" in table.stdout and "AIR" in table.stdout


def test_an_attribute_without_groups_is_refused_and_one_not_logged_is_said(
    trained: Trained, logged: TestClient
) -> None:
    answer = logged.get("/v1/models/loan-default/fairness", params={"attribute": "loan_intent"})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["field"] == "attribute"
    assert "(declared: person_age)" in answer.json()["error"]["message"]
    empty = {"since": "2000-01-01", "until": "2000-01-02"}
    before = logged.get("/v1/models/loan-default/fairness", params=empty).json()
    assert before["loans"] == 0 and before["attributes"] == []
    (unmeasured,) = before["not_assessed"]
    assert unmeasured["attribute"] == AGE and "not among the loans' columns" in unmeasured["reason"]
    cli = run("monitor", "fairness", "--attribute", "nope", "--storage", str(trained.root))
    assert cli.returncode == 2 and "attribute 'nope'" in cli.stderr
