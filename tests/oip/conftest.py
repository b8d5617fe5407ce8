"""A real ``loanrisk serve`` (one worker) with two versions of ``loan-default``, for the Open
Inference Protocol clients (tritonclient over HTTP and gRPC, plain HTTP requests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving

SCORE_KEY = "oip-score-key-0123456789"
ADMIN_KEY = "oip-admin-key-0123456789"
LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
LOANS = [
    EXAMPLE_LOAN,
    {**EXAMPLE_LOAN, "person_income": 12_000, "loan_grade": "F"},
    {**EXAMPLE_LOAN, "person_emp_length": None},
]


@dataclass
class Served:
    root: Path
    http: str
    grpc: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SCORE_KEY}"}


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("oip") / "store"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(3_000, seed=2)), storage, source="sample")
    run_training(TrainingRequest(rounds=20, params={"max_depth": 4}), storage, nthread=1)
    run_training(TrainingRequest(rounds=10, continue_from="1", promote=False), storage, nthread=1)
    port, grpc_port = free_port(), free_port()
    env: dict[str, Any] = {
        **os.environ,
        "LOANRISK_NTHREAD": "1",
        "LOANRISK_GRPC_PORT": str(grpc_port),
        "LOANRISK_API_KEYS": f'["score:{SCORE_KEY}","admin:{ADMIN_KEY}"]',
        "LOANRISK_LOG_FLUSH_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port, "loanrisk serve", timeout=60)
        yield Served(root, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
