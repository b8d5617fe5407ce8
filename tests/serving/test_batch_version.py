"""A batch job is handed the version the service scores with, resolved once when it is
accepted: while the service serves a fallback version (the alias names one that cannot be
loaded), ``/v1/predict`` and a batch score with the same version."""

from __future__ import annotations

import json
import time
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
from tests.builtin import EXAMPLE_LOAN, LABEL


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Versions 1 and 2 of the model, production on 1, and 40 loans to score."""
    path = tmp_path / "share"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    run_training(TrainingRequest(rounds=5, promote=False), storage, nthread=1)
    loans = generate_sample(40, seed=7).drop(columns=[LABEL])
    loans.to_csv(path / "incoming.csv", index=False)
    return path


def move_alias(root: Path, version: int) -> None:
    """Point production at ``version`` behind the registry's back (a hand edit, a restore)."""
    alias = root / "models" / "loan-default" / "aliases" / "production.json"
    record = json.loads(alias.read_text())
    alias.write_text(json.dumps({**record, "version": version, "previous": record["version"]}))


def finished(client: TestClient, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 120
    while (record := client.get(response.headers["location"]).json())["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    return dict(record)


def test_the_job_records_the_version_it_was_handed_and_scores_with_it(root: Path) -> None:
    with TestClient(create_app(Settings(storage=str(root), reload_interval=3600))) as client:
        record = finished(
            client, client.post("/v1/batch-predictions", json={"source": "incoming.csv"})
        )
        assert record["params"]["ref"] == "production"
        assert record["params"]["version"] == 1
        assert record["state"] == "succeeded", record["error"]
        assert record["result"]["model"]["version"] == 1


def test_a_batch_scores_with_the_fallback_version_the_service_serves(root: Path) -> None:
    model = root / "models" / "loan-default" / "versions" / "2" / "model.ubj"
    model.write_bytes(model.read_bytes()[:-100] + b"\0" * 100)  # version 2 cannot be loaded
    move_alias(root, 2)
    with TestClient(create_app(Settings(storage=str(root), reload_interval=3600))) as client:
        assert client.post("/v1/predict", json=EXAMPLE_LOAN).json()["model"]["version"] == 1
        record = finished(
            client, client.post("/v1/batch-predictions", json={"source": "incoming.csv"})
        )
        # The alias names 2; resolving it again in the job would fail on the corrupt files.
        assert record["params"]["version"] == 1
        assert record["state"] == "succeeded", record["error"]
        assert record["result"]["model"]["version"] == 1
        assert record["result"]["summary"]["scored"] == 40


def test_a_batch_scores_with_what_the_service_serves_until_it_follows_the_alias(
    root: Path,
) -> None:
    with TestClient(create_app(Settings(storage=str(root), reload_interval=3600))) as client:
        move_alias(root, 2)  # not followed yet: /v1/predict still answers with version 1
        assert client.post("/v1/predict", json=EXAMPLE_LOAN).json()["model"]["version"] == 1
        body = {"source": "incoming.csv"}
        record = finished(client, client.post("/v1/batch-predictions", json=body))
        assert record["params"]["version"] == 1
        assert record["result"]["model"]["version"] == 1


def test_a_batch_of_a_model_the_service_does_not_serve_gets_the_aliass_version(
    root: Path,
) -> None:
    move_alias(root, 2)
    settings = Settings(storage=str(root), reload_interval=3600, model_name="another-model")
    with TestClient(create_app(settings)) as client:
        body = {"source": "incoming.csv", "model": "loan-default"}
        record = finished(client, client.post("/v1/batch-predictions", json=body))
        assert record["params"]["version"] == 2
        assert record["result"]["model"]["version"] == 2
