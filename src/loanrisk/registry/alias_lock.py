"""One writer at a time for an alias: moving it reads its record, appends to its history and
writes it back, so two moves at once (two admins, two replicas) would lose one of the two
history entries. The lock is a file created only if absent (``Storage.create_exclusive``),
so it holds across processes and machines on any storage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from loanrisk.storage.base import Storage
from loanrisk.storage.lock import storage_lock

#: Seconds a move waits for another move of the same alias to end.
WAIT_SECONDS = 10.0
#: A lock older than this was left by a process that died while moving: it is taken over.
STALE_SECONDS = 30.0
_POLL_SECONDS = 0.05


@contextlib.contextmanager
def alias_lock(storage: Storage, path: str, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` while the body runs (a
    :func:`~loanrisk.storage.lock.storage_lock`); ``what`` names the alias in the
    :class:`~loanrisk.errors.Conflict` raised when another move holds it for more than
    :data:`WAIT_SECONDS`."""
    busy = f"{what} is being moved by another request; retry"
    with storage_lock(
        storage, path, busy=busy, wait=WAIT_SECONDS, stale=STALE_SECONDS, poll=_POLL_SECONDS
    ):
        yield
