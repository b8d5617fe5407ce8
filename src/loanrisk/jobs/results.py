"""What a job's task gives back, one type per kind, and its JSON as the job record stores it.

A task (:mod:`loanrisk.jobs.tasks`) returns one of :data:`JobResult`; the child process turns
it into JSON (:func:`result_json`) where it crosses to the parent, and that document is the
job record's ``result``: the keys and order earlier versions stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from loanrisk.contracts import DatasetManifest, TrainingResult
from loanrisk.inference.results import BatchSummary
from loanrisk.training.tune import TuneSummary

if TYPE_CHECKING:
    from pydantic import JsonValue

    from loanrisk.inference.distributed import DaskSummary  # loads Dask's helpers: typing only


@dataclass(frozen=True, slots=True)
class ProcessingResult:
    """A data-processing job's result: the manifest of the dataset it published."""

    dataset: DatasetManifest


@dataclass(frozen=True, slots=True)
class ScoredBy:
    """The model version that scored a batch, and the backend (``dask`` on a cluster)."""

    name: str
    version: int
    backend: str


@dataclass(frozen=True, slots=True)
class DaskRun:
    """A batch scored on the Dask cluster: what the cluster did, and its scheduler."""

    summary: DaskSummary
    scheduler: str


@dataclass(frozen=True, slots=True)
class ScoringResult:
    """A batch-scoring job's result: where the results are, who scored them, and how the
    batch went (the scorer's summary, or the cluster's run)."""

    output: str
    model: ScoredBy
    summary: BatchSummary | DaskRun


JobResult = ProcessingResult | TrainingResult | ScoringResult | TuneSummary


def result_json(result: JobResult) -> dict[str, JsonValue]:
    """The JSON document a job record stores as its ``result`` (a batch scored on Dask gives
    the counts as its ``summary`` and the cluster's share as ``dask``)."""
    if isinstance(result, TuneSummary):
        return result.model_dump(mode="json")
    if isinstance(result, TrainingResult):
        return result.to_json()
    if isinstance(result, ProcessingResult):
        return {"dataset": result.dataset.model_dump(mode="json")}
    doc: dict[str, JsonValue] = {"output": result.output, "model": asdict(result.model)}
    if isinstance(result.summary, BatchSummary):
        return {**doc, "summary": result.summary.to_json()}
    run, scheduler = result.summary.summary, result.summary.scheduler
    dask: dict[str, JsonValue] = {
        "partitions": run.partitions,
        "workers": run.workers,
        "scheduler": scheduler,
    }
    return {**doc, "summary": {"scored": run.scored, "defaults": run.defaults}, "dask": dask}
