"""Bounded, cancellable scoring work, whatever transport carries the request.

* :class:`Cancellation`: the transport's signal that nobody waits for an answer any more (an
  HTTP client that disconnected, a gRPC call that ended). The core checks it between the
  chunks of a big request and stops at the next one; what was scored of it is neither
  counted nor logged. The transport decides how it learns of the disconnect; the core only
  asks it to start watching (:meth:`Cancellation.watch`) for a request big enough to chunk,
  so a small request pays for no watcher.
* :func:`check_work`: a request's cost in loan-units (one loan scored = 1; with reasons,
  :data:`EXPLAIN_COST` each), refused with :class:`~loanrisk.errors.TooLarge` (413) over the
  ``max_request_work`` setting, before anything is scored.
* :class:`ParseBudget`: the bytes of request bodies a worker holds parsed at once; a body
  waits for room (then 429) instead of multiplying the parser's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

from loanrisk.errors import Cancelled, TooBusy, TooLarge
from loanrisk.settings import Settings

#: What scoring a loan with its reasons (``explain`` or ``decline_reasons``) costs, in loans
#: scored without, on the reference's model (500 trees of depth 10): requests of 100 to
#: 1,000 loans with reasons took 82 to 296 times as long as without over HTTP (median about
#: 150, ``benchmarks/bench_cancel.py`` on a busy 2-core machine), 174 times in-process
#: (``Scorer.score_records``, 300 loans). Reasons are TreeSHAP contributions, whose cost
#: grows with the trees' leaves and depth, where a score's grows with the trees alone.
EXPLAIN_COST = 150


class ClientGone(Cancelled):
    """The caller went away before its answer was made: the rest of its request is not
    scored, and nothing of it is counted or logged."""

    code = "client_gone"


class Cancellation:
    """Set once (from any thread) when the answer is no longer wanted.

    ``until_gone``, when given, is the transport's wait for its client to go away (an HTTP
    disconnect); :meth:`watch`, which the core calls once it knows a request is big enough
    to be scored in chunks, awaits it in a task and cancels when it returns. :meth:`stop`
    ends that task (the transport calls it when the request is done)."""

    __slots__ = ("_event", "_task", "_until_gone")

    def __init__(self, until_gone: Callable[[], Awaitable[object]] | None = None) -> None:
        self._event = threading.Event()
        self._until_gone = until_gone
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """Start watching for the client to go away (once, on the running event loop; a
        no-op without ``until_gone``)."""
        until_gone, self._until_gone = self._until_gone, None
        if until_gone is not None:
            self._task = asyncio.get_running_loop().create_task(self._listen(until_gone))

    async def _listen(self, until_gone: Callable[[], Awaitable[object]]) -> None:
        with contextlib.suppress(Exception):  # a broken connection is a gone client too
            await until_gone()
        self.cancel()

    def stop(self) -> None:
        """Stop watching (the request is done)."""
        self._until_gone = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`ClientGone` once cancelled."""
        if self._event.is_set():
            raise ClientGone("the client went away: scoring stopped")


def work_units(loans: int, *, reasons: bool) -> int:
    """A request's cost in loan-units: ``loans``, times :data:`EXPLAIN_COST` with reasons."""
    return loans * (EXPLAIN_COST if reasons else 1)


def check_work(settings: Settings, loans: int, *, reasons: bool) -> None:
    """Refuse (:class:`TooLarge`, 413) a request whose cost is over ``max_request_work``,
    naming the bound and the cost."""
    cost = work_units(loans, reasons=reasons)
    bound = settings.max_request_work
    if cost > bound:
        per = f" ({EXPLAIN_COST} units a loan with reasons)" if reasons else ""
        raise TooLarge(
            f"{loans:,} loans cost {cost:,} loan-units{per}: at most {bound:,} a request "
            "(setting max_request_work)",
            details={"field": "body", "cost": cost, "max_request_work": bound},
        )


class ParseBudget:
    """The bytes of JSON bodies one worker parses and holds at once (one event loop).

    Parsing a JSON body of ``n`` bytes makes Python objects of up to about 25 ``n``; a
    request holds its body's share from before it is parsed until its answer is made.
    Beyond the budget a body waits (at most ``wait`` seconds; then :class:`TooBusy`, 429
    with Retry-After); a body larger than the budget is parsed alone."""

    def __init__(self, budget: int, *, wait: float) -> None:
        self.budget = budget
        self.wait = wait
        self.held = 0
        self._freed: asyncio.Condition | None = None

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.budget

    def hold(self, size: int) -> _Held:
        """Hold ``size`` bytes of the budget for an ``async with`` block."""
        return _Held(self, size)

    async def _acquire(self, size: int) -> None:
        if not self._fits(size):
            if self._freed is None:
                self._freed = asyncio.Condition()
            try:
                async with self._freed:
                    await asyncio.wait_for(
                        self._freed.wait_for(lambda: self._fits(size)), self.wait
                    )
            except TimeoutError:
                raise TooBusy(
                    f"{self.held:,} bytes of request bodies are being parsed: retry shortly "
                    "(setting max_parsing_bytes)",
                    retry_after=1,
                ) from None
        self.held += size

    async def _release(self, size: int) -> None:
        self.held -= size
        if self._freed is not None:
            async with self._freed:
                self._freed.notify_all()


class _Held:
    """One body's share of a :class:`ParseBudget` (a class, not a generator: a request
    that need not wait pays a few hundred nanoseconds)."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: ParseBudget, size: int) -> None:
        self.budget = budget
        self.size = size

    async def __aenter__(self) -> None:
        await self.budget._acquire(self.size)

    async def __aexit__(self, *exc: object) -> None:
        await self.budget._release(self.size)


def holding(budget: ParseBudget | None, size: int) -> contextlib.AbstractAsyncContextManager[None]:
    """``budget.hold(size)``, or nothing without a budget."""
    return budget.hold(size) if budget is not None else contextlib.nullcontext()
