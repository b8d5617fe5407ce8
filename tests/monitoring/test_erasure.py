"""Erasure of one applicant by loan id: every row of it leaves every log and outcomes file,
the other rows keep their content exactly, files without it are not touched, an audit record
keeps the id's hash (never the id), and a killed erasure leaves every file whole."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from loanrisk.monitoring.log.erasure import Erasure, ErasureRequest, erase_loan, erasure_records
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.monitoring.outcomes import read_outcomes, store_outcomes
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage
from tests.monitoring.logged import scored, write_file
from tests.service.test_servers import LOANRISK
from tests.test_cli import run

ADMIN_KEY = "s3cret-admin-key-0001"
SCORE_KEY = "s3cret-score-key-0001"
GONE = "L-7"


def outcome(loan_id: str) -> dict[str, object]:
    return {"loan_id": loan_id, "defaulted": True, "observed_on": date(2026, 11, 30)}


def fill(storage: Storage) -> None:
    """Three days of log (the loan in two of them, a shadow row too) and two outcomes files
    (the loan in one)."""
    log = PredictionLog(storage, "prediction-log", flush_seconds=3600)
    now = datetime.now(UTC)
    write_file(log, scored(now - timedelta(days=3), ["L-1", GONE, "L-2"]))
    write_file(log, scored(now - timedelta(days=2), ["L-3", "L-4"]))
    write_file(
        log,
        scored(now - timedelta(days=1), [GONE]),
        scored(now - timedelta(days=1), [GONE], shadow=True),
    )
    write_file(log, scored(now - timedelta(days=1), ["L-5", "L-70"]))
    log.close()
    store_outcomes(storage, "outcomes", pd.DataFrame([outcome("L-1"), outcome(GONE)]))
    store_outcomes(storage, "outcomes", pd.DataFrame([outcome("L-3")]))


def parquet_files(storage: Storage, under: str) -> dict[str, bytes]:
    return {p: storage.read_bytes(p) for p in storage.walk_files(under) if p.endswith(".parquet")}


def holds(content: bytes, loan_id: str) -> bool:
    ids = pq.read_table(io.BytesIO(content), columns=["loan_id"])["loan_id"]
    return loan_id in ids.to_pylist()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        storage=str(tmp_path / "store"),
        nthread=1,
        api_keys=(f"privacy-officer=admin:{ADMIN_KEY}", f"score:{SCORE_KEY}"),
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield test_client


def test_an_erasure_removes_every_row_of_the_loan_and_nothing_else(
    client: TestClient, tmp_path: Path
) -> None:
    storage = FsspecStorage(str(tmp_path / "store"))
    fill(storage)
    before = read_log(storage, "prediction-log", model="loan-default")
    files_before = parquet_files(storage, "prediction-log")
    outcomes_before = read_outcomes(storage, "outcomes")

    answer = client.post("/v1/models/loan-default/erasures", json={"loan_id": GONE})

    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["rows"], done["files"]) == (3, 2)  # one champion row, one pair with its shadow
    assert (done["outcome_rows"], done["outcome_files"]) == (1, 1)
    assert done["by"] == "privacy-officer" and done["problems"] == []
    assert done["loan_id_hash"] == "sha256:" + hashlib.sha256(GONE.encode()).hexdigest()
    after = read_log(storage, "prediction-log", model="loan-default")
    expected = before[before["loan_id"] != GONE].reset_index(drop=True)
    pd.testing.assert_frame_equal(after, expected)  # the rest, exactly (L-70 too)
    files_after = parquet_files(storage, "prediction-log")
    untouched = {p for p, b in files_before.items() if not holds(b, GONE)}
    changed = set(files_before) - untouched
    emptied = {
        p
        for p in changed
        if "L-1" not in pq.read_table(io.BytesIO(files_before[p]))["loan_id"].to_pylist()
    }
    assert len(changed) == 2 and len(emptied) == 1
    assert set(files_after) == set(files_before) - emptied  # one rewritten in place, one deleted
    assert not any(holds(b, GONE) for b in files_after.values())
    assert all(files_after[p] == files_before[p] for p in untouched)
    outcomes_after = read_outcomes(storage, "outcomes")
    expected_outcomes = outcomes_before[outcomes_before["loan_id"] != GONE]
    assert (
        sorted(outcomes_after["loan_id"]) == sorted(expected_outcomes["loan_id"]) == ["L-1", "L-3"]
    )
    record = storage.read_bytes(done["record"])
    assert GONE.encode() not in record
    assert json.loads(record) == done
    assert erasure_records(storage, "prediction-log", "loan-default")[0].rows == 3

    again = client.post("/v1/models/loan-default/erasures", json={"loan_id": GONE}).json()
    assert (again["rows"], again["files"], again["outcome_rows"]) == (0, 0, 0)
    assert len(erasure_records(storage, "prediction-log", "loan-default")) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"loan_id": ""}, "at least 1 character"),
        ({"loan_id": "x" * 129}, "at most 128 characters"),
        ({"loan_id": "   "}, "not blank"),
        ({"loan_id": "L-\u00071"}, "control characters"),
        ({"loan_id": "L-\ud800"}, ""),  # refused here, or by the JSON parser
        ({}, "Field required"),
        ({"loan_id": 7}, "valid string"),
        ({"loan_id": "L-1", "reason": "x"}, "Extra inputs"),
    ],
)
def test_an_erasure_refuses_a_bad_loan_id_naming_the_field(
    client: TestClient, body: dict[str, object], message: str
) -> None:
    content = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels escaped
    answer = client.post(
        "/v1/models/loan-default/erasures",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"].startswith("body"), error
    assert message in error["message"], error
    if body.get("loan_id") != 7 and "reason" not in body:
        assert error["details"]["field"] == "body.loan_id"


def test_an_erasure_needs_the_admin_scope_and_a_model_name(client: TestClient) -> None:
    url = "/v1/models/loan-default/erasures"
    body = {"loan_id": GONE}
    scored_key = client.post(url, json=body, headers={"Authorization": f"Bearer {SCORE_KEY}"})
    assert scored_key.status_code == 403
    assert client.post(url, json=body, headers={"Authorization": ""}).status_code == 401
    assert client.post("/v1/models/a..b/erasures", json=body).status_code == 422
    assert (
        client.post(url, content=b"loan_id=L-7", headers={"content-type": "text/plain"}).status_code
        == 415
    )


def erase_command(root: Path, loan_id: str) -> list[str]:
    model = ("--model", "loan-default")
    return [LOANRISK, "monitor", "erase", *model, "--loan-id", loan_id, "--storage", str(root)]


def erase_cli(root: Path, loan_id: str) -> subprocess.CompletedProcess[str]:
    return run(*erase_command(root, loan_id)[1:])


def test_the_cli_erases_and_records_the_user(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = FsspecStorage(str(root))
    fill(storage)
    done = erase_cli(root, GONE)
    assert done.returncode == 0, done.stderr
    assert "3 log row(s) erased from 2 file(s), 1 outcome row(s) from 1" in done.stdout
    assert GONE not in set(read_log(storage, "prediction-log", model="loan-default")["loan_id"])
    [record] = erasure_records(storage, "prediction-log", "loan-default")
    assert record.by.startswith("cli:") and record.rows == 3
    refused = erase_cli(root, "")
    assert refused.returncode == 2 and "--loan-id: String should have at least 1" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_killed_erasure_leaves_every_file_whole_and_a_rerun_completes_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = FsspecStorage(str(root))
    log = PredictionLog(storage, "prediction-log", flush_seconds=3600)
    start = datetime.now(UTC) - timedelta(days=60)
    for day in range(60):  # 60 files of 2,000 rows, each holding the loan once
        ids = [GONE] + [f"K-{day}-{i}" for i in range(1_999)]
        write_file(log, scored(start + timedelta(days=day), ids))
    log.close()
    before = read_log(storage, "prediction-log", model="loan-default")
    paths = sorted((root / "prediction-log").rglob("*.parquet"))
    inodes = {p: p.stat().st_ino for p in paths}

    process = subprocess.Popen(
        erase_command(root, GONE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while all(p.stat().st_ino == inodes[p] for p in paths):  # until a first file is replaced
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)

    rewritten = [p for p in paths if p.stat().st_ino != inodes[p]]
    assert 0 < len(rewritten) < len(paths)  # killed mid-way
    after = read_log(storage, "prediction-log", model="loan-default")  # every file reads
    assert len(after) == len(before) - len(rewritten)  # each file whole: old, or new
    assert erasure_records(storage, "prediction-log", "loan-default") == []

    assert erase_cli(root, GONE).returncode == 0  # the lock of the killed run is stale
    final = read_log(storage, "prediction-log", model="loan-default")
    pd.testing.assert_frame_equal(final, before[before["loan_id"] != GONE].reset_index(drop=True))
    [record] = erasure_records(storage, "prediction-log", "loan-default")
    assert record.rows == len(paths) - len(rewritten)


class SlowOutcomeWrites(MemoryStorage):
    """Memory storage whose rewrite of an outcomes file takes a while: long enough for any
    other erasure running at the same time to read the file in between."""

    def write_bytes(self, path: str, data: bytes) -> None:
        if path.startswith("outcomes/") and path.endswith(".parquet"):
            time.sleep(0.2)
        super().write_bytes(path, data)


def test_two_erasures_of_different_models_at_once_both_leave_the_shared_outcomes() -> None:
    storage = SlowOutcomeWrites()
    for model, loan in (("model-a", "A-1"), ("model-b", "B-1")):
        log = PredictionLog(storage, "prediction-log", flush_seconds=3600)
        write_file(log, scored(datetime.now(UTC), [loan, f"{loan}-kept"], model=model))
        log.close()
    both = ["A-1", "B-1", "kept"]
    store_outcomes(storage, "outcomes", pd.DataFrame([outcome(loan) for loan in both]))
    start = threading.Barrier(2)

    def erase(model: str, loan: str) -> Erasure:
        start.wait()
        return erase_loan(
            storage,
            log_directory="prediction-log",
            outcome_directory="outcomes",
            model=model,
            request=ErasureRequest(loan_id=loan),
            by="test",
        )

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(erase, ["model-a", "model-b"], ["A-1", "B-1"]))

    assert [(e.rows, e.outcome_rows) for e in done] == [(1, 1), (1, 1)]
    assert list(read_outcomes(storage, "outcomes")["loan_id"]) == ["kept"]
    for model, loan in (("model-a", "A-1"), ("model-b", "B-1")):
        ids = read_log(storage, "prediction-log", model=model)["loan_id"].tolist()
        assert ids == [f"{loan}-kept"]
    assert [p for p in storage.walk_files("") if p.endswith(".lock")] == []  # all released
