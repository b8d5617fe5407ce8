"""The prediction log: what a row holds, where it goes, what it costs the request path, and
what is lost (nothing on a clean shutdown; the overflow of a full buffer, counted)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx2 as httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import StorageError
from loanrisk.inference.scorer import BatchOptions, Scorer
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.log.writer import PredictionLog, Scored
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN
from tests.conftest import free_port, wait_until_serving
from tests.service.test_servers import LOANRISK


def trained(storage: Storage) -> Scorer:
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return Scorer(ModelRegistry(storage).load("loan-default", "production"))


@pytest.fixture(params=["memory", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "memory":
        return MemoryStorage()
    return open_storage(request.getfixturevalue("s3_settings"))


def test_a_logged_loan_s_raw_values_and_id_round_trip_exactly(storage: Storage) -> None:
    scorer = trained(storage)
    log = PredictionLog(storage, "prediction-log", flush_seconds=60)
    odd = {"person_income": "61000.5", "loan_grade": " b ", "loan_int_rate": None}
    loans = [{**EXAMPLE_LOAN, "id": "L-1"}, {**EXAMPLE_LOAN, **odd}]
    result = scorer.score_records(loans)
    log.scored_records(scorer, loans, result, source="v1", request_id="req-1")
    frame = pd.DataFrame([{**EXAMPLE_LOAN, "application": "A7"}] * 3)
    chunk_log = log.chunk_recorder(scorer, source="batch", id_column="application")
    scorer.score_csv(
        io.BytesIO(frame.to_csv(index=False).encode()),
        options=BatchOptions(on_scored=chunk_log, id_column="application"),
    )
    log.close()

    rows = read_log(storage, "prediction-log", model="loan-default")
    assert len(rows) == 5
    assert [json.loads(f) for f in rows["features"][:2]] == loans
    loan_ids = [None if pd.isna(v) else v for v in rows["loan_id"]]
    assert loan_ids == ["L-1", None, "A7", "A7", "A7"]
    assert rows["request_id"][0] == "req-1" and rows["source"].tolist()[2:] == ["batch"] * 3
    assert rows["probability"].tolist()[:2] == [r.probability for r in result.results]
    assert (rows["version"] == 1).all() and set(rows["backend"]) == {scorer.backend.name}
    assert json.loads(rows["features"][2])["loan_int_rate"] == EXAMPLE_LOAN["loan_int_rate"]
    day = rows["time"][0].strftime("%Y-%m-%d")
    assert storage.list("prediction-log/model=loan-default") == [f"day={day}"]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert read_log(storage, "prediction-log", model="loan-default", since=later).empty
    assert read_log(storage, "prediction-log", model="other").empty
    # Only the rows and columns asked for are read (a comparison reads two versions' scores).
    some = read_log(
        storage,
        "prediction-log",
        model="loan-default",
        versions=[1],
        columns=["probability"],
        until=later,
    )
    assert list(some.columns) == ["time", "version", "role", "probability"]
    assert some["probability"].tolist() == rows["probability"].tolist()
    assert read_log(
        storage, "prediction-log", model="loan-default", versions=[2], columns=["loan_id"]
    ).empty


def test_a_full_buffer_drops_and_counts_and_never_blocks() -> None:
    storage = MemoryStorage()
    scorer = trained(storage)
    dropped: list[int] = []
    log = PredictionLog(
        storage,
        "log",
        flush_seconds=60,
        flush_rows=10_000,
        max_buffered_rows=3,
        on_dropped=dropped.append,
    )
    result = scorer.score_records([EXAMPLE_LOAN] * 2)
    log.scored_records(scorer, [EXAMPLE_LOAN] * 2, result, source="v1")
    log.scored_records(scorer, [EXAMPLE_LOAN] * 2, result, source="v1")  # 4 > 3: dropped
    assert dropped == [2] and log.dropped == 2
    log.close()
    assert len(read_log(storage, "log", model="loan-default")) == 2


def test_a_batch_s_chunks_are_written_as_they_come_and_never_dropped() -> None:
    storage = MemoryStorage()
    scorer = trained(storage)
    log = PredictionLog(storage, "log", flush_seconds=60, max_buffered_rows=3)
    frame = pd.DataFrame([EXAMPLE_LOAN] * 25_000)  # a chunk of 25,000: three slices
    scorer.score_csv(
        io.BytesIO(frame.to_csv(index=False).encode()),
        options=BatchOptions(
            chunk_rows=25_000, on_scored=log.chunk_recorder(scorer, source="batch")
        ),
    )
    assert len(read_log(storage, "log", model="loan-default")) == 25_000  # before the close
    log.close()
    assert log.dropped == 0


class FailingOnce(MemoryStorage):
    """A storage whose first write of a log file fails (an S3 outage, say)."""

    failed = False

    def _fail_once(self, path: str) -> None:
        if path.startswith("log/") and not self.failed:
            self.failed = True
            raise StorageError("the storage is unreachable")

    def write_bytes(self, path: str, data: bytes) -> None:
        self._fail_once(path)
        super().write_bytes(path, data)

    def open_write(self, path: str) -> AbstractContextManager[IO[bytes]]:
        self._fail_once(path)
        return super().open_write(path)


def test_a_failed_write_is_retried_at_the_next_flush() -> None:
    storage = FailingOnce()
    scorer = trained(storage)
    log = PredictionLog(storage, "log", flush_seconds=60)
    log.scored_records(scorer, [EXAMPLE_LOAN], scorer.score_records([EXAMPLE_LOAN]), source="v1")
    assert log.flush() == 0 and storage.failed
    assert log.flush() == 1
    log.close()
    assert len(read_log(storage, "log", model="loan-default")) == 1


class FailingSecondFile(MemoryStorage):
    """A storage that refuses the first write of a log file under ``model=second`` (after
    the same write put ``model=first``'s file)."""

    failed = False

    def write_bytes(self, path: str, data: bytes) -> None:
        if "model=second/" in path and not self.failed:
            self.failed = True
            raise StorageError("the storage is unreachable")
        super().write_bytes(path, data)


def test_a_write_that_failed_part_way_is_retried_without_duplicating_its_first_file() -> None:
    storage = FailingSecondFile()
    scorer = trained(storage)
    log = PredictionLog(storage, "log", flush_seconds=60)
    loans = [{**EXAMPLE_LOAN, "id": "L-1"}]
    scored = scorer.score_records(loans)
    for model in ("first", "second"):
        log.record(
            Scored(time.time(), "r", model, 1, "onedal", "v1", loans, scored.results, ("id",))
        )
    assert log.flush() == 0 and storage.failed  # first's file written, second's refused
    assert len(read_log(storage, "log", model="first")) == 1
    log.scored_records(scorer, loans, scored, source="v1")  # converted before the retry
    assert log.flush() == 3
    log.close()
    assert len(read_log(storage, "log", model="first")) == 1
    assert len(read_log(storage, "log", model="second")) == 1
    assert len(read_log(storage, "log", model="loan-default")) == 1
    assert log.dropped == 0


def test_a_write_goes_to_each_of_its_rows_days_and_models_once() -> None:
    """A write's rows go to the partition of their own model and UTC day, each row once,
    whether the write spans midnight, two models, or (the usual) one model and one day."""
    storage = MemoryStorage()
    scorer = trained(storage)
    log = PredictionLog(storage, "log", flush_seconds=3600)
    loans = [{**EXAMPLE_LOAN, "id": f"L-{i}"} for i in range(3)]
    scored = scorer.score_records(loans)
    midnight = datetime(2026, 12, 7, tzinfo=UTC).timestamp()

    def record(at: float, model: str) -> None:
        log.record(Scored(at, "r", model, 1, "onedal", "v1", loans, scored.results, ("id",)))

    def rows(model: str, day: str) -> list[pd.DataFrame]:
        folder = f"log/model={model}/day={day}"
        return [
            pd.read_parquet(io.BytesIO(storage.read_bytes(f"{folder}/{file}")))
            for file in storage.list(folder)
        ]

    record(midnight - 0.5, "first")
    record(midnight, "first")
    assert log.flush() == 6  # one model, two days
    record(midnight + 1, "first")
    record(midnight + 2, "second")
    assert log.flush() == 6  # one day, two models
    record(midnight + 3, "second")
    assert log.flush() == 3  # one model, one day
    assert storage.list("log/model=first") == ["day=2026-12-06", "day=2026-12-07"]
    assert storage.list("log/model=second") == ["day=2026-12-07"]
    for model, day, times in (
        ("first", "2026-12-06", [[midnight - 0.5]]),
        ("first", "2026-12-07", [[midnight], [midnight + 1]]),
        ("second", "2026-12-07", [[midnight + 2], [midnight + 3]]),
    ):
        files = rows(model, day)
        assert sorted(sorted({t.timestamp() for t in f["time"]}) for f in files) == times
        assert all(sorted(f["loan_id"]) == ["L-0", "L-1", "L-2"] for f in files)
    log.close()


def test_a_batch_chunk_the_storage_refuses_is_counted_and_scoring_goes_on() -> None:
    storage = FailingOnce()
    scorer = trained(storage)
    dropped: list[int] = []
    log = PredictionLog(storage, "log", flush_seconds=60, on_dropped=dropped.append)
    frame = pd.DataFrame([EXAMPLE_LOAN] * 4)
    summary = scorer.score_csv(
        io.BytesIO(frame.to_csv(index=False).encode()),
        options=BatchOptions(chunk_rows=2, on_scored=log.chunk_recorder(scorer, source="batch")),
    )
    log.close()
    assert summary.scored == 4 and dropped == [2]
    assert len(read_log(storage, "log", model="loan-default")) == 2


def test_the_flush_interval_writes_without_a_shutdown() -> None:
    storage = MemoryStorage()
    scorer = trained(storage)
    log = PredictionLog(storage, "log", flush_seconds=0.2)
    log.scored_records(scorer, [EXAMPLE_LOAN], scorer.score_records([EXAMPLE_LOAN]), source="v1")
    deadline = time.monotonic() + 10
    while read_log(storage, "log", model="loan-default").empty:
        assert time.monotonic() < deadline, "the interval flush never wrote"
        time.sleep(0.05)
    log.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    root = tmp_path / "store"
    trained(FsspecStorage(str(root)))
    generate_sample(20).to_csv(root / "batch.csv", index=False)
    settings = Settings(
        storage=str(root),
        nthread=1,
        api_keys=("admin:s3cret-admin-key",),
        log_flush_seconds=0.2,
        job_heartbeat=0.2,
        job_stale_after=1.0,
    )
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["Authorization"] = "Bearer s3cret-admin-key"
        yield test_client


def test_every_route_that_scores_logs_and_the_log_never_holds_a_key(
    client: TestClient, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    json_answer = client.post(
        "/v1/predict",
        json={"records": [{**EXAMPLE_LOAN, "id": "J1"}]},
        headers={"x-request-id": "rid-json"},
    )
    assert json_answer.status_code == 200, json_answer.text
    assert not any("ignored" in w for w in json_answer.json()["results"][0]["warnings"])
    csv = generate_sample(4).drop(columns=["loan_status"]).to_csv(index=False)
    assert (
        client.post("/v1/predict", content=csv, headers={"content-type": "text/csv"}).status_code
        == 200
    )
    legacy = client.post(
        "/predict",
        json={"model_name": "loan-default", "model_key": "models", "sample": [EXAMPLE_LOAN]},
    )
    assert legacy.status_code == 200, legacy.text
    job = client.post("/v1/batch-predictions", json={"source": "batch.csv"})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 60
    while client.get(job.headers["location"]).json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    storage = FsspecStorage(str(root))
    deadline = time.monotonic() + 10
    while len(rows := read_log(storage, "prediction-log", model="loan-default")) < 26:
        assert time.monotonic() < deadline, rows["source"].value_counts()
        time.sleep(0.1)
    counts = rows["source"].value_counts().to_dict()
    assert counts == {"v1": 1, "v1-csv": 4, "reference": 1, "batch": 20}
    first = rows[rows["source"] == "v1"].iloc[0]
    assert first["loan_id"] == "J1" and first["request_id"] == "rid-json"
    for path in (root / "prediction-log").rglob("*.parquet"):
        assert b"s3cret-admin-key" not in path.read_bytes()
    metrics = client.get("/metrics").text
    assert 'loanrisk_prediction_log_rows_total{outcome="dropped"}' not in metrics


def test_the_cli_logs_what_it_scores(tmp_path: Path) -> None:
    root = tmp_path / "store"
    trained(FsspecStorage(str(root)))
    loans = tmp_path / "loans.csv"
    generate_sample(7).to_csv(loans, index=False)
    done = subprocess.run(
        [LOANRISK, "predict", str(loans), "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")
    assert rows["source"].tolist() == ["cli"] * 7
    off = subprocess.run(
        [LOANRISK, "predict", str(loans), "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "LOANRISK_PREDICTION_LOG": "false"},
    )
    assert off.returncode == 0
    assert len(read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")) == 7


def test_two_replicas_logging_at_once_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    trained(FsspecStorage(str(root)))
    servers, bases = [], []
    for _ in range(2):
        port = free_port()
        server = subprocess.Popen(
            [LOANRISK, "serve", "--port", str(port), "--storage", str(root), "--workers", "2"],
            env={**os.environ, "LOANRISK_LOG_FLUSH_SECONDS": "0.5", "LOANRISK_NTHREAD": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        servers.append(server)
        wait_until_serving(server, port, "loanrisk serve", timeout=60)
        bases.append(f"http://127.0.0.1:{port}")
    sent = 0
    try:
        with httpx.Client(timeout=30) as http:
            for i in range(100):
                base = bases[i % 2]
                body: Any = [{**EXAMPLE_LOAN, "id": f"{i}-{k}"} for k in range(3)]
                answer = http.post(f"{base}/v1/predict", json=body)
                assert answer.status_code == 200, answer.text
                sent += 3
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)  # a clean shutdown flushes every worker
        for server in servers:
            server.wait(60)
    rows = read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")
    assert len(rows) == sent == 300
    assert rows["loan_id"].nunique() == 300
    writers = {p.name.rsplit("-", 1)[0] for p in (root / "prediction-log").rglob("*.parquet")}
    assert len(writers) >= 2  # every process (replica or worker) writes its own files


def test_compaction_merges_past_days_and_keeps_every_row(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path / "store"))
    scorer = trained(storage)
    yesterday = time.time() - 86_400
    log = PredictionLog(storage, "log", flush_seconds=60)
    for i in range(3):  # three writes of yesterday, one of today
        loans = [{**EXAMPLE_LOAN, "id": f"Y{i}"}]
        log.record(
            Scored(
                yesterday + i,
                None,
                "loan-default",
                1,
                "xgboost",
                "v1",
                loans,
                scorer.score_records(loans).results,
                ("id",),
            )
        )
        log.flush()
    log.scored_records(
        scorer, [{**EXAMPLE_LOAN, "id": "T"}], scorer.score_records([EXAMPLE_LOAN]), source="v1"
    )
    log.close()
    before = read_log(storage, "log", model="loan-default")
    folder = tmp_path / "store" / "log" / "model=loan-default"
    env = {**os.environ, "LOANRISK_LOG_DIRECTORY": "log"}
    done = subprocess.run(
        [LOANRISK, "monitor", "compact", "--storage", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "1 day(s) compacted, 3 file(s) merged" in done.stdout
    days = sorted(folder.iterdir())
    assert [len(list(d.glob("*.parquet"))) for d in days] == [1, 1]
    assert next(days[0].glob("*.parquet")).name.startswith("compacted-")
    after = read_log(storage, "log", model="loan-default")
    pd.testing.assert_frame_equal(before, after)
