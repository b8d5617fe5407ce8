"""Shadow scoring: the shadow alias's version scores what the champion scored, off the
response path, into the prediction log (role ``shadow``).

A request hands its loans over (a pointer, nothing copied) and returns; one background thread
per worker scores them. The JSON loans of every waiting request are scored in one call, as the
scoring queue does for the champion. A CSV body's chunks are scored one by one. The queue holds
at most ``max_queued_rows`` loans: beyond, loans are dropped and counted, so a slow shadow
never holds memory or the caller. A shadow that raises fails only its own loans, counted as
``failed``, and loans its schema refuses are counted as ``refused``; the caller's answer was
sent before it ran. The thread is a daemon: on shutdown
the loans still queued are dropped (and counted), never waited for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log import SHADOW, PredictionLog
from loanrisk.service.batching import split_scored
from loanrisk.service.metrics import Metrics

log = logging.getLogger("loanrisk.shadow")

#: Seconds between two log lines about one failing shadow version.
QUIET_SECONDS = 60.0


@dataclass(frozen=True)
class _Records:
    scorer: Scorer
    records: Sequence[Mapping[str, Any]]
    source: str
    request_id: str | None

    @property
    def rows(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class _Chunk:
    scorer: Scorer
    offset: int
    chunk: pd.DataFrame
    source: str
    request_id: str | None

    @property
    def rows(self) -> int:
        return len(self.chunk)


class ShadowScoring:
    """The shadow's queue and thread (one per worker)."""

    def __init__(
        self, *, max_queued_rows: int, log: PredictionLog | None, metrics: Metrics
    ) -> None:
        self.max_queued_rows = max_queued_rows
        self._log = log
        self._metrics = metrics
        self._pending: deque[_Records | _Chunk] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        self._closed = False
        self._complained: dict[tuple[str, int], float] = {}
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    # -- the request path ----------------------------------------------------------------

    def records(
        self,
        scorer: Scorer,
        records: Sequence[Mapping[str, Any]],
        *,
        source: str,
        request_id: str | None,
    ) -> None:
        """Score JSON loans with ``scorer`` later; never blocks."""
        self._put(_Records(scorer, records, source, request_id))

    def chunk(
        self,
        scorer: Scorer,
        offset: int,
        chunk: pd.DataFrame,
        *,
        source: str,
        request_id: str | None,
    ) -> None:
        """Score a batch's chunk (raw rows ``offset + 1`` on) with ``scorer`` later."""
        self._put(_Chunk(scorer, offset, chunk, source, request_id))

    def _put(self, item: _Records | _Chunk) -> None:
        with self._ready:
            if self._closed or self._queued + item.rows > self.max_queued_rows:
                dropped = True
            else:
                self._pending.append(item)
                self._queued += item.rows
                self._ready.notify()
                dropped = False
        if dropped:
            self._metrics.shadow("dropped", item.rows)

    def close(self) -> None:
        """Stop taking loans; those still queued are dropped and counted."""
        with self._ready:
            self._closed = True
            left, self._queued = self._queued, 0
            self._pending.clear()
            self._ready.notify()
        if left:
            self._metrics.shadow("dropped", left)

    # -- the thread ----------------------------------------------------------------------

    def _take(self) -> list[_Records | _Chunk] | None:
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            items = list(self._pending)
            self._pending.clear()
            return items

    def _run(self) -> None:
        while (items := self._take()) is not None:
            groups: dict[int, list[_Records]] = {}
            for item in items:
                if isinstance(item, _Chunk):
                    self._score_chunk(item)
                else:
                    groups.setdefault(id(item.scorer), []).append(item)
            for group in groups.values():
                self._score_records(group)
            with self._ready:
                self._queued = max(0, self._queued - sum(item.rows for item in items))

    def _score_records(self, group: list[_Records]) -> None:
        scorer = group[0].scorer
        rows = sum(item.rows for item in group)
        combined = [record for item in group for record in item.records]
        try:
            scored = scorer.score_records(combined, on_error="skip")
        except Exception as exc:  # the shadow's own failure: counted, never the caller's
            self._failed(scorer, rows, exc)
            return
        parts = split_scored(scored, [item.rows for item in group])
        for item, part in zip(group, parts, strict=True):
            labels = [bool(r["label"]) for r in part["results"]]
            self._metrics.predicted(scorer.model.name, scorer.version, labels, SHADOW)
            if self._log is not None:
                self._log.scored_records(scorer, item.records, part, source=item.source,
                                         request_id=item.request_id, role=SHADOW)  # fmt: skip
        refused = len(scored["rejected"])
        self._metrics.shadow("scored", rows - refused)
        if refused:  # loans the champion took and the shadow's schema does not
            self._metrics.shadow("refused", refused)

    def _score_chunk(self, item: _Chunk) -> None:
        scorer = item.scorer
        on_scored = (self._log.chunk_recorder(scorer, source=item.source,
                                              request_id=item.request_id, role=SHADOW)
                     if self._log is not None else None)  # fmt: skip
        try:
            summary = scorer.score_chunk(item.offset, item.chunk, on_scored=on_scored)
        except Exception as exc:
            self._failed(scorer, item.rows, exc)
            return
        self._metrics.predicted_batch(scorer.model.name, scorer.version, summary, SHADOW)
        self._metrics.shadow("scored", summary["scored"])
        if summary["rejected"]:
            self._metrics.shadow("refused", summary["rejected"])

    def _failed(self, scorer: Scorer, rows: int, exc: Exception) -> None:
        self._metrics.shadow("failed", rows)
        key = (scorer.model.name, scorer.version)
        now = time.monotonic()
        if now - self._complained.get(key, -QUIET_SECONDS) >= QUIET_SECONDS:
            self._complained[key] = now
            log.warning("shadow version %s of model %s failed on %d loan(s): %s",
                        scorer.version, scorer.model.name, rows, exc)  # fmt: skip
