"""One maintainer at a time for a model's log, and one erasure at a time for the outcomes.

Compaction, retention and erasure each rewrite or delete a model's log files, and two at once
could undo each other (a compaction that read a day before an erasure rewrote it would put the
erased rows back): they hold the model's lock (:func:`maintaining`). The outcomes files are
shared by every model, so two erasures of different models would each rewrite the same file
from what it held before the other's rewrite, and one erasure's rows would come back: an
erasure holds the outcomes lock too (:func:`erasing_outcomes`), taken after its model's lock
and never the other way round, so two erasures cannot wait for each other. Writers of new
files never take either: they only add files.

Both are a :func:`~loanrisk.storage.lock.storage_lock` (holds across processes and machines;
a lock whose holder died is taken over).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from loanrisk.storage.base import Storage
from loanrisk.storage.lock import storage_lock

#: Seconds a maintainer waits for another to end before giving up (Conflict).
WAIT_SECONDS = 30.0
#: A lock not refreshed for this long is taken over.
STALE_SECONDS = 300.0
#: Least seconds between two refreshes.
REFRESH_SECONDS = 10.0
#: The outcomes lock's file, under the outcome directory (its listings read only Parquet).
OUTCOMES_LOCK = "locks/erasure.lock"


def _lock(
    storage: Storage, path: str, busy: str, wait: float
) -> AbstractContextManager[Callable[[], None]]:
    return storage_lock(
        storage, path, busy=busy, wait=wait, stale=STALE_SECONDS, refresh_every=REFRESH_SECONDS
    )


def maintaining(
    storage: Storage, directory: str, model: str, *, wait: float = WAIT_SECONDS
) -> AbstractContextManager[Callable[[], None]]:
    """Hold ``model``'s log lock while the body runs; the body calls the function it is
    given between files to refresh it. Raises :class:`~loanrisk.errors.Conflict` when
    another maintainer holds it for more than ``wait`` seconds."""
    path = storage.join(directory, "locks", f"model={model}.lock")
    busy = f"the prediction log of {model!r} is being compacted or erased by another process; retry"
    return _lock(storage, path, busy, wait)


def erasing_outcomes(
    storage: Storage, directory: str, *, wait: float = WAIT_SECONDS
) -> AbstractContextManager[Callable[[], None]]:
    """Hold the lock of the outcomes under ``directory`` while the body runs (as
    :func:`maintaining` holds a model's); :class:`~loanrisk.errors.Conflict` when another
    erasure holds it for more than ``wait`` seconds."""
    busy = "another erasure is rewriting the outcomes; retry"
    return _lock(storage, storage.join(directory, OUTCOMES_LOCK), busy, wait)
