"""What a scoring call leaves behind: its loans counted (Prometheus) and written to the
prediction log, one call at a time or a batch of calls at once.

The small requests a worker batches on its event loop (:mod:`~loanrisk.serving.batching`)
are recorded together, once per batch: one log item and one write-ahead line for all of
their loans (each row keeping its own request id), and one count per version and role. Per
request, that hand-off was a fifth of what a scored one-loan request cost the event loop
beyond the no-op route (``benchmarks/bench_instructions.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from loanrisk.inference.results import LoanScore, Scored
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.serving.metrics import Metrics


class Recipients(Protocol):
    """Where scored loans go: the service's metrics and prediction log."""

    metrics: Metrics
    log: PredictionLog | None


class LogAs(NamedTuple):
    """How one request's loans are recorded: the role of the version that scored them, the
    front end they came through, and the request's id."""

    role: str
    source: str
    request_id: str | None


#: One answered request of a batch: its loans, what it is answered with, how it is recorded.
Call = tuple[Sequence[Mapping[str, Any]], Scored, LogAs]


def record_call(
    to: Recipients,
    scorer: Scorer,
    records: Sequence[Mapping[str, Any]],
    result: Scored,
    log_as: LogAs,
) -> None:
    """Count and log the loans of one call (``result`` of ``records``)."""
    labels = [r.label for r in result.results]
    to.metrics.predicted(scorer.model.name, scorer.version, labels, log_as.role)
    if to.log is not None:
        to.log.scored_records(
            scorer,
            records,
            result,
            source=log_as.source,
            request_id=log_as.request_id,
            role=log_as.role,
        )


def record_batch(to: Recipients, scorer: Scorer, calls: Sequence[Call]) -> None:
    """Count and log the loans of several calls ``scorer`` scored together: one count and one
    log item per role and front end (usually one for the whole batch)."""
    groups: dict[tuple[str, str], tuple[list[Mapping[str, Any]], list[LoanScore], list[str | None]]]
    groups = {}
    for records, result, log_as in calls:
        loans, results, ids = groups.setdefault((log_as.role, log_as.source), ([], [], []))
        loans += [records[r.record] for r in result.results]
        results += result.results
        ids += [log_as.request_id] * len(result.results)
    for (role, source), (loans, results, ids) in groups.items():
        to.metrics.predicted(scorer.model.name, scorer.version, [r.label for r in results], role)
        if to.log is not None:
            to.log.scored_loans(scorer, loans, results, source=source, request_ids=ids, role=role)
