"""The tasks a job can run, one per kind of typed parameters (:mod:`loanrisk.contracts`):
``task(params, settings, *, progress, should_cancel) -> result``.

The parameters were checked where the job was submitted; each task returns its kind's typed
result (:mod:`loanrisk.jobs.results`), turned into JSON where it crosses the process boundary
to be stored in the job's record. Every task runs in a child process
(:func:`~loanrisk.jobs.run_in_process`) and publishes nothing when it fails or is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from loanrisk.contracts import (
    JobParams,
    JobProgress,
    ProcessDataJob,
    ScoreJob,
    TrainingRequest,
    TrainingResult,
    TuneJob,
)
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.errors import Cancelled, Conflict, InvalidInput
from loanrisk.inference.scorer import BatchOptions, scorer_from_settings
from loanrisk.jobs.results import DaskRun, JobResult, ProcessingResult, ScoredBy, ScoringResult
from loanrisk.monitoring.log.staging import publish_staged, staging_directory
from loanrisk.monitoring.log.writer import prediction_log
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.schema import builtin_schema_hint
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, open_storage
from loanrisk.training.job import run_training
from loanrisk.training.train import RoundProgress
from loanrisk.training.tune import TuneSummary

Progress = Callable[[JobProgress], None]


def process_data(
    params: ProcessDataJob,
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> ProcessingResult:
    """Raw CSV on the storage (``source``) -> validated -> expanded to ``size`` -> dataset in
    ``directory``. (A staged upload is removed by the job manager however the job ends.)"""
    storage = open_storage(settings)

    def stage(name: str, done: int, total: int) -> None:
        if should_cancel():
            raise Cancelled("data processing cancelled; no dataset was published")
        progress(JobProgress(stage=name, done=done, total=total))

    stage("validate", 0, 1)
    given = params.loan_schema is not None
    hint = "give the loans' schema (schema, or schema_name of one stored by PUT /v1/schemas/NAME)"
    with (
        nullcontext() if given else builtin_schema_hint(hint),
        storage.open_read(params.source) as stream,
    ):
        loans = read_csv(stream, schema=params.loan_schema, keep=params.keep_columns)
    stage("validate", 1, 1)
    manifest = process_dataset(
        loans,
        storage,
        source=params.source_name,
        size=params.size,
        directory=params.directory,
        seed=settings.seed,
        test_fraction=settings.test_fraction,
        progress=stage,
        schema=params.loan_schema,
    )
    return ProcessingResult(manifest)


def train(
    params: TrainingRequest,
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> TrainingResult:
    """Train a new model version as ``params`` asks."""

    def rounds(p: RoundProgress) -> None:
        progress(
            JobProgress(
                stage="train",
                done=p.done,
                total=p.total,
                elapsed=p.elapsed,
                eta=p.eta,
                metrics=p.metrics,
            )
        )

    storage = open_storage(settings)
    result = run_training(
        params,
        storage,
        nthread=settings.nthread,
        progress=rounds,
        should_cancel=should_cancel,
    )
    if settings.mlflow_tracking_uri is not None:  # published: from here on nothing is lost
        from loanrisk.interop.mlflow_run import log_training

        progress(JobProgress(stage="mlflow", done=0, total=1))
        registry = ModelRegistry(storage, params.model_directory)
        logged = log_training(settings, registry, result.manifest)
        result = result.model_copy(update={"mlflow": logged})
    return result


def score(
    params: ScoreJob,
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> ScoringResult:
    """Score the CSV or Parquet file ``source`` with version ``version`` of model
    ``model_name`` (resolved when the job was accepted: the alias may have moved since) and
    write the results CSV to ``output`` (atomically: a failed batch leaves no output). The
    loans' log rows are staged as they are scored and moved into the prediction log once the
    output is published (:mod:`~loanrisk.monitoring.log.staging`): a job that fails or is
    killed adds none, so a retry never counts a loan twice."""
    storage = open_storage(settings)
    registry = ModelRegistry(storage, params.model_directory)
    loaded = registry.load(params.model_name, params.version)
    scorer = scorer_from_settings(loaded, settings)

    def rows(done: int) -> None:
        if should_cancel():
            raise Cancelled("batch scoring cancelled; no output was written")
        progress(JobProgress(stage="score", done=done, total=None))

    if storage.exists(params.output):  # written since the job was accepted
        raise Conflict(f"output {params.output!r} exists already; results never replace a file")
    if settings.dask_scheduler is not None and params.source.endswith(".parquet"):
        return _score_on_dask(params, settings, registry, loaded, progress)
    run = scorer.score_parquet if params.source.endswith(".parquet") else scorer.score_csv
    log_directory = storage.resolve(settings.log_directory)
    staged = staging_directory(storage, log_directory, params.log_staging)
    log = prediction_log(settings, storage, directory=staged) if settings.prediction_log else None
    on_scored = (
        log.chunk_recorder(
            scorer, source="batch", request_id=params.request_id, id_column=params.id_column
        )
        if log is not None
        else None
    )
    options = BatchOptions(
        on_error=params.on_error,
        id_column=params.id_column,
        progress=rows,
        on_scored=on_scored,
        explain=params.explain,
        decline_reasons=params.decline_reasons,
    )
    try:
        with storage.open_read(params.source) as stream, storage.open_write(params.output) as sink:
            summary = run(stream, sink, options)
    finally:
        if log is not None:
            log.close()
    if log is not None:  # the output is published: its rows go to the log (or, killed
        publish_staged(storage, log_directory, params.log_staging)  # here, by the cleanup)
    model = ScoredBy(loaded.name, loaded.version, scorer.backend.name)
    return ScoringResult(params.output, model, summary)


def tune(
    params: TuneJob,
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> TuneSummary:
    """Run or resume the tuning study ``params`` names; its summary (frontier, best, lean)."""
    from loanrisk.training.tune import run_tuning

    study = run_tuning(
        params,
        open_storage(settings),
        nthread=settings.nthread,
        progress=progress,
        should_cancel=should_cancel,
    )
    return study.result()


def _score_on_dask(
    params: ScoreJob,
    settings: Settings,
    registry: ModelRegistry,
    loaded: LoadedModel,
    progress: Progress,
) -> ScoringResult:
    """A Parquet batch on the Dask cluster of the settings: the results are a folder of
    partitioned Parquet next to where the CSV would be (``<output>`` without ``.csv``)."""
    from loanrisk.inference.distributed import results_folder, score_on_dask

    storage = registry.storage
    if not isinstance(storage, FsspecStorage):
        raise InvalidInput("scoring on Dask needs shared storage (a directory, S3 or Azure)")
    folder = results_folder(storage, params.output)  # taken since the job was accepted?
    assert settings.dask_scheduler is not None
    progress(JobProgress(stage="score", done=0, total=None))
    summary = score_on_dask(
        registry,
        loaded.name,
        loaded.version,
        settings,
        source=f"{storage.url}/{params.source}",
        output=f"{storage.url}/{folder}",
        scheduler=settings.dask_scheduler,
        on_error=params.on_error,
        id_column=params.id_column,
        explain=params.explain,
        decline_reasons=params.decline_reasons,
    )
    progress(JobProgress(stage="score", done=summary.scored, total=summary.scored))
    model = ScoredBy(loaded.name, loaded.version, "dask")
    return ScoringResult(folder, model, DaskRun(summary, settings.dask_scheduler))


def run_task(
    params: JobParams,
    settings: Settings,
    *,
    progress: Progress,
    should_cancel: Callable[[], bool],
) -> JobResult:
    """Run the task of ``params``'s kind."""
    if isinstance(params, ProcessDataJob):
        return process_data(params, settings, progress=progress, should_cancel=should_cancel)
    if isinstance(params, TrainingRequest):
        return train(params, settings, progress=progress, should_cancel=should_cancel)
    if isinstance(params, TuneJob):
        return tune(params, settings, progress=progress, should_cancel=should_cancel)
    return score(params, settings, progress=progress, should_cancel=should_cancel)
