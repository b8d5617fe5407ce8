"""Retention of the prediction log: rows older than a model's period are removed by the daily
compaction (files wholly older deleted, a file straddling the cutoff rewritten without its
old rows), recent rows are kept exactly, and the work is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from loanrisk.monitoring.log.compaction import compact_log
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.log.retention import enforce_retention
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
from tests.monitoring.logged import scored, write_file
from tests.test_cli import run

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAYS = 762
CUTOFF = NOW - timedelta(days=DAYS)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return FsspecStorage(str(tmp_path / "store"))
    return open_storage(request.getfixturevalue("s3_settings"))


def files(storage: Storage) -> dict[str, bytes]:
    return {p: storage.read_bytes(p) for p in storage.walk_files("log") if p.endswith(".parquet")}


def test_retention_removes_old_rows_and_keeps_recent_ones_exactly(storage: Storage) -> None:
    log = PredictionLog(storage, "log", flush_seconds=3600)
    old_day = CUTOFF - timedelta(days=10)
    write_file(log, scored(old_day, ["O1", "O2"]))  # a day wholly older: two files
    write_file(log, scored(old_day + timedelta(hours=1), ["O3"]))
    # One file straddling the cutoff: rows an hour before it and an hour after it.
    write_file(
        log,
        scored(CUTOFF - timedelta(hours=1), ["S-old"]),
        scored(CUTOFF + timedelta(hours=1), ["S-new1", "S-new2"]),
    )
    write_file(log, scored(NOW - timedelta(days=1), ["R1", "R2", "R3"]))
    log.close()
    before = read_log(storage, "log", model="loan-default")
    recent_files = {p: b for p, b in files(storage).items() if "day=2026-12-06" in p}

    done = enforce_retention(storage, "log", model="loan-default", days=DAYS, now=NOW)

    assert (done.files_deleted, done.files_rewritten, done.rows_removed) == (2, 1, 4)
    assert done.cutoff == CUTOFF and done.problems == []
    after = read_log(storage, "log", model="loan-default")
    kept = before[before["time"] >= CUTOFF].reset_index(drop=True)
    pd.testing.assert_frame_equal(after, kept)
    assert sorted(after["loan_id"]) == ["R1", "R2", "R3", "S-new1", "S-new2"]
    assert {p: b for p, b in files(storage).items() if "day=2026-12-06" in p} == recent_files
    again = enforce_retention(storage, "log", model="loan-default", days=DAYS, now=NOW)
    assert (again.files_deleted, again.files_rewritten, again.rows_removed) == (0, 0, 0)


def test_retention_reports_an_unreadable_old_file_and_goes_on() -> None:
    storage = MemoryStorage()
    log = PredictionLog(storage, "log", flush_seconds=3600)
    write_file(log, scored(CUTOFF - timedelta(days=3), ["O1"]))
    write_file(log, scored(CUTOFF - timedelta(days=2), ["O2"]))
    log.close()
    bad = sorted(files(storage))[0]
    storage.write_bytes(bad, b"not parquet")

    done = enforce_retention(storage, "log", model="loan-default", days=DAYS, now=NOW)

    assert done.rows_removed == 1 and done.files_deleted == 1
    assert [p.path for p in done.problems] == [bad]
    assert storage.read_bytes(bad) == b"not parquet"  # left for an operator


def test_the_daily_compaction_enforces_each_model_s_retention(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = FsspecStorage(str(root))
    now = datetime.now(UTC)
    log = PredictionLog(storage, "prediction-log", flush_seconds=3600)
    write_file(log, scored(now - timedelta(days=40), ["A1", "A2"]))
    write_file(log, scored(now - timedelta(days=40), ["B1"], model="other"))
    write_file(log, scored(now - timedelta(days=2), ["A3"]))
    write_file(log, scored(now - timedelta(days=2), ["A4"]))
    log.close()
    env = {"LOANRISK_LOG_RETENTION_BY_MODEL": '{"loan-default": 30}'}
    for model in ("loan-default", "other"):
        done = run("monitor", "compact", "--model", model, "--storage", str(root), env=env)
        assert done.returncode == 0, done.stderr
        if model == "loan-default":
            assert "retention 30 days" in done.stdout
            assert "2 row(s) removed, 1 file(s) deleted, 0 rewritten" in done.stdout
            assert "1 day(s) compacted, 2 file(s) merged" in done.stdout
        else:  # the default period: 762 days
            assert "retention 762 days" in done.stdout and "0 row(s) removed" in done.stdout
    rows = read_log(storage, "prediction-log", model="loan-default")
    assert sorted(rows["loan_id"]) == ["A3", "A4"]
    assert read_log(storage, "prediction-log", model="other")["loan_id"].tolist() == ["B1"]


def test_compaction_reports_what_retention_removed() -> None:
    storage = MemoryStorage()
    log = PredictionLog(storage, "log", flush_seconds=3600)
    write_file(log, scored(datetime.now(UTC) - timedelta(days=9), ["X"]))
    log.close()
    done = compact_log(storage, "log", model="loan-default", retention_days=7)
    assert done.retention is not None and done.retention.rows_removed == 1
    assert compact_log(storage, "log", model="loan-default").retention is None


def test_retention_settings_are_checked() -> None:
    assert Settings().retention_days("loan-default") == 762
    assert Settings(log_retention_by_model={"m": 30}).retention_days("m") == 30
    with pytest.raises(ValidationError, match="not a model name"):
        Settings(log_retention_by_model={"../x": 30})
    with pytest.raises(ValidationError, match="1 to 36600 days"):
        Settings(log_retention_by_model={"m": 0})
    with pytest.raises(ValidationError):
        Settings(log_retention_days=0)
