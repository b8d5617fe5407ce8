"""Running one task of :mod:`loanrisk.jobs.tasks` in a fresh child process.

The child opens the storage from the settings, runs the task, and sends progress, the result
or the error back over a queue. What it logs, and every warning, goes to stderr as one JSON
line per event (:mod:`loanrisk.jobs.logs`), with the job's kind and the child's pid; an
unexpected error is logged there with an id, its traceback inside the line. Cancelling sets
an event the task checks as it goes; a cancelled task publishes nothing. A child that dies
(killed, out of memory) is reported as a failure, never waited on forever. On Linux the
child is also killed when its requester dies, so a crashed server never leaves an orphan
that publishes behind its back.

On Linux, children are forked from a fork server that has imported the task modules once
(``multiprocessing``'s ``forkserver`` with a preload): a job starts in tens of milliseconds
instead of the seconds a fresh interpreter takes to import xgboost, sklearn and pandas. The
child takes the caller's working directory and environment as they are when the job starts,
as a freshly spawned one would. The fork server exits when the process that started it dies,
and its children die with it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue
import select
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loanrisk import errors
from loanrisk.contracts import JOB_KINDS, JobParams, JobProgress
from loanrisk.jobs.logs import log_json_lines
from loanrisk.settings import Settings

if TYPE_CHECKING:
    from pydantic import JsonValue

Progress = Callable[[JobProgress], None]

_PR_SET_PDEATHSIG = 1
#: Seconds a cancelled task may take to stop by itself before it is killed.
CANCEL_GRACE = 5.0


#: The modules a job child needs, imported once by the fork server.
_PRELOAD = ["loanrisk.jobs.tasks"]


def die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this process when ``parent`` dies (no orphans)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)


def _context(start: str | None) -> Any:
    """``start`` ("forkserver" or "spawn"); by default a fork server where there is one
    (Linux: fast starts), else a fresh interpreter."""
    start = start or ("forkserver" if sys.platform == "linux" else "spawn")
    context = mp.get_context(start)
    if start == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return context


def _die_with(requester: int) -> None:
    """Kill this process the moment ``requester`` ends (Linux): a forked child's parent is the
    fork server, which lives as long as any child does, so the kernel's parent-death signal
    would never come."""
    try:
        watched = os.pidfd_open(requester)
    except ProcessLookupError:  # it ended before this child started
        os._exit(1)

    def wait() -> None:
        select.select([watched], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait, name="loanrisk-requester-watch", daemon=True).start()


def _child(
    params: JobParams,
    settings: Settings,
    caller: tuple[int, dict[str, str]],
    out: Any,
    cancel: Any,
) -> None:
    requester, environ = caller
    if sys.platform == "linux":
        _die_with(requester)
    os.environ.clear()
    os.environ.update(environ)
    task = JOB_KINDS[type(params)]
    log_json_lines(job=task, pid=os.getpid())
    try:
        from loanrisk.jobs.results import result_json
        from loanrisk.jobs.tasks import run_task  # preloaded by the fork server: heavy modules

        result = run_task(
            params,
            settings,
            progress=lambda step: out.put(("progress", step)),
            should_cancel=cancel.is_set,
        )
        out.put(("done", result_json(result)))
    except errors.LoanRiskError as exc:
        out.put(("error", exc.to_dict()))
    except Exception:  # logged here with an id; the parent reports the id, not the text
        error_id = uuid.uuid4().hex
        logging.getLogger("loanrisk.jobs").exception("%s failed (error id %s)", task, error_id)
        message = f"unexpected error in {task}; quote error id {error_id}"
        out.put(
            ("error", {"code": "internal", "message": message, "details": {"error_id": error_id}})
        )


def run_in_process(
    params: JobParams,
    settings: Settings,
    *,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = 0.2,
    cancel_grace: float = CANCEL_GRACE,
    start: str | None = None,
) -> dict[str, JsonValue]:
    """Run the task ``params`` describe (its kind: :data:`~loanrisk.contracts.JOB_KINDS`)
    in a child process of its own and return its result as the job record stores it
    (:func:`~loanrisk.jobs.results.result_json`: JSON, as it crossed the process boundary).

    Raises what the task raised (:class:`~loanrisk.errors.Cancelled` after ``cancel`` is set),
    or :class:`~loanrisk.errors.LoanRiskError` when the process died without an answer. An
    interrupt in the caller (Ctrl-C) cancels the child before it propagates. A child that
    has not stopped ``cancel_grace`` seconds after a cancel (stuck in one long step) is
    killed: a cancel always ends the job within seconds. ``start`` picks how the child
    starts (``"forkserver"``, ``"spawn"``); the default is the fork server on Linux.
    """
    task = JOB_KINDS[type(params)]
    context = _context(start)
    events = context.Queue()
    stop = context.Event()
    caller = (os.getpid(), dict(os.environ))  # its directory: multiprocessing carries that
    process = context.Process(
        target=_child, args=(params, settings, caller, events, stop), daemon=True
    )
    process.start()
    cancelled_at: float | None = None
    try:
        while True:
            if cancel is not None and cancel.is_set():
                stop.set()
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > cancel_grace:
                    process.kill()
                    raise errors.Cancelled(f"{task} cancelled: stopped; nothing was published")
            try:
                kind, payload = events.get(timeout=poll_seconds)
            except queue.Empty:
                if not process.is_alive() and events.empty():
                    code = process.exitcode
                    raise errors.LoanRiskError(
                        f"the {task} process died without an answer (exit code {code})"
                    ) from None
                continue
            if kind == "progress" and on_progress is not None:
                on_progress(payload)
            elif kind == "done":
                return dict(payload)
            elif kind == "error":
                raise errors.error_from_dict(payload)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
        events.close()
