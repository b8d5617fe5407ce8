"""Two schemas end to end, as users run them: the CLI's entry point and the real app.

The second schema (tests/schema/second.py) has other column names, an ordinal column, a
boolean, a text label, an id column and a protected column. Validation errors name its
columns, the protected column never becomes a feature, reasons use its declared names, and
a record of the built-in schema sent to a model of the second is refused naming the fields.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN
from tests.schema.second import SECOND, second_loans, second_record, second_yaml
from tests.test_cli import LOANRISK, run

from ..conftest import free_port, wait_until_serving


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("second")
    (folder / "second.yaml").write_text(second_yaml())
    second_loans().to_csv(folder / "loans.csv", index=False)
    second_loans(50, seed=9).drop(columns=["outcome"]).to_csv(folder / "new.csv", index=False)
    generate_sample(2_000).to_csv(folder / "builtin.csv", index=False)
    return folder


def test_the_cli_runs_the_whole_flow_on_the_second_schema(files: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    demo = run(
        "demo",
        "--schema",
        str(files / "second.yaml"),
        "--source",
        str(files / "loans.csv"),
        "--storage",
        store,
        "--no-serve",
    )
    assert demo.returncode == 0, demo.stderr
    assert "model loan-default version 1" in demo.stdout
    assert "region (privileged north)" in " ".join(demo.stdout.split())  # the fairness row

    catalogue = DatasetCatalogue(FsspecStorage(store))
    dataset = catalogue.find()
    assert dataset.schema_name == "second"
    assert catalogue.load_schema(dataset.id).fingerprint() == dataset.schema_hash
    assert sorted(dataset.kept_columns) == ["applied_on", "region"]
    spec = catalogue.load_spec(dataset.id)
    assert "region" not in spec.input_columns  # protected: never a feature
    assert "application_id" not in spec.input_columns
    assert [c.name for c in spec.ordinal] == ["risk_tier"]
    assert [c.name for c in spec.scaled] == ["bureau_score"]
    assert [c.name for c in spec.passthrough] == ["applicant_age", "has_guarantor"]

    model = ModelRegistry(FsspecStorage(store)).load("loan-default", "production")
    assert model.schema.name == "second"
    assert model.manifest.schema_ref is not None
    assert model.manifest.schema_ref.hash == model.schema.fingerprint()
    assert model.report.auc > 0.75
    assert model.report.fairness.attribute == "region"
    assert model.report.fairness.privileged_value == "north"

    shown = run(
        "schema", "show", "--model", "loan-default@production", "--storage", store, "--json"
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "second"
    assert (
        "bureau_score"
        in run("schema", "show", "--model", "loan-default", "--storage", store).stdout
    )

    scored = run("predict", str(files / "new.csv"), "--storage", store, "--explain")
    assert scored.returncode == 0, scored.stderr
    lines = scored.stdout.splitlines()
    assert lines[0].startswith("row,application_id,probability,label,band,grade,score,reason_1")
    assert lines[1].startswith("1,A000000,")


def test_cli_validation_errors_name_the_second_schema_s_columns(
    files: Path, tmp_path: Path
) -> None:
    bad = second_loans(200)
    bad["bureau_score"] = bad["bureau_score"].astype(object)
    bad.loc[3, "bureau_score"] = "unknown"
    bad.loc[7, "risk_tier"] = "extreme"
    bad.loc[9, "outcome"] = "maybe"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = run(
        "data",
        "process",
        str(path),
        "--schema",
        str(files / "second.yaml"),
        "--storage",
        str(tmp_path / "store"),
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "column 'bureau_score': not a number at row 4 ('unknown')" in message
    assert "column 'risk_tier': unknown category (allowed: LOW, MEDIUM, HIGH) at row 8" in message
    assert "column 'outcome': label must be good or bad at row 10 ('maybe')" in message
    assert message.endswith("add --skip-bad-rows")  # what to do about it
    builtin = run(
        "data",
        "process",
        str(files / "builtin.csv"),
        "--schema",
        str(files / "second.yaml"),
        "--storage",
        str(tmp_path / "store"),
    )
    assert builtin.returncode == 2
    assert "missing required column(s): applicant_age, monthly_income" in builtin.stderr
    assert "built-in" not in builtin.stderr  # a schema was given: no word of the built-in one
    unschemed = run("data", "process", str(files / "loans.csv"), "--storage", str(tmp_path))
    assert unschemed.returncode == 2
    message = " ".join(unschemed.stderr.split())
    assert "missing required column(s): person_age," in message
    assert "the built-in 'credit-risk' schema was used because none was given" in message
    assert "--schema FILE" in message
    assert f"loanrisk schema infer {files / 'loans.csv'}" in message


def test_continued_training_across_incompatible_schemas_is_refused(
    files: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    first = run("data", "process", str(files / "builtin.csv"), "--storage", store, "--json")
    assert first.returncode == 0, first.stderr
    trained = run("train", "--storage", store, "--rounds", "5", "--json")
    assert trained.returncode == 0, trained.stderr
    second = run(
        "data",
        "process",
        str(files / "loans.csv"),
        "--schema",
        str(files / "second.yaml"),
        "--storage",
        store,
        "--json",
    )
    dataset = json.loads(second.stdout)["id"]
    refused = run(
        "train",
        "--storage",
        store,
        "--dataset",
        dataset,
        "--continue-from",
        "production",
        "--rounds",
        "5",
    )
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert "cannot continue training 'loan-default' version 1 (schema 'credit-risk')" in message
    assert "feature 'person_age' is missing" in message
    assert ModelRegistry(FsspecStorage(store)).versions("loan-default") == [1]


@contextlib.contextmanager
def serving(root: Path) -> Iterator[str]:
    """``loanrisk serve`` on ``root`` (one worker); yields what it printed once it listens."""
    port, log = free_port(), root.parent / "serve.log"
    with open(log, "wb") as stderr:
        server = subprocess.Popen(
            [str(LOANRISK), "serve", "--port", str(port), "--storage", str(root), "--workers", "1"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "LOANRISK_NTHREAD": "1", "COLUMNS": "80"},
        )
    try:
        wait_until_serving(server, port, "loanrisk serve", timeout=60)
        yield log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def printed_requests(printed: str) -> list[httpx.Request]:
    """The curl commands a person is told to paste, as requests."""
    requests = []
    for line in printed.splitlines():
        if not line.strip().startswith("curl "):
            continue
        words = shlex.split(line)
        pairs = list(itertools.pairwise(words))  # (option, its value)
        method = next((v for o, v in pairs if o == "-X"), "GET")
        body = next((v for o, v in pairs if o == "-d"), None)
        headers = dict(v.split(": ", 1) for o, v in pairs if o == "-H")
        url = next(w for w in words if w.startswith("http://"))
        requests.append(httpx.Request(method, url, headers=headers, content=body))
    return requests


def test_serve_prints_requests_in_the_served_model_s_schema(tmp_path: Path) -> None:
    root = tmp_path / "store"
    schema = LoanSchema.model_validate(SECOND)
    storage = FsspecStorage(str(root))
    process_dataset(
        validate_frame(second_loans(1_000), schema=schema), storage, source="second", schema=schema
    )
    run_training(TrainingRequest(rounds=3), storage, nthread=1)
    with serving(root) as printed:
        assert "loans of the served model's schema 'second'" in printed
        assert not [c.name for c in builtin_schema().columns if c.name in printed]
        requests = printed_requests(printed)
        scored = [r.url.path for r in requests if r.method == "POST"]
        assert scored == ["/v1/predict", "/predict"]
        with httpx.Client(timeout=30) as client:
            for request in requests:  # pasted as printed, each is answered
                answer = client.send(request)
                assert answer.status_code == 200, (request.url, answer.text)
        assert '"model_name": "loan-default", "model_key": "models"' in printed


def test_serve_without_a_model_says_so_and_prints_only_what_works(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    with serving(root) as printed:
        message = " ".join(printed.split())
        assert "No model is served yet (loan-default@production: " in message
        assert "promote it to 'production'" in message
        requests = printed_requests(printed)
        assert requests and all(r.method == "GET" for r in requests)
        with httpx.Client(timeout=30) as client:
            for request in requests:
                answer = client.send(request)
                assert answer.status_code == 200, (request.url, answer.text)


@pytest.fixture
def client(files: Path, tmp_path: Path) -> Iterator[TestClient]:
    root = tmp_path / "store"
    root.mkdir()
    (root / "loans.csv").write_bytes((files / "loans.csv").read_bytes())
    settings = Settings(
        storage=str(root),
        nthread=1,
        model_name="cards",
        reload_interval=0.2,
        job_heartbeat=0.2,
        job_stale_after=1.0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def finished(client: TestClient, accepted: Any, timeout: float = 120) -> dict[str, Any]:
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(accepted.headers["location"]).json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"job still {record['state']} after {timeout} s")


def served(client: TestClient, record: dict[str, Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.post("/v1/predict", json=record)
        if answer.status_code != 409 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_the_service_stores_processes_trains_and_scores_the_second_schema(
    client: TestClient,
) -> None:
    stored = client.put(
        "/v1/schemas/second", content=second_yaml(), headers={"content-type": "application/yaml"}
    )
    assert stored.status_code == 200, stored.text
    assert "second" in client.get("/v1/schemas").json()["schemas"]
    assert client.get("/v1/schemas/second").json()["hash"] == stored.json()["hash"]

    job = finished(
        client, client.post("/v1/datasets", json={"source": "loans.csv", "schema_name": "second"})
    )
    assert job["state"] == "succeeded", job["error"]
    dataset = job["result"]["dataset"]
    assert dataset["schema_name"] == "second"
    body = {"dataset": dataset["id"], "rounds": 40}
    trained = finished(client, client.post("/v1/models/cards/versions", json=body))
    assert trained["state"] == "succeeded", trained["error"]

    answer = served(client, {"records": [second_record()], "explain": True, "top_k": 3})
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert result["label"] is True
    declared = {c["name"]: c for c in SECOND["columns"]}
    for reason in result["reasons"]:
        column = declared[reason["feature"]]
        assert reason["name"] == column["title"]
        assert reason["reason"] == column["reason"]
    assert {r["feature"] for r in result["reasons"]} <= {
        "bureau_score",
        "risk_tier",
        "has_guarantor",
        "monthly_income",
        "applicant_age",
        "product",
    }

    foreign = client.post("/v1/predict", json=EXAMPLE_LOAN)
    assert foreign.status_code == 422
    error = foreign.json()["error"]
    assert "applicant_age: missing field" in error["message"]
    fields = {f["field"] for f in error["details"]["fields"]}
    assert {"applicant_age", "bureau_score", "risk_tier"} <= fields
    unexpected = [f["message"] for f in error["details"]["fields"] if not f["field"]]
    assert unexpected[0].startswith("unexpected field(s) cb_person_cred_hist_length, ")
    assert "loan_grade" in unexpected[0] and "schema 'second'" in unexpected[0]
    bad = client.post("/v1/predict", json=second_record(risk_tier=True))
    assert bad.status_code == 422 and "risk_tier" in bad.json()["error"]["message"]
    coded = client.post("/v1/predict", json=second_record(risk_tier=3))  # read as "3", as CSV
    assert coded.status_code == 200, coded.text
    assert any("unknown category 3" in w for w in coded.json()["results"][0]["warnings"])

    schema = client.get("/v1/models/cards/schema").json()
    assert schema["version"] == 1 and schema["schema"]["name"] == "second"
    openapi = client.get("/openapi.json").json()
    body = openapi["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    loan = body["application/json"]["schema"]["anyOf"][1]
    assert set(loan["required"]) == {
        "applicant_age",
        "monthly_income",
        "bureau_score",
        "product",
        "risk_tier",
        "has_guarantor",
    }
    example = body["application/json"]["examples"]["one loan"]["value"]
    assert example["bureau_score"] == 640
    assert served(client, example).status_code == 200
    csv = pd.DataFrame([second_record(), second_record(application_id="B1")]).to_csv(index=False)
    scored = client.post("/v1/predict", content=csv, headers={"content-type": "text/csv"})
    assert scored.status_code == 200, scored.text
    assert scored.text.splitlines()[0].startswith("row,application_id,probability")


def test_a_bad_schema_in_a_request_is_refused_naming_the_problem(client: TestClient) -> None:
    doc = json.loads(json.dumps(SECOND))
    doc["columns"][4]["type"] = "decimal"
    answer = client.post("/v1/datasets", json={"source": "loans.csv", "schema": doc})
    assert answer.status_code == 422
    assert (
        "schema: columns[4] (bureau_score).type: must be one of"
        in answer.json()["error"]["message"]
    )
    unknown = client.post("/v1/datasets", json={"source": "loans.csv", "schema_name": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["field"] == "schema_name"
    both = client.post(
        "/v1/datasets", json={"source": "loans.csv", "schema": SECOND, "schema_name": "second"}
    )
    assert both.status_code == 422
    renamed = client.put("/v1/schemas/other", json=SECOND)
    assert renamed.status_code == 422 and "not 'other'" in renamed.json()["error"]["message"]
    builtin = client.put("/v1/schemas/credit-risk", json={**SECOND, "name": "credit-risk"})
    assert builtin.status_code == 409
    inline = finished(
        client, client.post("/v1/datasets", json={"source": "loans.csv", "schema": SECOND})
    )
    assert inline["state"] == "succeeded", inline["error"]
    unschemed = finished(client, client.post("/v1/datasets", json={"source": "loans.csv"}))
    assert unschemed["state"] == "failed"
    error = unschemed["error"]
    assert "the built-in 'credit-risk' schema was used because none was given" in str(error)
    assert "schema_name" in str(error)
