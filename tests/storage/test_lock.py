"""The storage lock: one holder at a time, across threads and processes; a dead holder's lock
taken over; a live holder's waited for, then refused naming what is busy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from loanrisk.errors import Conflict
from loanrisk.storage import MemoryStorage
from loanrisk.storage.lock import storage_lock

LOCK = "locks/thing.lock"


def held_by(storage: MemoryStorage, body: object) -> None:
    storage.write_bytes(LOCK, json.dumps(body).encode())


def test_one_holder_at_a_time_and_the_file_is_gone_after() -> None:
    storage = MemoryStorage()
    inside, overlaps = [0], []

    def hold() -> None:
        with storage_lock(storage, LOCK, busy="busy", wait=10, stale=60, poll=0.01):
            inside[0] += 1
            overlaps.append(inside[0])
            time.sleep(0.02)
            inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1, 1, 1, 1] and not storage.exists(LOCK)


def test_a_dead_holder_s_lock_is_taken_over_at_once() -> None:
    storage = MemoryStorage()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    held_by(storage, {"at": time.time(), "by": f"{socket.gethostname()}:{gone.stdout.strip()}"})
    with storage_lock(storage, LOCK, busy="busy", wait=0, stale=3600):
        pass
    for unreadable in ([1, 2], "x", {"at": 0.0}):  # not a holder's record, or stale
        held_by(storage, unreadable)
        with storage_lock(storage, LOCK, busy="busy", wait=0, stale=3600):
            pass


def test_a_live_holder_is_waited_for_then_refused_with_the_busy_message() -> None:
    storage = MemoryStorage()
    held_by(storage, {"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})
    started = time.monotonic()
    with (
        pytest.raises(Conflict, match="the thing is busy; retry"),
        storage_lock(
            storage, LOCK, busy="the thing is busy; retry", wait=0.2, stale=3600, poll=0.02
        ),
    ):
        pass
    assert time.monotonic() - started >= 0.2
    assert storage.exists(LOCK)  # another holder's lock is left alone


def test_a_refresh_rewrites_the_holder_s_time() -> None:
    storage = MemoryStorage()
    with storage_lock(storage, LOCK, busy="busy", wait=0, stale=60, refresh_every=0) as refresh:
        first = json.loads(storage.read_bytes(LOCK))["at"]
        time.sleep(0.01)
        refresh()
        assert json.loads(storage.read_bytes(LOCK))["at"] > first
