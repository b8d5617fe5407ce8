"""The gRPC transport's work bound and cancellation against a real ``loanrisk serve``: a
call over ``max_request_work`` answers RESOURCE_EXHAUSTED (the 413 of HTTP), and a call whose
client gives up (its deadline passes) stops scoring at the next chunk and logs nothing
(``context.add_callback(cancel.cancel)`` in oip/grpc_service.py). The checks run in a process
of their own (tests/oip/grpc_bounds.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.serving.cancel import EXPLAIN_COST
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

from ..conftest import ROOT, free_port, wait_until_serving
from .conftest import LOANRISK

pytestmark = pytest.mark.slow

#: The most loans with reasons one call may ask for (the server's max_request_work).
MOST_LOANS = 60_000


@dataclass(frozen=True)
class Bounded:
    root: Path
    grpc: str
    pid: int


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bounded]:
    root = tmp_path_factory.mktemp("grpc-bounds") / "store"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    # deep enough that thousands of loans' reasons take several seconds
    run_training(TrainingRequest(rounds=150), storage, nthread=1)
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOANRISK_NTHREAD": "1",
        "LOANRISK_GRPC_PORT": str(grpc_port),
        "LOANRISK_LOG_FLUSH_SECONDS": "0.5",
        "LOANRISK_MAX_RECORDS": str(MOST_LOANS + 1),
        "LOANRISK_MAX_REQUEST_WORK": str(EXPLAIN_COST * MOST_LOANS),
    }
    process = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port, "loanrisk serve", timeout=90)
        yield Bounded(root, f"127.0.0.1:{grpc_port}", process.pid)
    finally:
        process.terminate()
        process.wait(30)


def test_grpc_refuses_work_over_the_bound_and_stops_when_the_call_ends(bounded: Bounded) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.oip.grpc_bounds",
            str(bounded.root),
            bounded.grpc,
            str(bounded.pid),
            str(MOST_LOANS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout.count("ok check_") == 2, done.stdout
