"""Job records on a storage: staleness, cancel markers, locks across replicas."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loanrisk.contracts import JobRecord
from loanrisk.errors import Conflict, InvalidInput, NotFound, StorageError, error_from_dict
from loanrisk.jobs.store import JobStore, now, stamp
from loanrisk.storage import MemoryStorage


@pytest.fixture
def store() -> JobStore:
    return JobStore(MemoryStorage(), "jobs", stale_after=10)


def saved(store: JobStore, record: JobRecord, **changes: object) -> JobRecord:
    record = record.model_copy(update=changes)
    store.save(record)
    return record


def stale() -> str:
    return stamp(now() - timedelta(seconds=11))


def test_a_record_round_trips_and_lists_newest_first(store: JobStore) -> None:
    first = saved(store, store.new("train", {"rounds": 5}, owner="a:1"))
    second = store.new("score", {}, owner="b:2")
    second = saved(store, second, id=second.id.replace("-score-", "-zscore-"))  # same second
    assert store.get(first.id) == first
    assert [r.id for r in store.list()] == [second.id, first.id]
    assert store.list(limit=1)[0].id == second.id
    with pytest.raises(NotFound):
        store.get("job-20260101T000000Z-train-00000000")
    with pytest.raises(InvalidInput):
        store.get("../secrets")
    with pytest.raises(InvalidInput):
        store.new("mine_bitcoin", {}, owner="x")


def test_a_corrupt_record_is_a_storage_error_not_a_crash(store: JobStore) -> None:
    record = saved(store, store.new("train", {}, owner="a:1"))
    store.storage.write_bytes(f"jobs/{record.id}.json", b'{"id": 3}')
    with pytest.raises(StorageError, match="is corrupt"):
        store.get(record.id)


def test_one_bad_file_among_the_records_leaves_the_listing_up(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = saved(store, store.new("train", {}, owner="a:1"))
    bad = saved(store, store.new("train", {}, owner="a:1"))
    store.storage.write_bytes(f"jobs/{bad.id}.json", b'{"garbage": tru')
    store.storage.write_bytes("jobs/notes.json", b"{}")  # no job id
    assert [r.id for r in store.list()] == [good.id]
    assert bad.id in caplog.text and "notes.json" in caplog.text
    with pytest.raises(StorageError, match="is corrupt"):  # read alone, it names the fault
        store.get(bad.id)


def test_a_silent_job_is_failed_for_everyone(store: JobStore) -> None:
    record = saved(
        store, store.new("train", {}, owner="gone:9"), state="running", heartbeat_at=stale()
    )
    seen = store.get(record.id)
    assert seen.state == "failed"
    assert seen.error is not None and seen.error.code == "worker_lost"
    assert "gone:9" in seen.error.message
    fresh = saved(store, store.new("train", {}, owner="alive:1"), state="running")
    assert store.get(fresh.id).state == "running"


def test_reading_never_writes_even_a_stale_job(store: JobStore) -> None:
    record = saved(
        store, store.new("train", {}, owner="gone:9"), state="running", heartbeat_at=stale()
    )
    storage = store.storage
    assert isinstance(storage, MemoryStorage)
    storage.read_only = True
    assert store.get(record.id).state == "failed"
    assert [r.state for r in store.list()] == ["failed"]
    storage.read_only = False
    assert JobRecord.model_validate_json(storage.read_bytes(f"jobs/{record.id}.json")) == record


def test_cancel_markers(store: JobStore) -> None:
    record = saved(store, store.new("train", {}, owner="a:1"))
    assert not store.cancel_requested(record.id)
    store.request_cancel(record.id)
    assert store.cancel_requested(record.id)
    store.clear_cancel(record.id)
    saved(store, record, state="succeeded")
    with pytest.raises(Conflict, match="already succeeded"):
        store.request_cancel(record.id)


def test_a_lock_is_exclusive_until_its_job_ends_or_dies(store: JobStore) -> None:
    holder = saved(store, store.new("train", {}, owner="a:1"), state="running")
    store.acquire("model m", holder.id)
    with pytest.raises(Conflict) as refused:
        store.acquire("model m", "job-20260101T000000Z-train-11111111")
    assert refused.value.details == {"job": holder.id}
    store.acquire("model other", "job-20260101T000000Z-train-22222222")  # other scopes free

    store.release("model m", "job-20260101T000000Z-train-11111111")  # not the holder: no-op
    with pytest.raises(Conflict):
        store.acquire("model m", "job-20260101T000000Z-train-11111111")

    saved(store, holder, heartbeat_at=stamp(now() - timedelta(seconds=60)))  # the replica died
    store.acquire("model m", "job-20260101T000000Z-train-33333333")  # taken over
    store.release("model m", "job-20260101T000000Z-train-33333333")
    store.acquire("model m", "job-20260101T000000Z-train-44444444")


def test_errors_cross_the_process_boundary_as_themselves() -> None:
    error = error_from_dict({"code": "conflict", "message": "busy", "details": {"job": "j"}})
    assert isinstance(error, Conflict)
    assert error.details == {"job": "j"}
    odd = error_from_dict({"code": "worker_lost", "message": "gone"})
    assert odd.code == "worker_lost"
    assert odd.message == "gone"
