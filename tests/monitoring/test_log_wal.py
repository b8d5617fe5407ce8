"""The prediction log's write-ahead files: what a worker answered is on its local disk before
the answer leaves, rebuilds exactly the rows the log would have held, and is recovered into
the log once (a torn last line skipped and counted, a live owner's files untouched, a second
recovery adding nothing); a batch job's rows reach the log with its results or never."""

from __future__ import annotations

import io
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loanrisk.contracts import ScoreJob
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import StorageError
from loanrisk.inference.scorer import BatchOptions, Scorer
from loanrisk.jobs.cleanup import clean_up
from loanrisk.jobs.tasks import score
from loanrisk.monitoring.log.personal import PersonalFields
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.log.staging import staging_directory
from loanrisk.monitoring.log.wal import wal_directory
from loanrisk.monitoring.log.writer import PredictionLog, Scored
from loanrisk.monitoring.log.writer import recover_written_ahead as recover
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN
from tests.monitoring.logged import scored


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local storage with a small trained model (shared by the module's tests)."""
    path = tmp_path_factory.mktemp("wal") / "store"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return path


@pytest.fixture(scope="module")
def scorer(root: Path) -> Scorer:
    return Scorer(ModelRegistry(FsspecStorage(str(root))).load("loan-default", "production"))


def _calls(scorer: Scorer, start: int) -> list[Scored]:
    """A JSON call of odd raw values (a personal field among them) and a batch's frame."""
    odd = {"person_income": "61000.5", "loan_grade": " b ", "loan_int_rate": None}
    loans = [{**EXAMPLE_LOAN, "id": f"J{start}"}, {**EXAMPLE_LOAN, **odd, "id": f"J{start + 1}"}]
    call = Scored(
        time.time(),
        "req-1",
        "loan-default",
        1,
        scorer.backend.name,
        "v1",
        loans,
        scorer.score_records(loans).results,
        ("id",),
        personal=frozenset({"person_age"}),
    )
    return [call, scored(datetime.now(UTC), [f"F{start}", f"F{start + 1}", f"F{start + 2}"])]


def _record(log: PredictionLog, scorer: Scorer, start: int) -> None:
    for call in _calls(scorer, start):
        log.record(call)


def _died(log: PredictionLog) -> None:
    """What a SIGKILL does to a writer's files: its descriptors close, nothing is written."""
    assert log.wal is not None
    log.wal.rotate()
    os.close(log.wal._lock_fd)
    log._closed = True  # its thread writes nothing more (the buffer dies with the process)


def _segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.wal"))


def _frame(storage: MemoryStorage, directory: str) -> pd.DataFrame:
    rows = read_log(storage, directory, model="loan-default")
    return rows.sort_values(["loan_id"]).reset_index(drop=True)


def _two_logs(wal: Path) -> tuple[MemoryStorage, PredictionLog, PredictionLog]:
    """One storage; a log that buffers only, and one that writes ahead to ``wal`` (nothing
    to recover there yet); both hashing personal fields with one key."""
    storage = MemoryStorage()
    personal = PersonalFields("hash", b"k" * 32)
    buffered = PredictionLog(storage, "buffered", flush_seconds=60, personal=personal)
    ahead = PredictionLog(
        storage, "ahead", flush_seconds=60, personal=personal, write_ahead=str(wal)
    )
    assert ahead.wait_recovered(10) is not None
    return storage, buffered, ahead


def test_a_dead_writer_s_rows_are_recovered_exactly_as_the_log_writes_them(
    scorer: Scorer, tmp_path: Path
) -> None:
    storage, buffered, ahead = _two_logs(tmp_path)
    for call in _calls(scorer, 0):
        buffered.record(call)
        ahead.record(call)
    buffered.close()
    assert _segments(tmp_path), "nothing was written ahead"
    # While its owner lives, a recovery (another worker starting) leaves its files alone.
    assert recover(str(tmp_path), storage, "ahead").segments == 0
    _died(ahead)
    recovered = recover(str(tmp_path), storage, "ahead")
    assert (recovered.writers, recovered.rows, recovered.torn_lines) == (1, 5, 0)
    assert os.listdir(tmp_path) == []  # segments and lock file gone
    expected, got = _frame(storage, "buffered"), _frame(storage, "ahead")
    pd.testing.assert_frame_equal(expected, got)  # every column, the personal hash included
    assert got["features"].str.contains("hmac-sha256:").sum() == 2
    assert set(got["loan_id"]) == {"J0", "J1", "F0", "F1", "F2"}


def test_a_batch_of_requests_is_one_line_whose_rows_keep_each_request_s_id(
    scorer: Scorer, tmp_path: Path
) -> None:
    storage, buffered, ahead = _two_logs(tmp_path)
    # three requests of a batch, the second's first loan refused (not scored, not logged)
    requests = [
        ("req-a", [{**EXAMPLE_LOAN, "id": "A0"}]),
        (
            "req-b",
            [{**EXAMPLE_LOAN, "loan_amnt": "lots", "id": "B0"}, {**EXAMPLE_LOAN, "id": "B1"}],
        ),
        (None, [{**EXAMPLE_LOAN, "person_income": "61000.5", "id": "C0"}]),
    ]
    loans, results, ids = [], [], []
    for request_id, records in requests:
        part = scorer.score_records(records, on_error="skip")
        loans += [records[r.record] for r in part.results]
        results += part.results
        ids += [request_id] * len(part.results)
    for log in (buffered, ahead):
        log.scored_loans(scorer, loans, results, source="v1", request_ids=ids)
    buffered.close()
    segment = next(tmp_path.glob("*.wal")).read_bytes().rstrip(b"\0").splitlines()
    assert len(segment) == 2  # the header and the batch's one line
    _died(ahead)
    assert recover(str(tmp_path), storage, "ahead").rows == 3
    expected, got = _frame(storage, "buffered"), _frame(storage, "ahead")
    # each log timed its item as it was handed it
    pd.testing.assert_frame_equal(expected.drop(columns="time"), got.drop(columns="time"))
    ids_logged = [None if pd.isna(v) else v for v in got["request_id"]]
    assert dict(zip(got["loan_id"], ids_logged, strict=True)) == {
        "A0": "req-a",
        "B1": "req-b",
        "C0": None,
    }
    assert got.loc[got["loan_id"] == "C0", "features"].item().count("61000.5") == 1


def test_a_torn_last_line_is_skipped_and_a_second_recovery_adds_nothing(
    scorer: Scorer, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    log = PredictionLog(storage, "log", flush_seconds=60, write_ahead=str(tmp_path))
    _record(log, scorer, 0)
    _died(log)
    [segment] = _segments(tmp_path)
    lines = (tmp_path / segment).read_bytes().rstrip(b"\0").splitlines(keepends=True)
    assert len(lines) == 3  # the columns' names, then one line per call
    torn = lines[2][: len(lines[2]) // 2]  # killed mid-write
    (tmp_path / segment).write_bytes(lines[0] + lines[1] + torn)
    kept = tmp_path.parent / "kept"
    shutil.copytree(tmp_path, kept)

    first = recover(str(tmp_path), storage, "log")
    assert (first.rows, first.torn_lines) == (2, 1)
    # Killed after writing the log file, before deleting the segment: redone, same names.
    for name in os.listdir(kept):
        shutil.copy(kept / name, tmp_path / name)
    again = recover(str(tmp_path), storage, "log")
    assert (again.segments, again.rows) == (1, 2)
    assert recover(str(tmp_path), storage, "log").segments == 0
    rows = read_log(storage, "log", model="loan-default")
    assert sorted(rows["loan_id"]) == ["J0", "J1"]  # once each


def test_a_write_deletes_its_segments_and_a_clean_shutdown_leaves_none(
    scorer: Scorer, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    log = PredictionLog(storage, "log", flush_seconds=60, write_ahead=str(tmp_path))
    _record(log, scorer, 0)
    assert len(_segments(tmp_path)) == 1
    assert log.flush() == 5
    assert _segments(tmp_path) == []
    _record(log, scorer, 10)
    assert len(_segments(tmp_path)) == 1  # a new segment after the write
    log.close()
    assert os.listdir(tmp_path) == []
    assert len(read_log(storage, "log", model="loan-default")) == 10


def test_where_the_write_ahead_files_live(tmp_path: Path) -> None:
    local = FsspecStorage(str(tmp_path / "store"))
    here = wal_directory(Settings(storage=str(tmp_path / "store")), local, "prediction-log")
    assert here is not None and here.startswith(str(tmp_path / "store" / ".wal"))
    chosen = Settings(storage=str(tmp_path / "store"), log_wal_directory=str(tmp_path / "w"))
    there = wal_directory(chosen, local, "prediction-log")
    assert there is not None and there.startswith(str(tmp_path / "w"))
    assert there != wal_directory(chosen, local, "other-log")  # one folder per log
    assert wal_directory(Settings(log_write_ahead=False), local, "prediction-log") is None
    assert wal_directory(Settings(), MemoryStorage(), "prediction-log") is None
    with pytest.raises(ValueError, match="local directory"):
        Settings(log_wal_directory="s3://bucket/wal")
    (tmp_path / "a-file").write_text("")  # a service refuses to start rather than lose rows
    with pytest.raises(StorageError, match="LOANRISK_LOG_WAL_DIRECTORY"):
        PredictionLog(local, "log", write_ahead=str(tmp_path / "a-file"))


def _job(root: Path, output: str) -> ScoreJob:
    return ScoreJob(
        source="batch.csv",
        output=output,
        model_name="loan-default",
        model_directory="models",
        ref="production",
        version=1,
        id_column="application",
    )


def test_a_batch_job_s_rows_reach_the_log_with_its_results_or_never(
    root: Path, scorer: Scorer
) -> None:
    storage = FsspecStorage(str(root))
    frame = generate_sample(30).drop(columns=["loan_status"])
    frame["application"] = [f"B{i}" for i in range(30)]
    storage.write_bytes("batch.csv", frame.to_csv(index=False).encode())
    settings = Settings(storage=str(root), log_directory="batch-log", nthread=1)

    done = score(_job(root, "out/one.csv"), settings, progress=lambda _: None, should_cancel=bool)
    assert done.summary.scored == 30  # type: ignore[union-attr]
    rows = read_log(storage, "batch-log", model="loan-default")
    assert sorted(rows["loan_id"]) == sorted(frame["application"])
    assert storage.list("batch-log/staging") == []

    # A job killed after staging rows: without its results, the cleanup removes them; a
    # child killed between publishing its results and moving its rows has them moved.
    for output, published in (("out/killed.csv", False), ("out/late.csv", True)):
        job = _job(root, output)
        staged = staging_directory(storage, "batch-log", job.log_staging)
        log = PredictionLog(storage, staged, flush_seconds=60)
        on_scored = log.chunk_recorder(scorer, source="batch", id_column="application")
        scorer.score_csv(
            io.BytesIO(frame.to_csv(index=False).encode()),
            options=BatchOptions(on_scored=on_scored, id_column="application"),
        )
        log.close()
        assert storage.list(staged)
        if published:
            storage.write_bytes(output, b"results")
        clean_up(job, storage, settings)
        assert storage.list(staged) == []
    rows = read_log(storage, "batch-log", model="loan-default")
    assert len(rows) == 60 and rows["loan_id"].value_counts().max() == 2
