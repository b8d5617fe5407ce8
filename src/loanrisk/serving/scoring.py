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
from typing import Any

import pandas as pd

from loanrisk.contracts import OnError
from loanrisk.errors import Conflict
from loanrisk.inference.cache import ModelCache, Routing
from loanrisk.inference.records import require_clean
from loanrisk.inference.results import LoanScore, Scored
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log import CANARY, CHAMPION
from loanrisk.registry.models import ModelRegistry, check_name
from loanrisk.serving.logs import request_id
from loanrisk.serving.state import Services
from loanrisk.serving.threads import off_loop

#: Requests with at most this many loans are batched on the worker's scoring thread.
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
) -> Scored:
    if len(records) <= SMALL_REQUEST:
        return await services.scoring.score(
            scorer,
            records,
            on_error=on_error,
            explain=explain,
            top_k=top_k,
            decline_reasons=decline_reasons,
        )
    # a big batch must not hold up the small requests queued for the scoring thread
    return await off_loop(
        scorer.score_records,
        records,
        on_error=on_error,
        explain=explain,
        top_k=top_k,
        decline_reasons=decline_reasons,
    )


def _record(
    services: Services,
    scorer: Scorer,
    records: Sequence[Mapping[str, Any]],
    result: Scored,
    *,
    role: str,
    source: str,
) -> None:
    labels = [r.label for r in result.results]
    services.metrics.predicted(scorer.model.name, scorer.version, labels, role)
    if services.log is not None:
        services.log.scored_records(
            scorer, records, result, source=source, request_id=request_id.get(), role=role
        )


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
) -> Answer:
    """Score JSON loans with ``routing`` (a snapshot of ``cache``): its champion (and canary)
    answer, the loans are recorded, and its shadow is handed them. With ``on_error="raise"``
    a bad loan refuses the whole request, named by its index in the request whichever version
    it was routed to. ``explain``, ``top_k`` and ``decline_reasons`` are
    :meth:`Scorer.score_records`'s."""
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
        )
        _record(services, champion, records, result, role=CHAMPION, source=source)
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
    for (scorer, role, indexes), part in zip(groups, parts, strict=True):
        _record(services, scorer, [records[i] for i in indexes], part, role=role, source=source)
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
) -> Scored:
    """Score with exactly ``scorer`` (a version a client named), counted and logged under
    ``role``; no canary, no shadow."""
    result = await _score(
        services,
        scorer,
        records,
        on_error="raise",
        explain=explain,
        top_k=top_k,
        decline_reasons=decline_reasons,
    )
    _record(services, scorer, records, result, role=role, source=source)
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
