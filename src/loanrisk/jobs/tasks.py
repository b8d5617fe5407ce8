"""The tasks a job can run, each ``task(params, settings, *, progress, should_cancel) -> dict``.

``params`` and the returned dict are plain JSON: they cross a process boundary and are stored
in the job's record. Every task runs in a child process (:func:`~loanrisk.jobs.run_in_process`)
and publishes nothing when it fails or is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.errors import Cancelled, Conflict
from loanrisk.inference.scorer import scorer_from_settings
from loanrisk.registry.models import ModelRegistry
from loanrisk.settings import Settings
from loanrisk.storage import open_storage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.train import RoundProgress

Progress = Callable[[dict[str, Any]], None]
Task = Callable[..., dict[str, Any]]


def process_data(
    params: dict[str, Any],
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> dict[str, Any]:
    """Raw CSV on the storage (``source``) -> validated -> expanded to ``size`` -> dataset in
    ``directory``. ``delete_source`` removes the CSV afterwards (an upload's staging copy)."""
    storage = open_storage(settings)

    def stage(name: str, done: int, total: int) -> None:
        if should_cancel():
            raise Cancelled("data processing cancelled; no dataset was published")
        progress({"stage": name, "done": done, "total": total})

    stage("validate", 0, 1)
    with storage.open_read(params["source"]) as stream:
        loans = read_csv(stream, keep=params.get("keep_columns") or ())
    stage("validate", 1, 1)
    try:
        manifest = process_dataset(
            loans,
            storage,
            source=params.get("source_name") or params["source"],
            size=params.get("size"),
            directory=params.get("directory", "data"),
            seed=settings.seed,
            test_fraction=settings.test_fraction,
            progress=stage,
        )
    finally:
        if params.get("delete_source"):
            storage.delete(params["source"])
    return {"dataset": manifest}


def train(
    params: dict[str, Any],
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> dict[str, Any]:
    """Train a new model version from the :class:`TrainingRequest` fields in ``params``."""

    def rounds(p: RoundProgress) -> None:
        progress(
            {
                "stage": "train",
                "done": p.done,
                "total": p.total,
                "elapsed": p.elapsed,
                "eta": p.eta,
                "metrics": p.metrics,
            }
        )

    result = run_training(
        TrainingRequest(**params),
        open_storage(settings),
        nthread=settings.nthread,
        progress=rounds,
        should_cancel=should_cancel,
    )
    return {"manifest": result.manifest, "report": result.report, "promoted": result.promoted}


def score(
    params: dict[str, Any],
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> dict[str, Any]:
    """Score the CSV or Parquet file ``source`` with model ``model_name`` at ``ref`` and write
    the results CSV to ``output`` (atomically: a failed batch leaves no output)."""
    storage = open_storage(settings)
    registry = ModelRegistry(storage, params.get("model_directory", settings.model_directory))
    loaded = registry.load(params["model_name"], params.get("ref", settings.model_alias))
    scorer = scorer_from_settings(loaded, settings)

    def rows(done: int) -> None:
        if should_cancel():
            raise Cancelled("batch scoring cancelled; no output was written")
        progress({"stage": "score", "done": done, "total": None})

    source: str = params["source"]
    if storage.exists(params["output"]):  # written since the job was accepted
        raise Conflict(f"output {params['output']!r} exists already; results never replace a file")
    run = scorer.score_parquet if source.endswith(".parquet") else scorer.score_csv
    with storage.open_read(source) as stream, storage.open_write(params["output"]) as sink:
        summary = run(
            stream,
            sink,
            on_error=params.get("on_error", "raise"),
            id_column=params.get("id_column"),
            progress=rows,
        )
    model = {"name": loaded.name, "version": loaded.version, "backend": scorer.backend.name}
    return {"output": params["output"], "model": model, "summary": summary}


TASKS: dict[str, Task] = {"process_data": process_data, "train": train, "score": score}
