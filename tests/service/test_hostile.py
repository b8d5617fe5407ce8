"""The hostile corpus: every input here is the client's error, answered with a 4xx in the one
error shape, naming the field where there is one, and never revealing a server path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

MOUNT = "/loan_app/azure-fileshare"
DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_INT = b"1" * 400


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile")
    storage = FsspecStorage(str(path))
    generate_sample(300).to_csv(path / "raw.csv", index=False)
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return path


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(root), max_request_bytes=1 << 20, max_size=1_000_000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def client_error(response: Any, root: Path, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert str(root) not in response.text
    return error


def raw(client: TestClient, method: str, url: str, body: bytes, kind: str) -> Any:
    return client.request(method, url, content=body, headers={"content-type": kind})


@pytest.mark.parametrize(
    "body",
    [
        b'{"records": [{}], "top_k": "abc"}',
        b'{"records": [{}], "top_k": null}',
        b'{"records": [{}], "top_k": [1]}',
        b'{"records": [{}], "top_k": Infinity}',
        b'{"records": [{}], "top_k": 1.5}',
        b'{"records": [{}], "top_k": 0}',
        b'{"records": [{}], "explain": "false"}',
        b'{"records": [{}], "colour": "red"}',
        b'{"person_income": ' + HUGE_INT + b"}",
        b'{"person_income": NaN}',
        DEEP,
        b"\xff\xfe",
    ],
)
def test_bad_predict_bodies(client: TestClient, root: Path, body: bytes) -> None:
    error = client_error(raw(client, "POST", "/v1/predict", body, "application/json"), root, 422)
    assert error["message"]


def test_a_json_body_in_another_dress_gets_the_json_limit(client: TestClient, root: Path) -> None:
    big = b'{"records": [' + b"{}," * 400_000 + b"{}]}"  # over the 1 MiB JSON limit
    for kind in ("application/octet-stream", "TEXT/PLAIN"):
        error = client_error(raw(client, "POST", "/v1/predict", big, kind), root)
        assert error["code"] in ("too_large", "unsupported_media_type")
    error = client_error(
        raw(client, "POST", "/v1/predict", b"{}", "application/octet-stream"), root, 415
    )
    assert error["details"]["accepted"] == ["application/json", "text/csv"]
    assert client_error(raw(client, "POST", "/v1/datasets", big, "text/csv"), root)["code"] in (
        "too_large",
        "unsupported_media_type",
    )
    csv = raw(client, "POST", "/v1/predict", b"person_age\n30\n", "Text/CSV; charset=utf-8")
    assert client_error(csv, root, 422)["code"] == "invalid_input"  # read as CSV: a bad loan


@pytest.mark.parametrize("size", ["inf", "-inf", "nan", "1e999", "2.8e21", "1.5", "¹", "0", "x"])
def test_bad_sizes_are_refused_naming_the_field(client: TestClient, root: Path, size: str) -> None:
    form = {"az_file_path": MOUNT, "data_directory": "data", "size": size}
    files = {"file": ("raw.csv", (root / "raw.csv").read_bytes(), "text/csv")}
    for response in (
        client.post("/data_processing", data=form, files=files),
        client.post("/train", data={**form, "model_directory": "m", "model_name": "x"}),
        client.post("/train", json={"bucket": "loan-default", "model_key": "m", "size": size}),
        client.post("/data", json={"bucket": "loan-default", "key": "raw.csv", "size": size}),
    ):
        assert client_error(response, root, 422)["details"]["field"] == "size"
    assert not list(root.glob("jobs/uploads/*/*"))  # nothing staged for a refused request


def test_a_size_bomb_is_refused_before_any_job(client: TestClient, root: Path) -> None:
    for body in (
        {"source": "raw.csv", "size": 2_800_000_000_000_000_000_000},
        {"source": "raw.csv", "size": 1_000_001},
    ):
        error = client_error(client.post("/v1/datasets", json=body), root, 422)
        assert error["details"]["field"] == "size"
    assert client.get("/v1/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/v1/datasets", {"params": {"directory": "da\x00ta"}}),
        ("GET", "/v1/models", {"params": {"model_directory": "\x00"}}),
        ("POST", "/v1/batch-predictions", {"json": {"source": "raw\x00.csv"}}),
        ("POST", "/v1/batch-predictions", {"json": {"source": "raw.csv", "output": "a\x00.csv"}}),
        ("POST", "/v1/datasets", {"json": {"source": "raw.csv", "directory": "d\x00"}}),
        ("POST", "/data", {"json": {"bucket": "loan-default", "key": "raw\x00.csv"}}),
        ("GET", "/v1/models/loan-default/versions/" + "9" * 5000, {}),
        ("GET", "/v1/models/loan-default/versions/¹", {}),
        ("GET", "/v1/models/loan-default/versions/v¹", {}),
        ("GET", "/v1/models/" + "m" * 300, {}),
        ("GET", "/v1/datasets/" + "d" * 5000, {}),
        ("GET", "/v1/jobs/job-" + "j" * 5000, {}),
        ("PUT", "/v1/models/loan-default/aliases/production", {"json": {"version": "9" * 400}}),
        ("PUT", "/v1/models/loan-default/aliases/production", {"content": DEEP}),
        ("GET", "/no/such/route", {}),
        ("DELETE", "/v1/predict", {}),
    ],
)
def test_hostile_paths_and_values(
    client: TestClient, root: Path, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    client_error(client.request(method, url, **kwargs), root)


def test_a_broken_multipart_body_is_a_400_in_the_error_shape(
    client: TestClient, root: Path
) -> None:
    response = raw(
        client, "POST", "/data_processing", b"--x\r\nbroken", "multipart/form-data; boundary=x"
    )
    client_error(response, root)


def test_files_and_folders_mixed_up_are_the_clients_error(client: TestClient, root: Path) -> None:
    (root / "folder").mkdir(exist_ok=True)
    for body in ({"source": "folder"}, {"source": "data"}):
        assert client_error(client.post("/v1/batch-predictions", json=body), root, 422)
    long_name = "n" * 300 + ".csv"
    client_error(
        client.post("/v1/batch-predictions", json={"source": "raw.csv", "output": long_name}), root
    )


def test_a_one_row_csv_is_refused_with_a_clear_message(client: TestClient, root: Path) -> None:
    one_row = b"".join((root / "raw.csv").read_bytes().splitlines(keepends=True)[:2])
    response = client.post(
        "/data_processing",
        data={"az_file_path": MOUNT},
        files={"file": ("one.csv", one_row, "text/csv")},
    )
    error = client_error(response, root, 422)
    assert "cannot split" in error["message"]
    assert "Traceback" not in error["message"]
    assert not list(root.glob("jobs/uploads/*/*"))  # the failed job's upload is gone


def test_the_queue_is_bounded_and_cancel_stops_a_data_job_within_seconds(
    root: Path,
) -> None:
    settings = Settings(storage=str(root), max_jobs=1, max_queued_jobs=0, max_size=50_000_000)
    with TestClient(create_app(settings)) as client:
        started = client.post("/v1/datasets", json={"source": "raw.csv", "size": 50_000_000})
        assert started.status_code == 202, started.text
        refused = client.post("/v1/datasets", json={"source": "raw.csv"})
        error = client_error(refused, root, 429)
        assert error["code"] == "too_busy"
        assert int(refused.headers["retry-after"]) > 0
        job = started.headers["location"]
        time.sleep(1.5)  # well into the expansion
        asked = time.monotonic()
        assert client.post(f"{job}/cancel").status_code == 202
        while client.get(job).json()["state"] == "running":
            assert time.monotonic() - asked < 15, "cancel did not stop the data job"
            time.sleep(0.1)
        assert client.get(job).json()["state"] == "cancelled"


def test_the_reference_csv_predict_answers_a_bounded_head_and_stores_every_row(
    root: Path,
) -> None:
    rows = generate_sample(40).drop(columns=["loan_status"]).to_csv(index=False).encode()
    settings = Settings(storage=str(root), max_inline_rows=5)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict",
            data={
                "az_file_path": MOUNT,
                "model_directory": "models",
                "model_name": "loan-default",
                "sample_directory": "samples",
            },
            files={"file": ("sample.csv", rows, "text/csv")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body["Prediction Output"]["Probability"]) == ["0", "1", "2", "3", "4"]
        assert (body["rows"], body["inline_rows"], body["truncated"]) == (40, 5, True)
        stored = (root / body["results_path"]).read_text().splitlines()
        assert len(stored) == 41
        payload = client.post(
            "/predict",
            json={
                "bucket": "loan-default",
                "model_key": "models",
                "model_name": "loan-default",
                "csv_payload": "raw.csv",
            },
        )
        assert payload.status_code == 200, payload.text
        assert len(payload.json()["Prediction Output"]) == 5
        assert payload.json()["rows"] == 300
        assert payload.json()["results_path"].startswith("predictions/raw-")
