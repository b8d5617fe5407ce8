"""One writer at a time for an alias: moving it reads its record, appends to its history and
writes it back, so two moves at once (two admins, two replicas) would lose one of the two
history entries. The lock is a file created only if absent (``Storage.create_exclusive``),
so it holds across processes and machines on any storage."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator

from loanrisk.errors import Conflict, NotFound
from loanrisk.storage.base import Storage

#: Seconds a move waits for another move of the same alias to end.
WAIT_SECONDS = 10.0
#: A lock older than this was left by a process that died while moving: it is taken over.
STALE_SECONDS = 30.0
_POLL_SECONDS = 0.05


@contextlib.contextmanager
def alias_lock(storage: Storage, path: str, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` while the body runs; ``what`` names the alias in the
    :class:`Conflict` raised when another move holds it for more than :data:`WAIT_SECONDS`."""
    body = json.dumps({"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})
    deadline = time.monotonic() + WAIT_SECONDS
    while not storage.create_exclusive(path, body.encode()):
        try:
            held = json.loads(storage.read_bytes(path))
        except NotFound:
            continue  # released in between
        except ValueError:
            held = {"at": 0.0}  # unreadable: a writer died mid-write
        if time.time() - float(held.get("at", 0.0)) > STALE_SECONDS:
            storage.delete(path)
            continue
        if time.monotonic() > deadline:
            raise Conflict(f"{what} is being moved by another request; retry")
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        storage.delete(path)
