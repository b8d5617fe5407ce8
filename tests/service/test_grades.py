"""Every scored loan carries its grade of the version's master scale: JSON and CSV results,
OIP outputs and the prediction log; the scale is recorded with the version; a version
published before scales were recorded serves with the default scale."""

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

from loanrisk.cli.train import master_scale_file
from loanrisk.contracts import TrainingOptions
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log.reader import read_window
from loanrisk.registry import ModelRegistry
from loanrisk.registry.masterscale import DEFAULT_SCALE, MasterScale, parse_master_scale
from loanrisk.registry.models import MASTER_SCALE_FILE
from loanrisk.reporting.card import model_card
from loanrisk.requests import training_request
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.service.routes.models import TrainBody
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.validation import Backtest
from tests.builtin import oip_inputs
from tests.monitoring.logged import wait_for_loans

#: A bank's own scale, as its file gives it (percentages).
SCALE = parse_master_scale(
    b"name,lower,upper\nA,0%,10%\nB,10%,30%\nC,30%,60%\nD,60%,100%\n", source="bank.csv"
)
#: Loans with every value (an OIP FP64 tensor holds no null).
LOANS = generate_sample(100, seed=29).drop(columns=["loan_status"]).dropna().head(60)
LOANS.insert(0, "id", [f"L-{i}" for i in range(len(LOANS))])
RECORDS: list[dict[str, Any]] = (
    LOANS.astype(object).where(LOANS.notna(), None).to_dict(orient="records")
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 trained with the bank's scale; version 2 the same model published as
    versions were before scales (no scale file)."""
    path = tmp_path_factory.mktemp("grades")
    storage = FsspecStorage(str(path))
    schema = builtin_schema()
    process_dataset(
        validate_frame(generate_sample(2_000, seed=5), schema=schema), storage, source="sample"
    )
    run_training(
        TrainingRequest(
            rounds=20, params={"max_depth": 3, "learning_rate": 0.3}, master_scale=SCALE
        ),
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
        report=first.report.model_copy(update={"master_scale": None, "grades": None}),
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
    response = client.post("/v1/predict", json={"records": RECORDS})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_the_version_records_its_scale_beside_its_other_files(root: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    manifest = registry.manifest("loan-default", 1)
    stored = (root / "models/loan-default/versions/1" / MASTER_SCALE_FILE).read_bytes()
    assert manifest.files[MASTER_SCALE_FILE].sha256 == hashlib.sha256(stored).hexdigest()
    assert MasterScale.model_validate_json(stored) == SCALE
    assert registry.load("loan-default", 1).master_scale == SCALE
    report = registry.report("loan-default", 1)
    assert report.master_scale == "bank.csv"
    assert report.grades is not None
    assert [g.grade for g in report.grades] == ["A", "B", "C", "D"]
    assert sum(g.loans for g in report.grades) == report.rows
    assert sum(g.share for g in report.grades) == pytest.approx(1.0)


def test_json_results_carry_the_grade_of_their_pd(scored: list[dict[str, Any]]) -> None:
    assert {r["grade"] for r in scored} <= set(SCALE.names)
    assert [r["grade"] for r in scored] == [SCALE.grade_of(r["probability"]) for r in scored]
    assert len({r["grade"] for r in scored}) > 1  # the loans span grades: a real check


def test_csv_results_carry_a_grade_column(client: TestClient, scored: list[dict[str, Any]]) -> None:
    response = client.post(
        "/v1/predict?id_column=id",
        content=LOANS.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text))
    assert list(table.columns) == ["row", "id", "probability", "label", "band", "grade", "score"]
    assert table["grade"].tolist() == [r["grade"] for r in scored]


def test_oip_answers_a_grade_tensor_by_default(
    client: TestClient, scored: list[dict[str, Any]]
) -> None:
    response = client.post("/v2/models/loan-default/infer", json={"inputs": oip_inputs(RECORDS)})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert (outputs["grade"]["datatype"], outputs["grade"]["shape"]) == ("BYTES", [len(RECORDS)])
    assert outputs["grade"]["data"] == [r["grade"] for r in scored]
    meta = client.get("/v2/models/loan-default").json()
    assert {"name": "grade", "datatype": "BYTES", "shape": [-1]} in meta["outputs"]


def test_the_prediction_log_records_each_loans_grade(
    root: Path, client: TestClient, scored: list[dict[str, Any]]
) -> None:
    rows = wait_for_loans(FsspecStorage(str(root)), [r["id"] for r in RECORDS])
    assert len(rows) >= len(RECORDS)
    assert rows["grade"].notna().all()
    expected = [SCALE.grade_of(p) for p in rows["probability"]]
    assert rows["grade"].tolist() == expected


def test_a_version_published_before_scales_serves_with_the_default_scale(root: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    assert MASTER_SCALE_FILE not in registry.manifest("loan-default", 2).files
    old = registry.load("loan-default", 2)
    assert old.master_scale == DEFAULT_SCALE
    assert registry.master_scale("loan-default", 2) == DEFAULT_SCALE
    scorer = Scorer(old)
    results = scorer.score_records(RECORDS).results
    assert [r.grade for r in results] == [DEFAULT_SCALE.grade_of(r.probability) for r in results]
    frame, _ = scorer.score_frame(LOANS.drop(columns=["id"]))
    assert frame["grade"].tolist() == [r.grade for r in results]
    assert scorer.describe().master_scale.name == DEFAULT_SCALE.name
    assert np.isin(frame["grade"], DEFAULT_SCALE.names).all()


# -- the training request: one scale whichever front end gave it -----------------------------

#: The bank's scale as a v1 API client sends it in the training body.
BODY_SCALE = {
    "name": "bank.csv",
    "grades": [
        {"name": "A", "lower": 0.0, "upper": 0.1},
        {"name": "B", "lower": 0.1, "upper": 0.3},
        {"name": "C", "lower": 0.3, "upper": 0.6},
        {"name": "D", "lower": 0.6, "upper": 1.0},
    ],
}


def build(root: Path, options: TrainingOptions) -> TrainingRequest:
    settings = Settings(storage=str(root))
    return training_request(
        options,
        settings,
        FsspecStorage(str(root)),
        model_name="loan-default",
        model_directory="models",
    )


def test_the_cli_file_and_the_api_body_build_the_same_request(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "bank.csv"
    path.write_text("name,lower,upper\nA,0%,10%\nB,10%,30%\nC,30%,60%\nD,60%,100%\n")
    by_cli = build(root, TrainingOptions(master_scale=master_scale_file(path)))
    by_api = build(root, TrainBody.model_validate_json(json.dumps({"master_scale": BODY_SCALE})))
    assert by_cli.master_scale == by_api.master_scale == SCALE
    assert by_cli.model_dump(mode="json") == by_api.model_dump(mode="json")


def test_a_training_not_given_a_scale_takes_its_parents_else_the_default(root: Path) -> None:
    assert build(root, TrainingOptions()).master_scale == DEFAULT_SCALE
    assert build(root, TrainingOptions(continue_from="1")).master_scale == SCALE
    assert build(root, TrainingOptions(continue_from="2")).master_scale == DEFAULT_SCALE
    given = TrainingOptions(continue_from="1", master_scale=DEFAULT_SCALE)
    assert build(root, given).master_scale == DEFAULT_SCALE


def test_the_api_refuses_a_scale_that_is_not_one_naming_the_row_and_field(
    client: TestClient,
) -> None:
    bad = {**BODY_SCALE, "grades": [*BODY_SCALE["grades"][:2], BODY_SCALE["grades"][3]]}
    response = client.post("/v1/models/loan-default/versions", json={"master_scale": bad})
    assert response.status_code == 422, response.text
    error = json.dumps(response.json())
    assert "master_scale" in error and "row 3 (grade 'D'), lower: 0.6, where row 2 ends" in error


def test_the_cli_refuses_a_bad_scale_file_naming_the_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bank.csv"
    path.write_text("name,lower,upper\nA,0,0.1\nB,0.1,lots\n")
    loanrisk = shutil.which("loanrisk", path=os.path.dirname(sys.executable))
    assert loanrisk
    refused = subprocess.run(
        [loanrisk, "train", "--storage", str(tmp_path), "--master-scale", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert refused.returncode == 2, refused.stderr
    assert "bank.csv: row 2 (grade 'B'), upper: 'lots' is not a PD" in refused.stderr


def test_log_files_written_before_grades_read_with_a_null_grade() -> None:
    storage = MemoryStorage()
    before = pa.schema([f for f in COLUMNS if f.name not in ("grade", "score")])
    row = {"time": datetime(2026, 11, 2, tzinfo=UTC), "model": "m", "version": 1}
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{**row, "probability": 0.2, "band": "A"}], before), buffer)
    storage.write_bytes("log/model=m/day=2026-11-02/old.parquet", buffer.getvalue())
    window = read_window(storage, "log", model="m")
    assert window.problems == [] and window.rows == 1
    assert window.frame["grade"].isna().all() and window.frame["band"].tolist() == ["A"]


def test_the_card_and_the_version_page_show_the_grades(root: Path, client: TestClient) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    card = model_card(registry, "loan-default", 1, Settings(storage=str(root)))
    report = registry.report("loan-default", 1)
    assert report.grades is not None
    assert 'id="grades">Master scale' in card and "bank.csv" in card
    for grade in report.grades:
        assert f'<th scope="row">{grade.grade}</th>' in card
    page = client.get("/console/models/loan-default/versions/1")
    assert page.status_code == 200, page.text
    assert "<h2>Master scale</h2>" in page.text and "held-out loans" in page.text
    old = model_card(registry, "loan-default", 2, Settings(storage=str(root)))
    assert "graded with the default scale" in old


def test_the_development_backtest_is_in_the_report_and_the_card(root: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    report = registry.report("loan-default", 1)
    assert report.backtest is not None and report.grades is not None
    result = Backtest.model_validate(report.backtest)
    assert [g.grade for g in result.grades] == list(SCALE.names)
    assert [(g.loans, g.defaults) for g in result.grades] == [
        (g.loans, g.defaults) for g in report.grades
    ]
    assert result.portfolio.loans == report.rows and result.portfolio.auc.current is not None
    card = model_card(registry, "loan-default", 1, Settings(storage=str(root)))
    assert sum(g.loans > 0 for g in result.grades) >= 3
    for grade in result.grades:
        assert (grade.light in ("green", "yellow", "red")) == (grade.loans > 0)
        if grade.light is not None:
            assert f'<td class="text light-{grade.light}">{grade.light}</td>' in card
    assert "Hosmer-Lemeshow over the grades" in card
