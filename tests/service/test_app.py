"""The HTTP service through the real app: health, scoring, errors, hot reload, a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving

LOAN = EXAMPLE_LOAN


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage with a dataset and two model versions (production -> 1)."""
    path = tmp_path_factory.mktemp("service")
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(3_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=20), storage, nthread=1)
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    ModelRegistry(FsspecStorage(str(root))).promote("loan-default", 1)
    settings = Settings(storage=str(root), reload_interval=0.1, max_records=50)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_health_and_readiness_report_the_model(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "live": True}  # OIP reads live
    assert client.get("/v2/health/live").status_code == 200
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["model"]["version"] == 1
    assert ready["model"]["backend"] == "onedal"
    assert client.get("/v2/health/ready").json()["model"]["version"] == 1
    assert client.get("/ping").json() == {
        "Message": "Server is Running",
        "message": "Server is Running",
    }


def test_predict_one_loan_many_loans_and_reasons(client: TestClient) -> None:
    one = client.post("/v1/predict", json=LOAN)
    assert one.status_code == 200
    body = one.json()
    assert body["model"] == {"name": "loan-default", "version": 1, "backend": "onedal"}
    (result,) = body["results"]
    assert 0 < result["probability"] < 1
    assert result["label"] == (result["probability"] > 0.5)
    many = client.post("/v1/predict", json=[LOAN, {**LOAN, "loan_grade": "A"}]).json()
    assert [r["record"] for r in many["results"]] == [0, 1]
    explained = client.post("/v1/predict", json={"records": [LOAN], "explain": True}).json()
    assert len(explained["results"][0]["reasons"]) == 4


def test_csv_in_csv_out(client: TestClient) -> None:
    csv = ",".join(LOAN) + "\n" + ",".join(str(v) for v in LOAN.values()) + "\n"
    response = client.post("/v1/predict", content=csv, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "row,probability,label,band,grade,score"
    as_json = client.post(
        "/v1/predict",
        content=csv,
        headers={"Content-Type": "text/csv", "Accept": "application/json"},
    ).json()
    assert as_json["summary"]["scored"] == 1
    many = csv + (",".join(str(v) for v in LOAN.values()) + "\n") * 60  # over max_records 50
    too_many = client.post(
        "/v1/predict",
        content=many,
        headers={"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert too_many.status_code == 413
    assert "ask for CSV" in too_many.json()["error"]["message"]
    streamed = client.post("/v1/predict", content=many, headers={"Content-Type": "text/csv"})
    assert len(streamed.text.splitlines()) == 1 + 61


def test_a_csv_bigger_than_the_memory_spool_streams_through(client: TestClient) -> None:
    loans = generate_sample(180_000, seed=3).drop(columns=["loan_status"])
    loans.loc[7, "loan_amnt"] = -5  # one bad row, skipped and reported
    body = loans.to_csv(index=False).encode()
    assert len(body) > 8 * 2**20  # past the in-memory part of the spool
    response = client.post(
        "/v1/predict?on_error=skip", content=body, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert len(lines) == 1 + 180_000 - 1
    assert [line.split(",")[0] for line in lines[7:10]] == ["7", "9", "10"]


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (
            {**LOAN, "loan_amnt": -1},
            422,
            "invalid_input",
            "record 0: loan_amnt: impossible value -1 (must be at least 0)",
        ),
        ({"records": "nope"}, 422, "invalid_input", "body.records: Input should be a valid list"),
        ([LOAN] * 51, 413, "too_large", "51 records: at most 50 a request"),
        (
            {"records": [LOAN], "on_error": "maybe"},
            422,
            "invalid_input",
            "body.on_error: Input should be 'raise' or 'skip'",
        ),
    ],
)
def test_bad_requests_get_the_error_shape(
    client: TestClient, body: Any, status: int, code: str, message: str
) -> None:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(message)


def test_malformed_json_and_bad_csv_are_4xx_not_500(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("the body is not valid JSON")
    binary = client.post(
        "/v1/predict", content=b"\x00\x01\x02", headers={"Content-Type": "text/csv"}
    )
    assert binary.status_code == 422
    assert binary.json()["error"]["message"] == "binary data: the file is not CSV text"


def test_scoring_before_any_model_exists_is_409(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(storage=str(tmp_path)))) as empty:
        response = empty.post("/v1/predict", json=LOAN)
        assert response.status_code == 409
        assert "no model to score with" in response.json()["error"]["message"]
        assert empty.get("/readyz").json()["model"] is None


def test_a_promotion_reaches_the_serving_app_within_the_reload_interval(
    client: TestClient, root: Path
) -> None:
    assert client.post("/v1/predict", json=LOAN).json()["model"]["version"] == 1
    ModelRegistry(FsspecStorage(str(root))).promote("loan-default", 2)
    deadline = time.monotonic() + 5
    while client.post("/v1/predict", json=LOAN).json()["model"]["version"] != 2:
        assert time.monotonic() < deadline, "the new version was not picked up"
        time.sleep(0.05)


def test_the_openapi_description_documents_predict_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(content)
    assert "one loan" in content["application/json"]["examples"]


def test_a_real_server_process_scores_over_http(root: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "loanrisk"),
            "serve",
            "--port",
            str(port),
            "--storage",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(server, port, "loanrisk serve")
        base = f"http://127.0.0.1:{port}"
        response = httpx.post(f"{base}/v1/predict", json=LOAN, timeout=30)
        assert response.status_code == 200
        assert response.json()["results"][0]["band"] in {"low", "medium", "high"}
        assert httpx.get(f"{base}/ping", timeout=10).json()["Message"] == "Server is Running"
    finally:
        server.terminate()
        server.wait(15)


def test_a_fallback_to_xgboost_is_explained_in_readiness_and_metrics(root: Path) -> None:
    ModelRegistry(FsspecStorage(str(root))).promote("loan-default", 1)
    settings = Settings(storage=str(root), backend="xgboost")
    with TestClient(create_app(settings)) as fell_back:
        model = fell_back.get("/readyz").json()["model"]
        assert (model["backend"], model["fallback_cause"]) == ("xgboost", "chosen")
        assert model["fallback_reason"] == "xgboost chosen in settings"
        exposed = fell_back.get("/metrics").text
    assert (
        'loanrisk_backend_fallback{cause="chosen",model="loan-default",role="champion",'
        'version="1"} 1.0'
    ) in exposed
    with TestClient(create_app(Settings(storage=str(root)))) as on_onedal:
        model = on_onedal.get("/readyz").json()["model"]
        assert (model["backend"], model["fallback_cause"]) == ("onedal", None)
        assert 'loanrisk_backend_fallback{cause="chosen"' not in on_onedal.get("/metrics").text
