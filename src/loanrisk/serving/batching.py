"""Adaptive batching of small scoring requests, on each worker's event loop.

A request queues here and waits; one more turn of the event loop later (every task that
was ready has run, the connections with data were read once more, and their handlers have
run until they wait here too), it scores everything waiting (up to ``max_records`` loans) in
one call and hands each request its own part. An idle server scores a request alone a turn
after its handler waits, a busy one in batches (``loanrisk_scoring_batch_loans``). oneDAL's
cost a loan falls with the batch, the more so as the rest of each request pushes the model
out of the processor's caches between two calls (``benchmarks/bench_onedal_batch.py``, caches
flushed: 87 µs for a loan alone, 44 µs each in a batch of 4, 30 µs each in one of 64).
Waiting that one more turn, rather than scoring once the tasks already ready had run, took
the batches of 32 keep-alive connections on two workers from 9 loans on average (counted
in the queue, before this metric) to 13-14 (as ``benchmarks/bench_overhead.py`` reports),
and the server's CPU a scored request down by 4%.
Requests that ask for reasons (or decline reasons) are scored alone (reason codes cost more
than the batch saves).
The loans of the requests a batch answers are recorded (counted and logged) together, by the
queue's ``recorder``, before any of them is answered (:mod:`~loanrisk.serving.recording`).

Why on the loop and not on a scoring thread of its own (the design until issue 25): at 32
connections a worker's event-loop thread was the bottleneck (73% of the worker's CPU, perf
samples), so the scoring thread was idle whenever a request reached it and scored batches
of one; each request paid two thread hand-offs (a condition's wake-up, the interpreter's
lock passed twice, a ``call_soon_threadsafe`` that wakes the loop through its self-pipe)
for no batching. Scoring a batch holds the loop for its duration, as it held the
interpreter's lock on the thread (only the oneDAL call itself let the loop run): with a
worker per core nothing else was waiting for that core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loanrisk.contracts import OnError
from loanrisk.inference.results import Scored, shifted
from loanrisk.inference.scorer import Scorer
from loanrisk.serving.recording import Call, LogAs

#: Records the answered requests of a batch that ``scorer`` scored (each request's loans,
#: result, and how it is recorded).
Recorder = Callable[[Scorer, Sequence[Call]], None]
#: Told the number of loans of each batch taken from the queue.
BatchObserver = Callable[[int], None]


@dataclass
class _Request:
    scorer: Scorer
    records: Sequence[Mapping[str, Any]]
    on_error: OnError
    explain: bool
    top_k: int
    decline_reasons: bool
    future: asyncio.Future[Scored]
    log_as: LogAs | None

    @property
    def reasons(self) -> bool:
        return self.explain or self.decline_reasons


Outcome = tuple[_Request, Scored | BaseException]


def _deliver(request: _Request, outcome: Scored | BaseException) -> None:
    if request.future.done():  # the client went away
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)


def split_scored(scored: Scored, sizes: Sequence[int]) -> list[Scored]:
    """The results and rejections of one :meth:`Scorer.score_records` call over several
    requests' records put end to end, given back per request (``sizes``: each one's count),
    each ``record`` index counted within its request again."""
    results, rejected = iter(scored.results), iter(scored.rejected)
    next_result, next_rejected = next(results, None), next(rejected, None)
    parts = []
    offset = 0
    for size in sizes:
        end = offset + size
        part = Scored([], [])
        while next_result is not None and next_result.record < end:
            part.results.append(shifted(next_result, -offset))
            next_result = next(results, None)
        while next_rejected is not None and next_rejected.record < end:
            part.rejected.append(shifted(next_rejected, -offset))
            next_rejected = next(rejected, None)
        parts.append(part)
        offset = end
    return parts


class ScoringQueue:
    """The small requests of one event loop, scored in batches of at most ``max_records``
    loans (a request bigger than that alone)."""

    def __init__(
        self,
        *,
        max_records: int = 256,
        recorder: Recorder | None = None,
        observe: BatchObserver | None = None,
    ) -> None:
        self.max_records = max_records
        #: Records the loans of requests scored with ``log_as`` (None: nothing is recorded).
        self.recorder = recorder
        #: Told each batch's number of loans (None: nobody is).
        self.observe = observe
        self._pending: list[_Request] = []
        self._closed = False

    async def score(
        self,
        scorer: Scorer,
        records: Sequence[Mapping[str, Any]],
        *,
        on_error: OnError = "raise",
        explain: bool = False,
        top_k: int = 4,
        decline_reasons: bool = False,
        log_as: LogAs | None = None,
    ) -> Scored:
        """:meth:`Scorer.score_records`, batched with whatever else is waiting; with
        ``log_as``, the loans are recorded (by the queue's recorder) before the result is
        given back, unless it is an error. Raises ``RuntimeError`` once the queue is closed."""
        if self._closed:
            raise RuntimeError("the scoring queue is closed")
        if log_as is not None and self.recorder is None:
            raise RuntimeError("loans to record, and the scoring queue has no recorder")
        loop = asyncio.get_running_loop()
        request = _Request(
            scorer,
            records,
            on_error,
            explain,
            top_k,
            decline_reasons,
            loop.create_future(),
            log_as,
        )
        self._pending.append(request)
        if len(self._pending) == 1:  # the first to wait: score a turn after the ready tasks
            loop.call_soon(self._next_turn, loop)
        return await request.future

    def close(self) -> None:
        """Refuse new requests (those waiting are still scored)."""
        self._closed = True

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        size = 0
        while self._pending and (
            not batch or size + len(self._pending[0].records) <= self.max_records
        ):
            request = self._pending.pop(0)
            batch.append(request)
            size += len(request.records)
        if self.observe is not None:
            self.observe(size)
        return batch

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._take()
        if self._pending:  # over max_records: the rest after the loop's other work
            loop.call_soon(self._flush, loop)
        together: dict[int, list[_Request]] = {}
        outcomes: list[Outcome] = []
        for request in batch:
            if request.reasons:
                outcomes.append(self._score_alone(request))
            else:
                together.setdefault(id(request.scorer), []).append(request)
        for group in together.values():
            outcomes += self._score_together(group)
        failed = self._record(outcomes)
        for request, outcome in outcomes:
            _deliver(request, failed.get(id(request), outcome))

    def _record(self, outcomes: list[Outcome]) -> dict[int, BaseException]:
        """Record the loans of the requests about to be answered, once per scorer; the
        error of each request whose recording failed (by ``id``), which it is answered with
        instead (a bug: 500 with an error id, as for an unrecorded request scored alone)."""
        if self.recorder is None:
            return {}
        calls: dict[int, tuple[Scorer, list[_Request], list[Call]]] = {}
        for request, outcome in outcomes:
            if request.log_as is None or isinstance(outcome, BaseException):
                continue
            if request.future.done():  # the client went away: nothing answered, nothing kept
                continue
            scorer = request.scorer
            _, requests, scored = calls.setdefault(id(scorer), (scorer, [], []))
            requests.append(request)
            scored.append((request.records, outcome, request.log_as))
        failed: dict[int, BaseException] = {}
        for scorer, requests, scored in calls.values():
            try:
                self.recorder(scorer, scored)
            except Exception as exc:
                failed.update((id(request), exc) for request in requests)
        return failed

    @staticmethod
    def _score_alone(request: _Request) -> Outcome:
        try:
            result = request.scorer.score_records(
                request.records,
                on_error=request.on_error,
                explain=request.explain,
                top_k=request.top_k,
                decline_reasons=request.decline_reasons,
            )
        except Exception as exc:  # the request's own error (a bug: 500 with an error id)
            return request, exc
        return request, result

    def _score_together(self, group: list[_Request]) -> list[Outcome]:
        if len(group) == 1:
            return [self._score_alone(group[0])]
        combined = [record for request in group for record in request.records]
        try:
            scored = group[0].scorer.score_records(combined, on_error="skip")
        except Exception:
            # rare (e.g. a record that is not an object): one by one
            return [self._score_alone(request) for request in group]
        parts = split_scored(scored, [len(request.records) for request in group])
        return [
            # a bad record and on_error "raise": scored alone, for the error naming it
            self._score_alone(request)
            if part.rejected and request.on_error == "raise"
            else (request, part)
            for request, part in zip(group, parts, strict=True)
        ]
