"""A stored model for the MLflow tests, and a real ``mlflow server`` (SQLite backend, local
artifact root, on 127.0.0.1) from its own environment (requirements/mlflow-server.lock)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

from ..conftest import free_port

#: The MLflow server's own environment, made by `make` beside the test environment.
MLFLOW_SERVER = Path(sys.prefix) / "mlflow-server" / "bin" / "mlflow"


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local storage with the sample processed and version 1 of loan-default (production)."""
    root = tmp_path_factory.mktemp("mlflow") / "store"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(3_000, seed=4)), storage, source="sample")
    run_training(TrainingRequest(rounds=20, params={"max_depth": 4}), storage, nthread=1)
    return root


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tracking URI of a real MLflow server, for the session."""
    assert MLFLOW_SERVER.exists(), "the MLflow server is not installed: run `make test`"
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(MLFLOW_SERVER),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination",
            str(home / "artifacts"),
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # the first start creates and migrates the database
    try:
        while True:
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "mlflow server did not start: " + (home / "server.log").read_text()[-2000:]
                )
            time.sleep(0.5)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
