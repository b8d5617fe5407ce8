"""Shadow scoring, the worker's side: the loans the champion scored are handed to the
worker's shadow process (:mod:`loanrisk.serving.shadow_child`) after the answer is made.

Handing over appends a pointer to a list; a thread of the worker sends the list to the
process every :data:`SEND_SECONDS` (one pickling and one pipe write for all the requests of
that time, not one per request), so a request never waits on the shadow. The loans in flight
(handed over, not yet reported back) are bounded by ``shadow_max_queued_rows``: beyond it,
loans are dropped and counted. A thread
reads the process's reports and counts them in ``/metrics`` (``loanrisk_shadow_rows_total``
by outcome, and ``loanrisk_predictions_total`` with ``role="shadow"``). On a clean shutdown
the process scores what was sent before, writes its log and exits; a process that does not
end within :data:`STOP_SECONDS` is killed.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from loanrisk.inference.cache import ModelCache
from loanrisk.monitoring.log import SHADOW
from loanrisk.serving.metrics import Metrics
from loanrisk.serving.shadow_child import STOP, Work, lowest_priority, run_shadow
from loanrisk.settings import Settings

log = logging.getLogger("loanrisk.shadow")

#: Seconds a shadow process may take to finish its work at shutdown before it is killed.
STOP_SECONDS = 10.0
#: Seconds between two sendings of the handed-over loans to the process.
SEND_SECONDS = 0.05
OUTCOMES = ("scored", "refused", "dropped", "failed")


class ShadowScoring:
    """One worker's shadow process, its bounded hand-over and its reports."""

    def __init__(self, settings: Settings, *, metrics: Metrics) -> None:
        self.max_queued_rows = settings.shadow_max_queued_rows
        self._metrics = metrics
        context = mp.get_context("spawn")
        self._inbox: Any = context.Queue()
        self._outbox: Any = context.Queue()
        self._process = context.Process(
            target=run_shadow,
            args=(settings, os.getpid(), self._inbox, self._outbox),
            name="loanrisk-shadow",
            daemon=True,
        )
        self._process.start()
        assert self._process.pid is not None
        lowest_priority(self._process.pid)  # already while it imports and loads the model
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False
        self._waiting: list[Work] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="shadow-reports", daemon=True)
        self._reader.start()
        self._sender = threading.Thread(target=self._send_every, name="shadow-send", daemon=True)
        self._sender.start()

    # -- the request path ----------------------------------------------------------------

    def records(
        self,
        cache: ModelCache,
        champion: int,
        records: Sequence[Mapping[str, Any]],
        *,
        source: str,
        request_id: str | None,
    ) -> None:
        """Have the shadow score JSON loans the champion (version ``champion``) scored."""
        self._send(
            Work(cache.registry.root, cache.name, champion, source, request_id, records=records)
        )

    def chunk(
        self,
        cache: ModelCache,
        champion: int,
        offset: int,
        chunk: pd.DataFrame,
        *,
        source: str,
        request_id: str | None,
    ) -> None:
        """Have the shadow score a batch's chunk (raw rows ``offset + 1`` on)."""
        self._send(
            Work(
                cache.registry.root,
                cache.name,
                champion,
                source,
                request_id,
                chunk=chunk,
                offset=offset,
            )
        )

    def _send(self, work: Work) -> None:
        rows = work.rows
        with self._lock:
            accepted = not self._closed and self._in_flight + rows <= self.max_queued_rows
            if accepted:
                self._in_flight += rows
                self._waiting.append(work)
        if not accepted:
            self._metrics.shadow("dropped", rows)

    def _send_every(self) -> None:
        while not self._stop.wait(SEND_SECONDS):
            self._send_waiting()

    def _send_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        if batch:
            self._inbox.put(batch)

    # -- reports -------------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            report = self._outbox.get()
            if report is None:
                return
            with self._lock:
                self._in_flight -= int(report["rows"])
            for outcome in OUTCOMES:
                if report.get(outcome):
                    self._metrics.shadow(outcome, int(report[outcome]))
            if "version" in report:
                self._metrics.predicted_counts(
                    report["model"],
                    int(report["version"]),
                    scored=int(report["scored"]),
                    defaults=int(report["defaults"]),
                    role=SHADOW,
                )

    def close(self) -> None:
        """Stop taking loans; the process scores what it was sent and writes its log."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._sender.join(STOP_SECONDS)
        self._send_waiting()
        self._inbox.put(STOP)
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            log.warning("the shadow process did not finish within %s s; killed", STOP_SECONDS)
            self._process.kill()
            self._process.join()
        self._outbox.put(None)
        self._reader.join(STOP_SECONDS)
        self._inbox.close()
