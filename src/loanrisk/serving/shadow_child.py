"""The shadow's process: scores what the workers' champions scored with the shadow alias's
version, and writes it to the prediction log (role ``shadow``).

It runs at the lowest CPU priority (nice 19) with its own interpreter, so on a busy machine
the kernel gives the serving workers the cores first and the shadow only what is spare: it
can never hold a worker's interpreter lock, and its slowness shows as a backlog (bounded by
the worker, then counted as dropped), never as latency. It follows the shadow alias as the
workers do (every ``reload_interval``), gathers the JSON loans of waiting requests into calls
of up to :data:`BATCH_ROWS`, and reports what it scored back to its worker, which counts it
in ``/metrics``. It dies with its worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from loanrisk.inference.backends import limit_onedal_threads
from loanrisk.inference.cache import ModelCache
from loanrisk.inference.scorer import Scorer, scorer_from_settings
from loanrisk.jobs.child import die_with_parent
from loanrisk.monitoring.log import SHADOW
from loanrisk.monitoring.log.writer import prediction_log
from loanrisk.registry.models import ModelRegistry
from loanrisk.serving.batching import split_scored
from loanrisk.settings import Settings
from loanrisk.storage import open_storage

log = logging.getLogger("loanrisk.shadow")

#: Most JSON loans scored in one call (about a millisecond of oneDAL for the reference's model).
BATCH_ROWS = 64
#: The process's nice value: the kernel runs the serving workers first.
NICE = 19
#: Seconds between two log lines about one failing shadow version.
QUIET_SECONDS = 60.0


@dataclass(frozen=True)
class Work:
    """Loans the champion scored, for the shadow: JSON records, or a batch's raw chunk (its
    rows ``offset + 1`` on)."""

    directory: str
    model: str
    champion: int
    source: str
    request_id: str | None
    records: Sequence[Mapping[str, Any]] | None = None
    chunk: pd.DataFrame | None = None
    offset: int = 0

    @property
    def rows(self) -> int:
        return len(self.chunk) if self.chunk is not None else len(self.records or ())


def _report(outbox: Any, work: Sequence[Work], **counts: Any) -> None:
    outbox.put({"rows": sum(w.rows for w in work), **counts})


class _Shadow:
    def __init__(self, settings: Settings, outbox: Any) -> None:
        self.settings = settings
        self.outbox = outbox
        self.storage = open_storage(settings)
        self.log = prediction_log(settings, self.storage) if settings.prediction_log else None
        self._caches: dict[tuple[str, str], ModelCache] = {}
        self._complained: dict[tuple[str, int], float] = {}

    def refresh(self) -> None:
        for cache in self._caches.values():
            cache.refresh()

    def _build(self, model: Any) -> Scorer:
        return scorer_from_settings(model, self.settings, nthread=1)

    def scorer(self, work: Work) -> Scorer | None:
        key = (work.directory, work.model)
        cache = self._caches.get(key)
        if cache is None:
            registry = ModelRegistry(self.storage, work.directory)
            cache = ModelCache(
                registry,
                work.model,
                self.settings.shadow_alias or "",
                build=self._build,
                optional=True,
            )
            self._caches[key] = cache
            cache.refresh()
        scorer = cache.serving()
        return None if scorer is None or scorer.version == work.champion else scorer

    def score(self, batch: list[Work]) -> None:
        groups: dict[tuple[str, str], list[Work]] = {}
        for work in batch:
            if work.chunk is not None:
                self._chunk(work)
            else:
                groups.setdefault((work.directory, work.model), []).append(work)
        for group in groups.values():
            self._records(group)

    def _records(self, group: list[Work]) -> None:
        scorer = self.scorer(group[0])
        if scorer is None:  # the alias moved to the champion's version, or is gone
            _report(self.outbox, group, dropped=sum(w.rows for w in group))
            return
        combined = [record for work in group for record in (work.records or ())]
        try:
            scored = scorer.score_records(combined, on_error="skip")
        except Exception as exc:  # the shadow's own failure: counted, never the caller's
            self._failed(scorer, group, exc)
            return
        parts = split_scored(scored, [work.rows for work in group])
        for work, part in zip(group, parts, strict=True):
            if self.log is not None:
                self.log.scored_records(
                    scorer,
                    work.records or (),
                    part,
                    source=work.source,
                    request_id=work.request_id,
                    role=SHADOW,
                )
        _report(
            self.outbox,
            group,
            model=scorer.model.name,
            version=scorer.version,
            scored=len(scored.results),
            refused=len(scored.rejected),
            defaults=sum(r.label for r in scored.results),
        )

    def _chunk(self, work: Work) -> None:
        scorer = self.scorer(work)
        if scorer is None or work.chunk is None:
            _report(self.outbox, [work], dropped=work.rows)
            return
        on_scored = (
            self.log.chunk_recorder(
                scorer, source=work.source, request_id=work.request_id, role=SHADOW
            )
            if self.log is not None
            else None
        )
        try:
            summary = scorer.score_chunk(work.offset, work.chunk, on_scored=on_scored)
        except Exception as exc:
            self._failed(scorer, [work], exc)
            return
        _report(
            self.outbox,
            [work],
            model=scorer.model.name,
            version=scorer.version,
            scored=summary.scored,
            refused=summary.rejected,
            defaults=summary.defaults,
        )

    def _failed(self, scorer: Scorer, work: list[Work], exc: Exception) -> None:
        rows = sum(w.rows for w in work)
        _report(self.outbox, work, failed=rows)
        key = (scorer.model.name, scorer.version)
        now = time.monotonic()
        if now - self._complained.get(key, -QUIET_SECONDS) >= QUIET_SECONDS:
            self._complained[key] = now
            log.warning(
                "shadow version %s of model %s failed on %d loan(s): %s",
                scorer.version,
                scorer.model.name,
                rows,
                exc,
            )

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


#: What a worker sends to end its shadow process (after the lists of work sent before it).
STOP = "stop"


def _batches(work: list[Work]) -> list[list[Work]]:
    """The work in calls of up to :data:`BATCH_ROWS` JSON loans (at least one item each)."""
    batches: list[list[Work]] = []
    rows = BATCH_ROWS
    for item in work:
        if rows + item.rows > BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(item)
        rows += item.rows
    return batches


def lowest_priority(pid: int = 0) -> None:
    """Have process ``pid`` (0: this one) run only when a core would otherwise idle:
    Linux's SCHED_IDLE (a serving thread that wakes takes the core at once), else the
    highest nice value."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, NICE)


def run_shadow(settings: Settings, parent: int, inbox: Any, outbox: Any) -> None:
    """The process's main loop: until :data:`STOP` arrives (its worker's clean shutdown),
    or the worker dies."""
    die_with_parent(parent)
    lowest_priority()
    limit_onedal_threads(1)
    shadow = _Shadow(settings, outbox)
    refreshed = time.monotonic()
    try:
        while True:
            try:
                sent = inbox.get(timeout=settings.reload_interval)
            except queue.Empty:
                sent = None
            if time.monotonic() - refreshed >= settings.reload_interval:
                shadow.refresh()
                refreshed = time.monotonic()
            if isinstance(sent, str):
                break
            for batch in _batches(sent or []):
                shadow.score(batch)
    finally:
        shadow.close()  # its log's last rows
