"""A corrupt model version never takes the service down, and no alias moves to one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Versions 1 (production) and 2, whose model file is corrupt on the storage."""
    path = tmp_path / "share"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    run_training(TrainingRequest(rounds=5, promote=False), storage, nthread=1)
    model = path / "models" / "loan-default" / "versions" / "2" / "model.ubj"
    model.write_bytes(model.read_bytes()[:-100] + b"\0" * 100)
    return path


def production(root: Path) -> int:
    alias = root / "models" / "loan-default" / "aliases" / "production.json"
    return int(json.loads(alias.read_text())["version"])


def force_alias(root: Path, version: int) -> None:
    """Move the alias behind the registry's back (an older loanrisk, a hand edit, a restore)."""
    alias = root / "models" / "loan-default" / "aliases" / "production.json"
    record = json.loads(alias.read_text())
    record["history"].append({"version": version, "at": "2026-11-29T00:00:00+00:00"})
    alias.write_text(json.dumps({**record, "version": version, "previous": record["version"]}))


def test_promoting_a_corrupt_version_is_refused_over_http_and_the_alias_stays(root: Path) -> None:
    with TestClient(create_app(Settings(storage=str(root)))) as client:
        response = client.put("/v1/models/loan-default/aliases/production", json={"version": 2})
        assert response.status_code == 409, response.text
        message = response.json()["error"]["message"]
        assert "version 2 cannot be served" in message
        assert "does not match its recorded hash" in message
        assert str(root) not in response.text
        assert production(root) == 1
        assert client.post("/v1/predict", json=EXAMPLE_LOAN).json()["model"]["version"] == 1


def test_promoting_a_corrupt_version_is_refused_by_the_cli(root: Path) -> None:
    result = subprocess.run(
        [LOANRISK, "models", "promote", "loan-default", "2", "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "version 2 cannot be served" in result.stderr
    assert "Traceback" not in result.stderr
    assert production(root) == 1


def test_a_fresh_start_on_a_corrupt_alias_serves_the_previous_version(root: Path) -> None:
    force_alias(root, 2)
    with TestClient(create_app(Settings(storage=str(root)))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["model"]["version"] == 1
        assert "version 2, which failed to load" in ready["model_problem"]
        assert "serving version 1" in ready["model_problem"]
        assert client.post("/v1/predict", json=EXAMPLE_LOAN).json()["model"]["version"] == 1
        metrics = client.get("/metrics").text
        assert 'loanrisk_model_load_failures_total{model="loan-default",version="2"} 1.0' in metrics


def test_a_running_service_keeps_its_model_when_the_alias_moves_to_a_corrupt_one(
    root: Path,
) -> None:
    settings = Settings(storage=str(root), reload_interval=0.05)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["model_problem"] is None
        force_alias(root, 2)
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["model_problem"] is None:
            assert time.monotonic() < deadline, "the failed load was never reported"
            time.sleep(0.05)
        time.sleep(0.3)  # several reload ticks: a failed version is not retried on each
        assert client.post("/v1/predict", json=EXAMPLE_LOAN).json()["model"]["version"] == 1
        metrics = client.get("/metrics").text
        assert 'loanrisk_model_load_failures_total{model="loan-default",version="2"} 1.0' in metrics


def test_a_start_with_only_corrupt_versions_still_answers_health_checks(tmp_path: Path) -> None:
    path = tmp_path / "share"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    (path / "models" / "loan-default" / "versions" / "1" / "feature_spec.json").write_text("{")
    with TestClient(create_app(Settings(storage=str(path)))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz").json()
        assert ready["model"] is None
        assert "version 1, which failed to load" in ready["model_problem"]
        scored = client.post("/v1/predict", json=EXAMPLE_LOAN)
        assert scored.status_code == 409
        assert "failed to load" in scored.json()["error"]["message"]
    assert ModelRegistry(storage).resolve("loan-default", "production") == 1
