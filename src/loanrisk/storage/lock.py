"""A lock held through the storage itself, so it holds across processes and machines on any
backend: a file created only if absent (:meth:`Storage.create_exclusive`: O_EXCL on a local
disk, a conditional PUT on S3 and Azure), deleted when the holder is done.

A holder that dies leaves its file behind. It is taken over when its holder is a process of
this host that no longer runs, or when it was not refreshed for ``stale`` seconds; a holder
whose work may outlast that refreshes it as it goes. The one lock of the code base: alias
moves (:mod:`loanrisk.registry.alias_lock`) and the prediction log's maintenance and erasures
(:mod:`loanrisk.monitoring.log._lock`) hold it on their own files.
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
def storage_lock(
    storage: Storage,
    path: str,
    *,
    busy: str,
    wait: float,
    stale: float,
    refresh_every: float = 10.0,
    poll: float = 0.1,
) -> Iterator[Callable[[], None]]:
    """Hold the lock file ``path`` while the body runs. The body is given a function to call
    between steps of long work: it rewrites the file's time at most every ``refresh_every``
    seconds, so the lock is not taken for a dead holder's. Another holder is waited for,
    polling every ``poll`` seconds, for at most ``wait`` seconds; then :class:`Conflict`
    with the message ``busy``. A file not refreshed for ``stale`` seconds, unreadable (its
    writer died mid-write), or held by a process of this host that no longer runs, is taken
    over. Threads of one process each wait for the other, as processes do."""
    deadline = time.monotonic() + wait
    while not storage.create_exclusive(path, _body()):
        try:
            held = json.loads(storage.read_bytes(path))
        except NotFound:
            continue  # released in between
        except ValueError:
            held = None
        if not isinstance(held, dict):
            held = {"at": 0.0}  # unreadable: its writer died mid-write
        if time.time() - float(held.get("at", 0.0)) > stale or _dead(held.get("by")):
            storage.delete(path)
            continue
        if time.monotonic() > deadline:
            raise Conflict(busy)
        time.sleep(poll)
    last = time.monotonic()

    def refresh() -> None:
        nonlocal last
        if time.monotonic() - last >= refresh_every:
            storage.write_bytes(path, _body())
            last = time.monotonic()

    try:
        yield refresh
    finally:
        storage.delete(path)
