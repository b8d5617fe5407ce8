"""A scoring request as the routing settings say: the champion answers (the canary a sticky
share of the loans), each role's loans are counted and logged, and the shadow is handed the
loans after the answer is made. Every transport (the v1 and reference routes, OIP over REST
and gRPC) scores through this, each request with the one :class:`Routing` snapshot it took
(:meth:`~loanrisk.inference.cache.ModelCache.snapshot`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd

from loanrisk.contracts import OnError
from loanrisk.errors import Conflict, TooLarge
from loanrisk.inference.cache import ModelCache, Routing
from loanrisk.inference.records import require_clean
from loanrisk.inference.results import BatchSummary, LoanScore, Rejection, Scored, shifted
from loanrisk.inference.scorer import BatchOptions, Scorer
from loanrisk.monitoring.log import CANARY, CHAMPION
from loanrisk.registry.models import ModelRegistry, check_name
from loanrisk.serving.cancel import Cancellation, check_work, work_units
from loanrisk.serving.logs import request_id
from loanrisk.serving.recording import LogAs, record_call
from loanrisk.serving.state import Services
from loanrisk.serving.threads import off_loop
from loanrisk.settings import Settings

#: Requests with at most this many loans are batched on the worker's event loop.
SMALL_REQUEST = 64


@dataclass(frozen=True)
class Answer:
    """The merged result (``results`` in request order, each naming its ``version``, and
    ``rejected``), the champion's scorer, and the canary's when it answered any loan."""

    result: Scored
    champion: Scorer
    canary: Scorer | None


async def _score(
    services: Services,
    scorer: Scorer,
    records: Sequence[Mapping[str, Any]],
    *,
    on_error: OnError,
    explain: bool,
    top_k: int,
    decline_reasons: bool = False,
    cancel: Cancellation | None = None,
    log_as: LogAs | None = None,
) -> Scored:
    """Score ``records`` with ``scorer``: a small request batched on the event loop, a big
    one off it (in chunks, watched by ``cancel``). With ``log_as``, the loans are recorded
    once scored (a small request's with the rest of its batch)."""
    if len(records) <= SMALL_REQUEST:
        return await services.scoring.score(
            scorer,
            records,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
            log_as=log_as,
        )
    size = chunk_loans(services.settings, reasons=explain or decline_reasons)
    if cancel is not None and len(records) > size:
        cancel.watch()
        result = await _score_chunks(
            scorer,
            records,
            size,
            cancel,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
        )
    else:
        # a big batch must not hold up the small requests batched on the event loop
        result = await off_loop(
            scorer.score_records,
            records,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
        )
    if log_as is not None:
        record_call(services, scorer, records, result, log_as)
    return result


def chunk_loans(settings: Settings, *, reasons: bool) -> int:
    """Loans scored between two cancellation checks: ``score_chunk_work`` loan-units."""
    return max(1, settings.score_chunk_work // work_units(1, reasons=reasons))


async def _score_chunks(
    scorer: Scorer,
    records: Sequence[Mapping[str, Any]],
    size: int,
    cancel: Cancellation,
    *,
    on_error: OnError,
    explain: bool,
    top_k: int,
    decline_reasons: bool,
) -> Scored:
    """:meth:`Scorer.score_records` ``size`` loans at a time off the loop, ``cancel``
    checked before each chunk and after the last (:class:`ClientGone` once set); the same
    answer as one call, a bad loan (``on_error="raise"``) named by its index in
    ``records``."""
    results: list[LoanScore] = []
    rejected: list[Rejection] = []
    for start in range(0, len(records), size):
        cancel.check()
        part = await off_loop(
            scorer.score_records,
            records[start : start + size],
            on_error="skip",
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
        )
        if part.rejected and on_error == "raise":
            first = start + part.rejected[0].record
            require_clean(records[first], scorer.rules, index=first)  # raises, naming it
        results += (shifted(r, start) for r in part.results)
        rejected += (shifted(r, start) for r in part.rejected)
    cancel.check()
    return Scored(results, rejected)


async def score_records(
    services: Services,
    cache: ModelCache,
    routing: Routing,
    records: Sequence[Mapping[str, Any]],
    *,
    source: str,
    on_error: OnError = "raise",
    explain: bool = False,
    top_k: int = 4,
    decline_reasons: bool = False,
    cancel: Cancellation | None = None,
) -> Answer:
    """Score JSON loans with ``routing`` (a snapshot of ``cache``): its champion (and canary)
    answer, the loans are recorded, and its shadow is handed them. With ``on_error="raise"``
    a bad loan refuses the whole request, named by its index in the request whichever version
    it was routed to. ``explain``, ``top_k`` and ``decline_reasons`` are
    :meth:`Scorer.score_records`'s. A request over ``max_request_work`` is refused
    (:class:`~loanrisk.errors.TooLarge`) before anything is scored; one of more than a
    chunk's loans (``score_chunk_work``) is scored in chunks with ``cancel`` checked between
    them: once it is set, :class:`~loanrisk.serving.cancel.ClientGone` is raised at the next
    one, and nothing of the request is counted, logged or shadowed."""
    check_work(services.settings, len(records), reasons=explain or decline_reasons)
    champion, canary, rule = routing.champion, routing.canary, routing.rule
    if canary is None or rule is None:
        result = await _score(
            services,
            champion,
            records,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
            cancel=cancel,
            log_as=LogAs(CHAMPION, source, request_id.get()),
        )
        answer = Answer(result, champion, None)
    else:
        id_fields = [f for f in (champion.schema.id_name, "id") if f]
        answer = await _score_split(
            services,
            champion,
            canary,
            rule.split(records, id_fields),
            records,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
            source=source,
            cancel=cancel,
        )
    if routing.shadow is not None:
        services.shadow.records(
            cache, answer.champion.version, records, source=source, request_id=request_id.get()
        )
    return answer


async def _score_split(
    services: Services,
    champion: Scorer,
    canary: Scorer,
    split: tuple[list[int], list[int]],
    records: Sequence[Mapping[str, Any]],
    *,
    on_error: OnError,
    explain: bool,
    top_k: int,
    decline_reasons: bool,
    source: str,
    cancel: Cancellation | None,
) -> Answer:
    groups = [(champion, CHAMPION, split[0]), (canary, CANARY, split[1])]
    groups = [g for g in groups if g[2]]
    parts = await asyncio.gather(
        *(
            _score(
                services,
                scorer,
                [records[i] for i in indexes],
                on_error="skip",
                explain=explain,
                top_k=top_k,
                decline_reasons=decline_reasons,
                cancel=cancel,
            )
            for scorer, _, indexes in groups
        )
    )
    rejected = sorted(
        (
            dataclasses.replace(r, record=indexes[r.record])
            for (_, _, indexes), part in zip(groups, parts, strict=True)
            for r in part.rejected
        ),
        key=lambda r: r.record,
    )
    if rejected and on_error == "raise":
        first = rejected[0].record
        scorer = next(s for s, _, indexes in groups if first in indexes)
        require_clean(records[first], scorer.rules, index=first)  # raises, naming the field
    results: list[LoanScore] = []
    rid = request_id.get()
    for (scorer, role, indexes), part in zip(groups, parts, strict=True):
        record_call(services, scorer, [records[i] for i in indexes], part, LogAs(role, source, rid))
        # copies: the log, handed ``part`` above, reads each score's own index later
        results += [dataclasses.replace(r, record=indexes[r.record]) for r in part.results]
    results.sort(key=lambda r: r.record)
    answered = canary if split[1] else None
    return Answer(Scored(results, rejected), champion, answered)


async def score_version(
    services: Services,
    scorer: Scorer,
    records: Sequence[Mapping[str, Any]],
    *,
    role: str,
    source: str,
    explain: bool = False,
    top_k: int = 4,
    decline_reasons: bool = False,
    cancel: Cancellation | None = None,
) -> Scored:
    """Score with exactly ``scorer`` (a version a client named), counted and logged under
    ``role``; no canary, no shadow. Bounded and cancellable as :func:`score_records`."""
    check_work(services.settings, len(records), reasons=explain or decline_reasons)
    result = await _score(
        services,
        scorer,
        records,
        on_error="raise",
        explain=explain,
        top_k=top_k,
        decline_reasons=decline_reasons,
        cancel=cancel,
        log_as=LogAs(role, source, request_id.get()),
    )
    return result


OnScored = Callable[[int, pd.DataFrame, pd.DataFrame], None]


def chunk_observer(
    services: Services,
    cache: ModelCache,
    routing: Routing,
    *,
    source: str,
    id_column: str | None = None,
) -> OnScored | None:
    """The ``on_scored`` callback of a batch ``routing``'s champion streams: its chunks go
    to the prediction log (loan ids from ``id_column``, as the log's chunk recorder reads
    them) and to ``routing``'s shadow (None when neither is on)."""
    scorer = routing.champion
    rid = request_id.get()
    log = services.log
    logged = (
        log.chunk_recorder(scorer, source=source, request_id=rid, id_column=id_column)
        if log is not None
        else None
    )
    if routing.shadow is None:
        return logged

    def on_scored(offset: int, chunk: pd.DataFrame, results: pd.DataFrame) -> None:
        if logged is not None:
            logged(offset, chunk, results)
        services.shadow.chunk(cache, scorer.version, offset, chunk, source=source, request_id=rid)

    return on_scored


#: Chunks of a CSV body hold at least this many rows, with reasons and without (a chunk's
#: fixed cost, a few milliseconds of parsing and validation, would otherwise outweigh the
#: scoring of a small model's loans).
CSV_CHUNK_ROWS = {True: 100, False: 1_000}


def count_rows(stream: IO[bytes]) -> int:
    """The rows of a CSV ``stream`` by its line breaks, header excluded (a quoted field's
    line break counts too: an upper bound), read 1 MiB at a time and rewound."""
    lines = 0
    last = b"\n"
    while block := stream.read(2**20):
        lines += block.count(b"\n")
        last = block[-1:]
    stream.seek(0)
    return max(lines + (last != b"\n") - 1, 0)


class _Chunks:
    """A CSV request's ``on_scored``: checks ``cancel`` before a chunk is recorded, and
    holds the chunks of a body of at most ``held_rows`` rows until :meth:`answered` (so
    nothing of an abandoned request is logged); a bigger body is logged as it is scored,
    as a batch job's is."""

    def __init__(
        self, observer: OnScored | None, cancel: Cancellation | None, *, hold: bool
    ) -> None:
        self.observer = observer
        self.cancel = cancel
        self.hold = hold and observer is not None
        self.held: list[tuple[int, pd.DataFrame, pd.DataFrame]] = []

    def __call__(self, offset: int, chunk: pd.DataFrame, results: pd.DataFrame) -> None:
        if self.cancel is not None:
            self.cancel.check()
        if self.hold:
            self.held.append((offset, chunk, results))
        elif self.observer is not None:
            self.observer(offset, chunk, results)

    def answered(self) -> None:
        if self.observer is not None:
            for offset, chunk, results in self.held:
                self.observer(offset, chunk, results)
        self.held.clear()


def score_csv_request(
    services: Services,
    cache: ModelCache,
    routing: Routing,
    stream: IO[bytes],
    output: IO[bytes] | None,
    options: BatchOptions,
    *,
    source: str,
    cancel: Cancellation | None = None,
    max_rows: int | None = None,
) -> BatchSummary:
    """A CSV of loans a client sent (or named) scored through ``routing``'s champion into
    ``output`` (blocking: call it off the event loop). Refused (413) over
    ``max_request_work`` before anything is scored, the rows counted by their line breaks.
    Scored in chunks of ``score_chunk_work`` loan-units (at least :data:`CSV_CHUNK_ROWS`
    rows) with ``cancel`` checked after each: once it is set,
    :class:`~loanrisk.serving.cancel.ClientGone` stops the batch. A body of at most
    ``max_records`` rows goes to the prediction log (and the shadow) only once all of it is
    scored; a bigger one chunk by chunk. ``options``' own ``on_scored`` is replaced. With
    ``max_rows`` (an answer held whole), a CSV of more lines is refused (413) before too."""
    settings = services.settings
    reasons = options.explain or options.decline_reasons
    rows = count_rows(stream)
    if max_rows is not None and rows > max_rows:
        raise TooLarge(
            f"{rows:,} rows: a JSON answer holds at most {max_rows:,}; ask for CSV "
            "(Accept: text/csv) to stream them all",
            details={"max": max_rows},
        )
    check_work(settings, rows, reasons=reasons)
    observer = chunk_observer(services, cache, routing, source=source, id_column=options.id_column)
    chunks = _Chunks(observer, cancel, hold=rows <= settings.max_records)
    chunk_rows = options.chunk_rows
    if cancel is not None:
        fewest = CSV_CHUNK_ROWS[reasons]
        chunk_rows = min(chunk_rows, max(chunk_loans(settings, reasons=reasons), fewest))
    options = dataclasses.replace(options, on_scored=chunks, chunk_rows=chunk_rows)
    summary = routing.champion.score_csv(stream, output, options)
    chunks.answered()
    return summary


def batch_version(services: Services, directory: str, name: str) -> int:
    """The version a batch job of model ``name`` (in ``directory``) is handed, resolved once
    when it is accepted: the champion of the service's own snapshot for a model it serves
    (so a batch scores with what ``/v1/predict`` answers with, a fallback version included),
    else the version the alias names (blocking: call it off the event loop)."""
    cache = services.models.cached(directory, check_name("model", name))
    if cache is not None:
        with contextlib.suppress(Conflict):  # nothing served yet: the alias says
            return cache.snapshot().champion.version
    return ModelRegistry(services.storage, directory).resolve(name, services.settings.model_alias)
