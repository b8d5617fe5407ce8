"""Every scored loan carries its score in points of the version's scaling: JSON and CSV
results, frames (batch jobs), OIP outputs, the prediction log and MLflow's columns follow
``scaling.score_of(probability)`` exactly; the scaling is recorded with the version and set
at training; a version published before scalings were recorded scores with the default; each
reason carries the points it cost, and over all attributes the points add up to the score."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from loanrisk.cli.train import scaling_options
from loanrisk.contracts import TrainingOptions
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.explain import attribute_contributions
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log.reader import read_window
from loanrisk.registry import ModelRegistry
from loanrisk.registry.models import SCALING_FILE
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling, ScalingOptions
from loanrisk.reporting.card import model_card
from loanrisk.requests import training_request
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.service.routes.models import TrainBody
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import oip_inputs
from tests.monitoring.logged import wait_for_loans

#: How far (points) float32 TreeSHAP sums may be from the exact score: XGBoost adds its
#: contributions in single precision.
TOLERANCE = 1e-2
#: A bank's own scaling: 500 points at 20:1, 40 points to double the odds.
SCALING = Scaling(points=500, odds=20, pdo=40)
LOANS = generate_sample(120, seed=31).drop(columns=["loan_status"]).dropna().head(60)
LOANS.insert(0, "id", [f"P-{i}" for i in range(len(LOANS))])
RECORDS: list[dict[str, Any]] = (
    LOANS.astype(object).where(LOANS.notna(), None).to_dict(orient="records")
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 trained with the bank's scaling; version 2 the same model published as
    versions were before scalings (no scaling file)."""
    path = tmp_path_factory.mktemp("points")
    storage = FsspecStorage(str(path))
    process_dataset(
        validate_frame(generate_sample(2_000, seed=5), schema=builtin_schema()),
        storage,
        source="sample",
    )
    run_training(
        TrainingRequest(rounds=20, params={"max_depth": 3, "learning_rate": 0.3}, scaling=SCALING),
        storage,
        nthread=1,
    )
    registry = ModelRegistry(storage, "models")
    first = registry.load("loan-default", 1)
    assert first.report is not None
    registry.publish(
        "loan-default",
        booster=first.booster,
        spec=first.spec,
        report=first.report,
        metadata={},
        schema=first.schema,
    )
    return path


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def scored(client: TestClient) -> list[dict[str, Any]]:
    response = client.post("/v1/predict", json={"records": RECORDS, "explain": True})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_the_version_records_its_scaling_beside_its_other_files(root: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    stored = (root / "models/loan-default/versions/1" / SCALING_FILE).read_bytes()
    manifest = registry.manifest("loan-default", 1)
    assert manifest.files[SCALING_FILE].sha256 == hashlib.sha256(stored).hexdigest()
    assert Scaling.model_validate_json(stored) == SCALING
    assert registry.load("loan-default", 1).scaling == SCALING
    assert registry.scaling("loan-default", 1) == SCALING


def test_json_results_carry_the_score_of_their_pd_in_the_versions_scaling(
    scored: list[dict[str, Any]],
) -> None:
    assert all(type(r["score"]) is int for r in scored)
    assert [r["score"] for r in scored] == [SCALING.score_of(r["probability"]) for r in scored]
    # a custom scaling, not the default: the scores differ
    assert [r["score"] for r in scored] != [
        DEFAULT_SCALING.score_of(r["probability"]) for r in scored
    ]
    assert len({r["score"] for r in scored}) > 10


def test_csv_results_carry_a_score_column(client: TestClient, scored: list[dict[str, Any]]) -> None:
    response = client.post(
        "/v1/predict?id_column=id&explain=true",
        content=LOANS.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    assert list(table.columns[:7]) == [
        "row",
        "id",
        "probability",
        "label",
        "band",
        "grade",
        "score",
    ]
    assert table["score"].tolist() == [r["score"] for r in scored]
    assert table["reason_1_points"].tolist() == [r["reasons"][0]["points"] for r in scored]


def test_frames_score_as_records_do(root: Path, scored: list[dict[str, Any]]) -> None:
    """The batch path (CSV and Parquet jobs, Dask partitions, MLflow) scores frames."""
    scorer = Scorer(ModelRegistry(FsspecStorage(str(root)), "models").load("loan-default", 1))
    frame, _ = scorer.score_frame(LOANS.drop(columns=["id"]))
    assert frame["score"].dtype == np.int64
    assert frame["score"].tolist() == [SCALING.score_of(p) for p in frame["probability"]]
    assert frame["score"].tolist() == [r["score"] for r in scored]
    many = generate_sample(5_000, seed=8).drop(columns=["loan_status"])
    results, _ = scorer.score_frame(many, on_error="skip")
    assert results["score"].tolist() == [SCALING.score_of(p) for p in results["probability"]]


def test_oip_answers_a_score_tensor_by_default(
    client: TestClient, scored: list[dict[str, Any]]
) -> None:
    response = client.post("/v2/models/loan-default/infer", json={"inputs": oip_inputs(RECORDS)})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert (outputs["score"]["datatype"], outputs["score"]["shape"]) == ("INT64", [len(RECORDS)])
    assert outputs["score"]["data"] == [r["score"] for r in scored]
    meta = client.get("/v2/models/loan-default").json()
    assert {"name": "score", "datatype": "INT64", "shape": [-1]} in meta["outputs"]


def test_the_prediction_log_records_each_loans_score(
    root: Path, client: TestClient, scored: list[dict[str, Any]]
) -> None:
    rows = wait_for_loans(FsspecStorage(str(root)), [r["id"] for r in RECORDS])
    assert len(rows) >= len(RECORDS)
    assert rows["score"].notna().all()
    assert rows["score"].astype(int).tolist() == [SCALING.score_of(p) for p in rows["probability"]]


def test_log_files_written_before_scores_read_with_a_null_score() -> None:
    storage = MemoryStorage()
    before = pa.schema([f for f in COLUMNS if f.name != "score"])
    row = {"time": datetime(2026, 11, 2, tzinfo=UTC), "model": "m", "version": 1}
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist([{**row, "probability": 0.2, "grade": "A"}], before), buffer
    )
    storage.write_bytes("log/model=m/day=2026-11-02/old.parquet", buffer.getvalue())
    window = read_window(storage, "log", model="m")
    assert window.problems == [] and window.rows == 1
    assert window.frame["score"].isna().all() and window.frame["grade"].tolist() == ["A"]


def test_a_version_published_before_scalings_scores_with_the_default(root: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    assert SCALING_FILE not in registry.manifest("loan-default", 2).files
    old = registry.load("loan-default", 2)
    assert old.scaling == DEFAULT_SCALING == registry.scaling("loan-default", 2)
    scorer = Scorer(old)
    results = scorer.score_records(RECORDS).results
    assert [r.score for r in results] == [DEFAULT_SCALING.score_of(r.probability) for r in results]
    assert scorer.describe().scaling == DEFAULT_SCALING


@pytest.mark.parametrize("scaling", [DEFAULT_SCALING, SCALING, Scaling(points=0, odds=1e9, pdo=1)])
def test_the_per_loan_scorer_gives_score_of_exactly(scaling: Scaling) -> None:
    """The scorer's per-loan function (constants bound once) and the arrays' path agree with
    ``score_of`` on every PD, the clipped ends and numpy scalars included."""
    rng = np.random.default_rng(3)
    pds = np.concatenate([rng.uniform(size=20_000), rng.uniform(size=20_000) ** 8, [0, 1, 1e-13]])
    fast = scaling.scorer()
    expected = [scaling.score_of(p) for p in pds.tolist()]
    assert [fast(p) for p in pds.tolist()] == expected
    assert [fast(p) for p in pds[:1000]] == expected[:1000]  # numpy float64 scalars
    assert scaling.scores_of(pds).tolist() == expected


# -- per-attribute points ----------------------------------------------------------------------


def test_each_reason_carries_the_points_it_cost(scored: list[dict[str, Any]]) -> None:
    reasons = [x for r in scored for x in r["reasons"]]
    assert reasons
    for reason in reasons:
        # the contribution is itself rounded to 6 decimals: the points agree to 2 decimals
        exact = -SCALING.factor * reason["contribution"]
        assert abs(reason["points"] - exact) <= 0.005 + SCALING.factor * 5e-7 + 1e-9
        assert reason["points"] < 0  # a reason raised the risk: it cost points


def test_base_points_and_every_attributes_points_sum_to_the_exact_score(root: Path) -> None:
    """docs/scorecard.md: base points (offset - factor * bias) + the points of every
    attribute = the exact score before rounding, loan by loan (a version without
    calibration)."""
    model = ModelRegistry(FsspecStorage(str(root)), "models").load("loan-default", 1)
    assert model.calibration is None
    loans = generate_sample(500, seed=12).drop(columns=["loan_status"])
    results, _ = Scorer(model).score_frame(loans)
    valid = validate_frame(loans, schema=model.schema, mode="score").frame
    features = FeatureTransformer(model.spec).transform(valid, dtype=np.float32)
    _, by_attribute, bias = attribute_contributions(model.booster, model.spec, features)
    base = SCALING.offset + SCALING.points_of_log_odds(bias)
    total = base + SCALING.points_of_log_odds(by_attribute).sum(axis=1)
    exact = SCALING.exact_scores(results["probability"].to_numpy())
    np.testing.assert_allclose(total, exact, rtol=0, atol=TOLERANCE)
    assert (np.abs(results["score"].to_numpy() - total) <= 0.5 + TOLERANCE).all()


# -- the training request: one scaling whichever front end gave it ----------------------------


def build(root: Path, options: TrainingOptions) -> TrainingRequest:
    return training_request(
        options,
        Settings(storage=str(root)),
        FsspecStorage(str(root)),
        model_name="loan-default",
        model_directory="models",
    )


def test_the_cli_options_and_the_api_body_build_the_same_request(root: Path) -> None:
    by_cli = build(root, TrainingOptions(scaling=scaling_options(points=500, odds=20, pdo=40)))
    body = TrainBody.model_validate_json(json.dumps({"scaling": SCALING.model_dump()}))
    by_api = build(root, body)
    assert by_cli.scaling == by_api.scaling == SCALING
    assert by_cli.model_dump(mode="json") == by_api.model_dump(mode="json")
    assert scaling_options(points=None, odds=None, pdo=None) is None


def test_a_training_takes_its_parents_scaling_for_each_field_not_given(root: Path) -> None:
    assert build(root, TrainingOptions()).scaling == DEFAULT_SCALING
    assert build(root, TrainingOptions(continue_from="1")).scaling == SCALING
    assert build(root, TrainingOptions(continue_from="2")).scaling == DEFAULT_SCALING
    only_pdo = ScalingOptions(pdo=25)
    assert build(root, TrainingOptions(continue_from="1", scaling=only_pdo)).scaling == Scaling(
        points=500, odds=20, pdo=25
    )
    assert build(root, TrainingOptions(scaling=only_pdo)).scaling == Scaling(pdo=25)


@pytest.mark.parametrize(
    ("scaling", "field"),
    [({"pdo": 0}, "pdo"), ({"odds": -1}, "odds"), ({"points": "lots"}, "points")],
)
def test_the_api_refuses_a_bad_scaling_naming_its_field(
    client: TestClient, scaling: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/models/loan-default/versions", json={"scaling": scaling})
    assert response.status_code == 422, response.text
    assert f"scaling.{field}" in json.dumps(response.json())


def test_the_cli_refuses_a_bad_scaling_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        scaling_options(points=None, odds=0.0, pdo=None)
    assert raised.value.details == {"field": "scaling.odds"}
    loanrisk = shutil.which("loanrisk", path=os.path.dirname(sys.executable))
    assert loanrisk
    refused = subprocess.run(
        [loanrisk, "train", "--storage", str(tmp_path), "--pdo", "-20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert refused.returncode == 2, refused.stderr
    assert "--pdo -20.0: Input should be greater than 0" in refused.stderr


def test_the_card_and_the_version_page_show_the_scaling(root: Path, client: TestClient) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    card = model_card(registry, "loan-default", 1, Settings(storage=str(root)))
    assert 'id="points">Points' in card
    assert "500 points at good:bad odds of 20 to 1, 40 points to double the odds" in card
    assert f"<td>1.0%</td><td>{SCALING.score_of(0.01)}</td>" in card
    page = client.get("/console/models/loan-default/versions/1")
    assert page.status_code == 200, page.text
    assert "<h2>Points</h2>" in page.text and "500 points at good:bad odds of 20" in page.text
    old = model_card(registry, "loan-default", 2, Settings(storage=str(root)))
    assert "600 points at good:bad odds of 50 to 1" in old
    assert "scored with the default scaling" in old
