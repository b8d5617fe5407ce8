"""Schema-driven fuzzing of the real app: schemathesis generates requests from the OpenAPI
document (valid and invalid ones) and checks every answer. The suite fails on any 500, on a
status the document does not list, and on an answer that does not match its schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Generated requests per operation (about 20 operations): a few minutes in all.
EXAMPLES = 30
#: The reference's ``POST /train`` waits for a whole training (a child process, 500 rounds):
#: each valid request costs seconds, so it gets fewer examples and time enough for one.
TRAININGS = 6
TRAINING_TIMEOUT = 120


def _storage(root: Path) -> Path:
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(1_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=3), storage, nthread=1)
    generate_sample(50).to_csv(root / "raw.csv", index=False)
    return root


ROOT = Path(tempfile.mkdtemp(prefix="loanrisk-fuzz-"))
# One job at a time and none queued: generated job requests are mostly refused (429), and
# the few that run, on a 1,000-row dataset, fail or end in seconds.
APP = create_app(
    Settings(
        storage=str(ROOT),
        max_jobs=1,
        max_queued_jobs=0,
        max_size=10_000,
        max_records=100,
        max_inline_rows=100,
    )
)
# The document is read from the app itself (no storage needed for it).
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    _storage(ROOT)
    try:
        with TestClient(APP, raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)


@schema.exclude(path="/train", method="POST").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_documented(case: Any, client: TestClient) -> None:
    case.call_and_validate(session=client, checks=CHECKS)


@schema.include(path="/train", method="POST").parametrize()
@settings(max_examples=TRAININGS, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_waiting_training_route_answers_as_documented(case: Any, client: TestClient) -> None:
    case.call_and_validate(session=client, checks=CHECKS, timeout=TRAINING_TIMEOUT)
