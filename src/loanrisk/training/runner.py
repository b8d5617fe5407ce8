"""Running a training job in its own process, so the caller stays responsive.

The child process opens the storage from the settings, runs :func:`run_training`, and sends
progress, the result or the error back over a queue. Cancelling sets an event the child checks
after every round; a cancelled child publishes nothing. A child that dies (killed, out of
memory) is reported as a failure, never waited on forever.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from loanrisk import errors
from loanrisk.settings import Settings
from loanrisk.storage import open_storage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.train import RoundProgress

_ERRORS: dict[str, type[errors.LoanRiskError]] = {
    cls.code: cls
    for cls in (errors.InvalidInput, errors.PathNotAllowed, errors.NotFound, errors.Conflict,
                errors.StorageError, errors.Cancelled)
}  # fmt: skip


def _child(request: TrainingRequest, settings: Settings, out: Any, cancel: Any) -> None:
    try:
        result = run_training(
            request,
            open_storage(settings),
            nthread=settings.nthread,
            progress=lambda p: out.put(("progress", asdict(p))),
            should_cancel=cancel.is_set,
        )
        out.put(("done", {"manifest": result.manifest, "report": result.report,
                          "promoted": result.promoted}))  # fmt: skip
    except errors.LoanRiskError as exc:
        out.put(("error", exc.to_dict()))
    except Exception as exc:  # reported to the parent, which raises it
        out.put(("error", {"code": "internal", "message": f"training failed: {exc!r}"}))


def error_from_dict(doc: dict[str, Any]) -> errors.LoanRiskError:
    cls = _ERRORS.get(str(doc.get("code")), errors.LoanRiskError)
    return cls(str(doc.get("message")), details=doc.get("details") or {})


def train_in_subprocess(
    request: TrainingRequest,
    settings: Settings,
    *,
    on_progress: Callable[[RoundProgress], None] | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = 0.2,
) -> dict[str, Any]:
    """Run the training in a fresh process and return ``{"manifest", "report", "promoted"}``.

    Raises what the job raised (:class:`~loanrisk.errors.Cancelled` after ``cancel`` is set),
    or :class:`~loanrisk.errors.LoanRiskError` when the process died without an answer. An
    interrupt in the caller (Ctrl-C) cancels the child before it propagates.
    """
    context = mp.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    process = context.Process(target=_child, args=(request, settings, events, stop), daemon=True)
    process.start()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                stop.set()
            try:
                kind, payload = events.get(timeout=poll_seconds)
            except queue.Empty:
                if not process.is_alive() and events.empty():
                    code = process.exitcode
                    raise errors.LoanRiskError(
                        f"the training process died without an answer (exit code {code})"
                    ) from None
                continue
            if kind == "progress" and on_progress is not None:
                on_progress(RoundProgress(**payload))
            elif kind == "done":
                result: dict[str, Any] = payload
                return result
            elif kind == "error":
                raise error_from_dict(payload)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
        events.close()
