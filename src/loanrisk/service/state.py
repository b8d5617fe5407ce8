"""What the service holds while it runs, built in the app's lifespan (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loanrisk.inference.cache import ModelCaches
from loanrisk.inference.scorer import scorer_from_settings
from loanrisk.jobs.manager import JobManager
from loanrisk.monitoring.log import PredictionLog, prediction_log
from loanrisk.service.auth import ApiKeys
from loanrisk.service.batching import ScoringQueue
from loanrisk.service.locations import Locations
from loanrisk.service.metrics import Metrics
from loanrisk.service.shadow import ShadowScoring
from loanrisk.settings import Settings
from loanrisk.storage import Storage


def training_scope(model_directory: str, name: str) -> str:
    """The lock that keeps two trainings of one model from interleaving (on any replica)."""
    return f"training of model {name!r} in {model_directory or '/'!r}"


@dataclass
class Services:
    """Everything the routes use, built once in the lifespan; routes take the parts they need
    through the aliases of :mod:`loanrisk.service.deps`."""

    settings: Settings
    storage: Storage
    jobs: JobManager
    keys: ApiKeys
    metrics: Metrics
    models: ModelCaches
    #: Scores small JSON requests, batched, on one thread per worker.
    scoring: ScoringQueue = field(default_factory=ScoringQueue)
    #: The prediction log's writer (None when the setting turns it off).
    log: PredictionLog | None = None
    #: Scores what the champion scored with the shadow alias's version (None: no shadow).
    shadow_scoring: ShadowScoring | None = None

    @property
    def shadow(self) -> ShadowScoring:
        """The shadow's queue (only asked for when a shadow version is being served)."""
        assert self.shadow_scoring is not None, "no shadow alias is configured"
        return self.shadow_scoring

    @classmethod
    def build(
        cls, settings: Settings, storage: Storage, jobs: JobManager, keys: ApiKeys, metrics: Metrics
    ) -> Services:
        models = ModelCaches(
            storage,
            directory=settings.model_directory,
            name=settings.model_name,
            ref=settings.model_alias,
            build=lambda model: scorer_from_settings(model, settings, nthread=1),
            on_failure=metrics.model_load_failed,
            shadow_alias=settings.shadow_alias,
            canary=settings.canary_split,
        )
        log = (
            prediction_log(
                settings, storage, on_dropped=metrics.log_dropped, on_written=metrics.log_written
            )
            if settings.prediction_log
            else None
        )
        shadow = ShadowScoring(settings, metrics=metrics) if settings.shadow_alias else None
        return cls(settings, storage, jobs, keys, metrics, models, log=log, shadow_scoring=shadow)

    @property
    def locations(self) -> Locations:
        return Locations(self.settings, self.storage)
