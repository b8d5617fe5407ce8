"""One maintainer at a time for a model's log: compaction, retention and erasure each rewrite
or delete its files, and two at once could undo each other (a compaction that read a day
before an erasure rewrote it would put the erased rows back). Writers of new files never
take it: they only add files.

The lock is a file created only if absent (``Storage.create_exclusive``), so it holds across
processes and machines; its holder refreshes it as it works. A lock whose holder is a process
of this host that no longer runs, or that was not refreshed for :data:`STALE_SECONDS`, was
left by a process that died, and is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator

from loanrisk.errors import Conflict, NotFound
from loanrisk.storage.base import Storage

#: Seconds a maintainer waits for another to end before giving up (Conflict).
WAIT_SECONDS = 30.0
#: A lock not refreshed for this long is taken over.
STALE_SECONDS = 300.0
#: Least seconds between two refreshes.
REFRESH_SECONDS = 10.0
_POLL_SECONDS = 0.1


def _dead(holder: object) -> bool:
    """Whether ``holder`` (``host:pid``) is a process of this host that no longer runs."""
    host, _, pid = str(holder).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, as another user
        return False
    return False


def _body() -> bytes:
    return json.dumps({"at": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"}).encode()


@contextlib.contextmanager
def maintaining(
    storage: Storage, directory: str, model: str, *, wait: float = WAIT_SECONDS
) -> Iterator[Callable[[], None]]:
    """Hold ``model``'s log lock while the body runs; the body calls the function it is
    given between files to refresh it. Raises :class:`Conflict` when another maintainer
    holds it for more than ``wait`` seconds."""
    path = storage.join(directory, "locks", f"model={model}.lock")
    deadline = time.monotonic() + wait
    while not storage.create_exclusive(path, _body()):
        try:
            held = json.loads(storage.read_bytes(path))
        except NotFound:
            continue  # released in between
        except ValueError:
            held = {"at": 0.0}  # unreadable: a holder died mid-write
        stale = time.time() - float(held.get("at", 0.0)) > STALE_SECONDS
        if stale or _dead(held.get("by")):
            storage.delete(path)
            continue
        if time.monotonic() > deadline:
            raise Conflict(
                f"the prediction log of {model!r} is being compacted or erased by another "
                "process; retry"
            )
        time.sleep(_POLL_SECONDS)
    last = time.monotonic()

    def refresh() -> None:
        nonlocal last
        if time.monotonic() - last >= REFRESH_SECONDS:
            storage.write_bytes(path, _body())
            last = time.monotonic()

    try:
        yield refresh
    finally:
        storage.delete(path)
