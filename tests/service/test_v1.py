"""The v1 API: datasets, training, models and aliases, batch scoring and jobs, end to end
through the real app, with jobs in real child processes and their state on the storage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from tests.builtin import EXAMPLE_LOAN
from tests.training.test_lda import age_schema


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    generate_sample(3_000).to_csv(path / "raw.csv", index=False)
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(
        storage=str(root), nthread=1, reload_interval=0.2, job_heartbeat=0.2, job_stale_after=1.0
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def finished(client: TestClient, accepted: Any, timeout: float = 120) -> dict[str, Any]:
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["location"]
    assert location == f"/v1/jobs/{accepted.json()['id']}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(location).json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"job still {record['state']} after {timeout} s")


def test_datasets_from_an_upload_and_from_the_storage(client: TestClient, root: Path) -> None:
    upload = (root / "raw.csv").read_bytes()
    job = finished(
        client,
        client.post(
            "/v1/datasets", files={"file": ("my loans.csv", upload)}, data={"size": "4000"}
        ),
    )
    assert job["state"] == "succeeded", job["error"]
    assert job["kind"] == "process_data"
    assert job["result"]["dataset"]["rows"]["total"] == 4_000
    assert job["timings"]["total_s"] > 0
    assert not list(root.glob("jobs/uploads/*/*"))  # the staged upload is gone
    stored = finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))
    assert stored["state"] == "succeeded"

    listed = client.get("/v1/datasets").json()["datasets"]
    assert [d["source"] for d in listed] == ["my_loans.csv", "raw.csv"]
    newest = client.get("/v1/datasets/latest").json()
    assert newest["id"] == listed[-1]["id"]
    quality = client.get(f"/v1/datasets/{newest['id']}/quality").json()
    assert quality["quality"]["rows"] == 3_000
    assert client.get("/v1/datasets/ds-nope").status_code == 404


def test_a_bad_upload_fails_its_job_with_the_row_and_column(client: TestClient) -> None:
    frame = generate_sample(5).astype({"person_age": object})
    frame.loc[2, "person_age"] = "old"
    bad = frame.to_csv(index=False).encode()
    job = finished(client, client.post("/v1/datasets", files={"file": ("bad.csv", bad)}))
    assert job["state"] == "failed"
    assert job["error"]["code"] == "invalid_input"
    (issue,) = job["error"]["details"]["issues"]
    assert issue["column"] == "person_age"
    assert issue["rows"] == [3]  # the third loan (1-based, header not counted)


def test_train_promote_rollback_and_batch_score(client: TestClient, root: Path) -> None:
    assert (
        finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))["state"]
        == "succeeded"
    )
    first = finished(client, client.post("/v1/models/risk/versions", json={"rounds": 30}))
    assert first["state"] == "succeeded", first["error"]
    assert first["progress"]["done"] == 30
    assert first["result"]["manifest"]["version"] == 1
    second = finished(
        client,
        client.post(
            "/v1/models/risk/versions",
            json={"rounds": 10, "continue_from": "production", "promote": False},
        ),
    )
    assert second["result"]["promoted"] is False

    model = client.get("/v1/models/risk").json()
    assert model["versions"] == [1, 2]
    assert model["aliases"]["production"]["version"] == 1
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["risk"]
    assert client.get("/v1/models/risk/versions/latest").json()["version"] == 2
    report = client.get("/v1/models/risk/versions/v1/report").json()
    assert {"auc", "classification_report", "roc_curve"} <= set(report)

    assert client.put("/v1/models/risk/aliases/production", json={"version": 2}).status_code == 200
    assert client.get("/v1/models/risk").json()["aliases"]["production"]["version"] == 2
    back = client.post("/v1/models/risk/aliases/production/rollback")
    assert back.status_code == 200, back.text
    assert client.get("/v1/models/risk").json()["aliases"]["production"]["version"] == 1

    scored = finished(
        client,
        client.post(
            "/v1/batch-predictions",
            json={"source": "raw.csv", "model": "risk", "output": "out/scored.csv"},
        ),
    )
    assert scored["state"] == "succeeded", scored["error"]
    assert scored["result"]["summary"]["scored"] == 3_000
    assert scored["result"]["model"]["version"] == 1
    assert scored["result"]["output"] == "predictions/out/scored.csv"
    lines = (root / "predictions" / "out" / "scored.csv").read_text().splitlines()
    assert lines[0].startswith("row,probability,label,band")
    assert len(lines) == 3_001
    error = client.post("/v1/batch-predictions", json={"source": "nope.csv"}).json()["error"]
    assert error["details"] == {"field": "source"}
    bad = client.post("/v1/models/risk/versions", json={"rounds": 0, "colour": "red"})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["error"]["details"]["fields"]} == {
        "body.rounds",
        "body.colour",
    }


def test_a_monotone_calibrated_version_with_a_catalog_and_a_batch_with_decline_reasons(
    client: TestClient, root: Path
) -> None:
    assert (
        finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))["state"]
        == "succeeded"
    )
    catalog = {
        "reasons": [
            {
                "attribute": "loan_grade",
                "direction": "high",
                "code": "G7",
                "statement": "The loan's grade is high risk",
            }
        ]
    }
    too_few = client.post("/v1/models/risk/versions", json={"calibration": "isotonic"})
    assert too_few.status_code == 422  # refused before a job is queued
    error = too_few.json()["error"]
    assert error["details"]["field"] == "calibration_fraction"
    assert error["details"]["held_out_defaults"] == 48  # 10% of the 476 training defaults
    assert (
        "calibration_fraction 0.1 of the 2,250 training loans holds out 225 loans, 48 of "
        "them defaults" in error["message"]
    )
    assert error["message"].endswith(
        "Use a calibration_fraction of 0.45, or calibration platt "
        "with a calibration_fraction of 0.11, or calibration none."
    )
    body = {
        "rounds": 20,
        "monotone": True,
        "calibration": "platt",
        "calibration_fraction": 0.2,
        "reason_catalog": catalog,
    }
    trained = finished(client, client.post("/v1/models/risk/versions", json=body))
    assert trained["state"] == "succeeded", trained["error"]
    report = trained["result"]["report"]
    assert report["monotonicity"]["enforced"] and report["monotonicity"]["holds"]
    assert report["calibration_step"]["method"] == "platt"
    bad = {
        "rounds": 5,
        "reason_catalog": {
            "reasons": [
                {"attribute": "loan_grade", "direction": "sideways", "code": "G7", "statement": "x"}
            ]
        },
    }
    refused = client.post("/v1/models/risk/versions", json=bad)
    assert refused.status_code == 422
    assert "body.reason_catalog.reasons.0.direction" in refused.text

    unknown = client.post("/v1/models/risk/versions", json={"params_from": "nope:lean"})
    assert unknown.status_code == 404 and "no tuning study 'nope'" in unknown.text
    path_like = client.post("/v1/models/risk/versions", json={"params_from": "../x"})
    assert path_like.status_code == 422 and "body.params_from" in path_like.text

    scored = finished(
        client,
        client.post(
            "/v1/batch-predictions",
            json={
                "source": "raw.csv",
                "model": "risk",
                "output": "notices.csv",
                "explain": True,
                "decline_reasons": True,
            },
        ),
    )
    assert scored["state"] == "succeeded", scored["error"]
    header = (root / "predictions" / "notices.csv").read_text().splitlines()[0].split(",")
    assert header[4:10] == [
        "grade",
        "score",
        "reason_1",
        "reason_1_code",
        "reason_1_value",
        "reason_1_points",
    ]
    assert header[-2:] == ["decline_codes", "decline_reasons"]


REFUSED_TRAININGS = [
    ({"dataset": "zz"}, 404, None, "no dataset 'zz'"),
    ({"continue_from": "v9"}, 404, "continue_from", "cannot continue training model 'risk'"),
    ({"continue_from": "a@b"}, 422, "continue_from", "invalid alias name 'a@b'"),
    ({"protected_attribute": "nope"}, 422, "protected_attribute", "is not in the dataset"),
    ({"monotone": True, "params": {"monotone_constraints": "(1)"}}, 422, "monotone", "not both"),
    ({"params": {"max_depth": "deep"}}, 422, "params", "XGBoost refused the parameters"),
    (
        {
            "reason_catalog": {
                "reasons": [
                    {
                        "attribute": "loan_status",
                        "direction": "high",
                        "code": "X1",
                        "statement": "s",
                    }
                ]
            }
        },
        422,
        "reason_catalog",
        "'loan_status' is not a feature",
    ),
]


def test_a_training_batch_or_dataset_that_would_fail_is_refused_before_a_job_is_queued(
    client: TestClient,
) -> None:
    processed = finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))
    assert processed["state"] == "succeeded", processed["error"]
    first = finished(client, client.post("/v1/models/risk/versions", json={"rounds": 5}))
    assert first["state"] == "succeeded", first["error"]
    jobs = len(client.get("/v1/jobs").json()["jobs"])
    for body, status, field, message in REFUSED_TRAININGS:
        refused = client.post("/v1/models/risk/versions", json={"rounds": 5, **body})
        assert refused.status_code == status, (body, refused.text)
        error = refused.json()["error"]
        assert message in error["message"], (body, error)
        assert error["details"].get("field") == field, (body, error)
    assert len(client.get("/v1/jobs").json()["jobs"]) == jobs  # no job was queued
    refusals = [
        (
            "/v1/batch-predictions",
            {"source": "raw.csv", "model": "nomodel"},
            404,
            "model",
            "model 'nomodel' has no alias 'production'",
        ),
        (
            "/v1/batch-predictions",
            {"source": "raw.csv", "model": "risk@v9"},
            422,
            "model",
            "invalid model name",
        ),
        (
            "/v1/batch-predictions",
            {"source": "raw.csv", "model": "risk", "id_column": "ref"},
            422,
            "id_column",
            "id column 'ref' is not in raw.csv",
        ),
        (
            "/v1/datasets",
            {"source": "raw.csv", "keep_columns": ["Region", "branch"]},
            422,
            "keep_columns",
            "kept column(s) not in the file: Region, branch",
        ),
    ]
    for path, body, status, field, message in refusals:
        refused = client.post(path, json=body)
        assert refused.status_code == status, (body, refused.text)
        error = refused.json()["error"]
        assert message in error["message"] and error["details"]["field"] == field, (body, error)
    assert len(client.get("/v1/jobs").json()["jobs"]) == jobs


def test_tune_as_a_job_then_train_from_its_lean_trial(client: TestClient, root: Path) -> None:
    dataset = finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))
    dataset_id = dataset["result"]["dataset"]["id"]
    body = {"study": "q4", "trials": 2, "folds": 2, "objective": "auc-per-cost"}
    tuned = finished(client, client.post("/v1/datasets/latest/studies", json=body))
    assert tuned["state"] == "succeeded", tuned["error"]
    assert tuned["kind"] == "tune" and tuned["progress"]["done"] == 2
    summary = tuned["result"]
    assert summary["dataset"] == dataset_id and summary["trials"] == 2
    page = client.get(f"/console/jobs/{tuned['id']}")
    assert page.status_code == 200 and f"lean trial {summary['lean']['number']}" in page.text
    stored = client.get(f"/v1/datasets/{dataset_id}/studies/q4").json()
    assert len(stored["trials"]) == 2 and stored["summary"]["lean"] == summary["lean"]
    assert client.get(f"/v1/datasets/{dataset_id}/studies/nope").status_code == 404
    refused = client.get(f"/v1/datasets/{dataset_id}/studies/-x")
    assert refused.status_code == 422 and refused.json()["error"]["details"] == {"field": "study"}
    bad = client.post("/v1/datasets/latest/studies", json={"study": "../x", "folds": 1})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["error"]["details"]["fields"]} == {
        "body.study",
        "body.folds",
    }
    unsearched = client.post("/v1/datasets/latest/studies", json={"objective": "auc-air"})
    assert unsearched.status_code == 422
    assert [f["field"] for f in unsearched.json()["error"]["details"]["fields"]] == [
        "body.fairness"
    ]
    body = {"study": "fair", "fairness": "loan_amnt", "trials": 1, "folds": 2}
    unprotected = finished(client, client.post("/v1/datasets/latest/studies", json=body))
    assert unprotected["state"] == "failed"
    assert unprotected["error"]["message"].startswith("fairness: 'loan_amnt' is a feature")

    trained = finished(
        client, client.post("/v1/models/risk/versions", json={"params_from": "q4:lean"})
    )
    assert trained["state"] == "succeeded", trained["error"]
    manifest = trained["result"]["manifest"]
    assert manifest["tuned_from"]["trial"] == summary["lean"]["number"]
    assert manifest["rounds"]["trained"] == summary["lean"]["rounds"]

    # A search for a less discriminatory alternative on a dataset with age protected.
    schema = age_schema().model_dump(mode="json", exclude_none=True)
    aged = finished(
        client, client.post("/v1/datasets", json={"source": "raw.csv", "schema": schema})
    )
    assert aged["state"] == "succeeded", aged["error"]
    aged_id = aged["result"]["dataset"]["id"]
    body = {"study": "age", "fairness": "person_age", "trials": 2, "folds": 2, "auc_loss": 0.1}
    searched = finished(client, client.post(f"/v1/datasets/{aged_id}/studies", json=body))
    assert searched["state"] == "succeeded", searched["error"]
    lda = searched["result"]["lda"]
    assert lda["attribute"] == "person_age" and lda["auc_loss"] == 0.1
    assert all("air" in point for point in searched["result"]["frontier"])
    page = client.get(f"/console/jobs/{searched['id']}")
    assert "less discriminatory alternative on <code>person_age</code>" in page.text


def test_one_training_per_model_at_a_time_and_cancel(client: TestClient, root: Path) -> None:
    assert (
        finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))["state"]
        == "succeeded"
    )
    long = client.post("/v1/models/risk/versions", json={"rounds": 100_000})
    assert long.status_code == 202
    job_id = long.json()["id"]
    second = client.post("/v1/models/risk/versions", json={"rounds": 5})
    assert second.status_code == 409
    assert second.json()["error"]["details"] == {"job": job_id}
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Another model may train, but waits for the replica's one job slot (max_jobs=1).
    other = client.post("/v1/models/other/versions", json={"rounds": 5})
    time.sleep(0.5)
    assert client.get(other.headers["location"]).json()["state"] == "queued"

    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    ended = finished(client, long)
    assert ended["state"] == "cancelled"
    assert finished(client, other)["state"] == "succeeded"
    assert ModelRegistry(FsspecStorage(str(root))).models() == ["other"]
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    # The lock goes before the record says the job ended: a client that follows one training
    # to its end may start the next at once.
    for _ in range(3):
        accepted = client.post("/v1/models/risk/versions", json={"rounds": 5})
        assert accepted.status_code == 202, accepted.text
        assert finished(client, accepted)["state"] == "succeeded"


def test_a_job_whose_replica_died_is_reported_failed(client: TestClient, root: Path) -> None:
    beat = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    record = {
        "id": "job-20260101T000000Z-train-deadbeef",
        "kind": "train",
        "state": "running",
        "params": {},
        "owner": "gone:1",
        "created_at": beat,
        "started_at": beat,
        "finished_at": None,
        "heartbeat_at": beat,
        "progress": None,
        "result": None,
        "error": None,
        "timings": {},
    }
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / f"{record['id']}.json").write_text(json.dumps(record))
    seen = client.get(f"/v1/jobs/{record['id']}").json()
    assert seen["state"] == "failed"
    assert seen["error"]["code"] == "worker_lost"
    stored = json.loads((root / "jobs" / f"{record['id']}.json").read_text())
    assert stored == record  # reading never writes
    assert client.get("/v1/jobs").json()["jobs"][0]["id"] == record["id"]
    assert client.get("/v1/jobs/job-nope").status_code == 404
    assert client.get("/v1/jobs/not-a-job").status_code == 422


def test_metrics_and_request_ids(client: TestClient) -> None:
    assert (
        finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))["state"]
        == "succeeded"
    )
    assert (
        finished(client, client.post("/v1/models/loan-default/versions", json={"rounds": 5}))[
            "state"
        ]
        == "succeeded"
    )
    deadline = time.monotonic() + 10
    while client.post("/v1/predict", json=EXAMPLE_LOAN).status_code != 200:
        assert time.monotonic() < deadline  # the reload loop picks up the first version
        time.sleep(0.1)
    response = client.post(
        "/v1/predict", json=[EXAMPLE_LOAN] * 3, headers={"X-Request-ID": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 16
    text = client.get("/metrics").text
    assert 'loanrisk_http_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'loanrisk_http_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    predicted = [
        line
        for line in text.splitlines()
        if line.startswith("loanrisk_predictions_total{") and 'version="1"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in predicted) == 4
    # one request at a time: a batch each, of 1 loan and of 3
    assert "loanrisk_scoring_batch_loans_count 2.0" in text
    assert "loanrisk_scoring_batch_loans_sum 4.0" in text
    assert 'loanrisk_scoring_batch_loans_bucket{le="2.0"} 1.0' in text
    assert 'loanrisk_jobs_total{kind="train",state="succeeded"} 1.0' in text
    served = 'loanrisk_model_info{backend="onedal",model="loan-default",role="champion"'
    served += ',version="1"}'
    assert f"{served} 1.0" in text
    assert 'route="/v1/jobs/{job_id}"' in text  # templates, not raw paths


def test_an_unexpected_fault_is_a_500_with_an_error_id_in_the_log(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = "job-20260101T000000Z-train-0badc0de"
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / f"{job_id}.json").write_text("{ this is not JSON")  # a corrupt record
    app = create_app(Settings(storage=str(root)))

    def broken() -> None:  # a fault no code path expects: a bug
        raise ZeroDivisionError("secret internals")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        corrupt = client.get(f"/v1/jobs/{job_id}")
        response = client.get("/broken")
    assert corrupt.status_code == 503
    assert corrupt.json()["error"]["message"] == f"the record of job {job_id!r} is corrupt"
    assert response.status_code == 500
    assert "secret internals" not in response.text
    error = response.json()["error"]
    assert error["code"] == "internal"
    assert "Traceback" not in response.text
    error_id = error["details"]["error_id"]
    assert error_id in error["message"]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
