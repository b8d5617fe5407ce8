"""One request per job kind: equivalent inputs through every front end (the command line, the
v1 API, the reference's routes, the demo) give the identical typed request, observed where it
is recorded (a version's manifest, a job's record), with the settings' defaults in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import open_storage

#: Trainings, a demo and a tuning study in subprocesses: about two minutes on 2 cores.
pytestmark = pytest.mark.slow

MOUNT = "/loan_app/azure-fileshare"  # the reference's Azure file share, the storage root
LOANRISK = shutil.which("loanrisk", path=os.path.dirname(sys.executable))
#: Settings a training takes its defaults from, set as an operator sets them.
TRAINING_ENV = {
    "LOANRISK_THRESHOLD": "0.3",
    "LOANRISK_MONOTONE": "true",
    "LOANRISK_CALIBRATION": "platt",
    "LOANRISK_NTHREAD": "1",
    "LOANRISK_SEED": "7",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert LOANRISK, "the loanrisk entry point is not installed next to this Python"
    return subprocess.run(
        [LOANRISK, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **TRAINING_ENV, "COLUMNS": "200"},
    )


def finished(client: TestClient, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            assert record["state"] == "succeeded", record
            return record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {record['state']} after {timeout} s")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage holding one processed dataset (8,000 sample loans), by the command line."""
    root = tmp_path_factory.mktemp("requests")
    generate_sample(8_000, seed=3).to_csv(root / "raw.csv", index=False)
    processed = run("data", "process", str(root / "raw.csv"), "--storage", str(root))
    assert processed.returncode == 0, processed.stderr
    return root


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    """The service on the same storage, under the same environment as the command line."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TRAINING_ENV.items():
            patch.setenv(name, value)
        settings = Settings(storage=str(store), reload_interval=0.2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def trained(store: Path, client: TestClient) -> dict[str, dict[str, Any]]:
    """One promoted training of the newest dataset through each front end; each version's
    recorded request, by front end."""
    registry = ModelRegistry(open_storage(Settings(storage=str(store))), "models")
    versions: dict[str, int] = {}

    by_cli = run("train", "--storage", str(store), "--promote", "--json")
    assert by_cli.returncode == 0, by_cli.stderr
    versions["cli"] = json.loads(by_cli.stdout)["version"]

    accepted = client.post("/v1/models/loan-default/versions", json={"promote": True})
    assert accepted.status_code == 202, accepted.text
    versions["v1"] = finished(client, accepted.json()["id"])["result"]["manifest"]["version"]

    by_reference = client.post(
        "/train",
        json={
            "bucket": "None",
            "backend": "local",
            "data_key": "None",
            "model_key": "None",
            "local_data_path": "data",
            "local_model_path": "models",
            "model_name": "loan-default",
        },
    )
    assert by_reference.status_code == 200, by_reference.text
    versions["reference"] = by_reference.json()["model"]["version"]

    assert sorted(versions.values()) == [1, 2, 3]
    return {
        front: {
            "request": registry.manifest("loan-default", version).request or {},
            "report": registry.report("loan-default", version).to_json(),
        }
        for front, version in versions.items()
    }


def test_every_front_end_builds_the_identical_training_request(
    trained: dict[str, dict[str, Any]],
) -> None:
    requests = {front: doc["request"] for front, doc in trained.items()}
    assert requests["cli"] == requests["v1"] == requests["reference"]
    assert requests["cli"]["dataset"] == "latest" and requests["cli"]["promote"] is True


def test_every_training_takes_its_defaults_from_the_settings(
    trained: dict[str, dict[str, Any]],
) -> None:
    for front, doc in trained.items():
        request = doc["request"]
        assert (request["monotone"], request["calibration"]) == (True, "platt"), front


def test_the_command_line_training_evaluates_at_the_threshold_setting(
    trained: dict[str, dict[str, Any]],
) -> None:
    """LOANRISK_THRESHOLD is the threshold `loanrisk train` records and evaluates at, as an
    HTTP training does, not 0.5."""
    for front, doc in trained.items():
        assert doc["request"]["threshold"] == 0.3, front
        assert doc["report"]["threshold"] == 0.3, front


def test_the_demo_trains_as_loanrisk_train_would_with_the_settings(tmp_path: Path) -> None:
    """The demo's training follows the monotone and calibration settings, and is the request
    `loanrisk train` makes for the same dataset."""
    demo = run("demo", "--no-serve", "--storage", str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    registry = ModelRegistry(open_storage(Settings(storage=str(tmp_path))), "models")
    by_demo = registry.manifest("loan-default", 1).request or {}
    assert (by_demo["monotone"], by_demo["calibration"]) == (True, "platt")
    assert by_demo["threshold"] == 0.3

    again = run("train", "--storage", str(tmp_path), "--dataset", by_demo["dataset"], "--promote")
    assert again.returncode == 0, again.stderr
    assert registry.manifest("loan-default", 2).request == by_demo


def test_an_upload_is_processed_by_the_identical_job_from_v1_and_the_reference(
    store: Path, client: TestClient
) -> None:
    upload = (store / "raw.csv").read_bytes()
    by_v1 = client.post(
        "/v1/datasets",
        files={"file": ("loans.csv", upload, "text/csv")},
        data={"size": "9000", "directory": "uploads"},
    )
    assert by_v1.status_code == 202, by_v1.text
    by_azure = client.post(
        "/data_processing",
        data={"az_file_path": MOUNT, "data_directory": "uploads", "size": "9000"},
        files={"file": ("loans.csv", upload, "text/csv")},
    )
    assert by_azure.status_code == 200, by_azure.text
    jobs = [finished(client, by_v1.json()["id"]), finished(client, by_azure.json()["job"])]
    v1, azure = ({k: v for k, v in job["params"].items() if k != "source"} for job in jobs)
    assert v1 == azure  # the staged copies' paths differ, nothing else
    assert v1["size"] == 9000 and v1["staged"] is True and v1["source_name"] == "loans.csv"


def test_a_size_over_the_ceiling_is_refused_alike_by_every_front_end(
    store: Path, client: TestClient
) -> None:
    too_big = str(Settings().max_size + 1)
    upload = (store / "raw.csv").read_bytes()
    by_v1 = client.post("/v1/datasets", json={"source": "raw.csv", "size": int(too_big)})
    by_azure = client.post(
        "/data_processing",
        data={"az_file_path": MOUNT, "data_directory": "data", "size": too_big},
        files={"file": ("loans.csv", upload, "text/csv")},
    )
    by_cli = run(
        "data", "process", str(store / "raw.csv"), "--storage", str(store), "--size", too_big
    )
    assert by_v1.status_code == by_azure.status_code == 422
    assert "over the limit" in by_v1.text and "over the limit" in by_azure.text
    assert by_cli.returncode == 2 and "over the limit" in by_cli.stderr


def test_a_tuning_study_is_the_identical_job_from_the_command_line_and_v1(
    store: Path, client: TestClient
) -> None:
    """The command line starts a study, v1 resumes it: the v1 job carries what the study
    stored from the command line's job (a study resumed with other settings is refused)."""
    dataset = client.get("/v1/datasets/latest").json()["id"]
    options = ["--study", "same", "--trials", "1", "--folds", "2", "--objective", "auc-per-cost"]
    by_cli = run("tune", "--storage", str(store), "--dataset", dataset, *options, "--json")
    assert by_cli.returncode == 0, by_cli.stderr
    accepted = client.post(
        f"/v1/datasets/{dataset}/studies",
        json={"study": "same", "trials": 1, "folds": 2, "objective": "auc-per-cost"},
    )
    assert accepted.status_code == 202, accepted.text
    job = finished(client, accepted.json()["id"])["params"]
    stored = client.get(f"/v1/datasets/{dataset}/studies/same").json()
    shared = ("objective", "folds", "seed", "monotone", "max_rounds", "early_stopping_rounds")
    assert {k: job[k] for k in shared} == {k: stored[k] for k in shared}
    assert (job["dataset"], job["study"], job["seed"]) == (stored["dataset"], stored["name"], 7)


def test_every_front_end_records_the_default_master_scale(
    trained: dict[str, dict[str, Any]],
) -> None:
    """No scale given: the CLI, the v1 API and the reference's /train record the default
    scale, and grade the held-out loans on it."""
    from loanrisk.registry.masterscale import DEFAULT_SCALE, MasterScale

    for front, doc in trained.items():
        assert MasterScale.model_validate(doc["request"]["master_scale"]) == DEFAULT_SCALE, front
        assert doc["report"]["master_scale"] == DEFAULT_SCALE.name, front
        assert [g["grade"] for g in doc["report"]["grades"]] == list(DEFAULT_SCALE.names), front
