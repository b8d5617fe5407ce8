"""What the service holds while it runs, built when it starts (never at import), and the one
accessor every transport reads it through (:func:`services_of`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from loanrisk.inference.cache import ModelCaches
from loanrisk.inference.scorer import scorer_from_settings, servable_check
from loanrisk.jobs.manager import JobManager
from loanrisk.monitoring.log.writer import PredictionLog, prediction_log
from loanrisk.registry.models import ModelRegistry
from loanrisk.schema.store import SchemaStore
from loanrisk.serving.auth import ApiKeys
from loanrisk.serving.batching import ScoringQueue
from loanrisk.serving.cancel import ParseBudget
from loanrisk.serving.locations import Locations
from loanrisk.serving.metrics import Metrics
from loanrisk.serving.recording import record_batch
from loanrisk.serving.shadow import ShadowScoring
from loanrisk.settings import Settings
from loanrisk.storage import Storage


def training_scope(model_directory: str, name: str) -> str:
    """The lock that keeps two trainings of one model from interleaving (on any replica)."""
    return f"training of model {name!r} in {model_directory or '/'!r}"


@dataclass
class Services:
    """Everything the transports use, built once when the service starts; the v1 routes take
    the parts they need through the aliases of :mod:`loanrisk.service.deps`."""

    settings: Settings
    storage: Storage
    jobs: JobManager
    keys: ApiKeys
    metrics: Metrics
    models: ModelCaches
    #: Scores small JSON requests, batched, on the worker's event loop (and records them).
    scoring: ScoringQueue = field(default_factory=ScoringQueue)
    #: The prediction log's writer (None when the setting turns it off).
    log: PredictionLog | None = None
    #: Scores what the champion scored with the shadow alias's version (None: no shadow).
    shadow_scoring: ShadowScoring | None = None
    #: The bytes of JSON bodies this worker parses at once (setting max_parsing_bytes).
    parsing: ParseBudget | None = None

    def __post_init__(self) -> None:
        if self.scoring.recorder is None:  # the batches' loans are counted and logged here
            self.scoring.recorder = functools.partial(record_batch, self)
        if self.scoring.observe is None:
            self.scoring.observe = self.metrics.batch_loans.observe

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
            # A version that loads but cannot score (a linear booster) is refused as it loads;
            # the shadow, which never answers, is loaded as it is and its failures counted.
            build=servable_check(settings),
            shadow_build=lambda model: scorer_from_settings(model, settings, nthread=1),
            on_failure=metrics.model_load_failed,
            shadow_alias=settings.shadow_alias,
            canary=settings.canary_split,
        )
        log = (
            prediction_log(
                settings,
                storage,
                on_dropped=metrics.log_dropped,
                on_written=metrics.log_written,
                write_ahead=True,  # what a worker answers survives a kill of the worker
            )
            if settings.prediction_log
            else None
        )
        shadow = ShadowScoring(settings, metrics=metrics) if settings.shadow_alias else None
        parsing = ParseBudget(settings.max_parsing_bytes, wait=settings.parse_wait_seconds)
        return cls(
            settings,
            storage,
            jobs,
            keys,
            metrics,
            models,
            log=log,
            shadow_scoring=shadow,
            parsing=parsing,
        )

    @property
    def locations(self) -> Locations:
        return Locations(self.settings, self.storage)

    def close(self) -> None:
        """Stop, in order: the jobs of this replica, the scoring queue (to new requests), the
        shadow process (after scoring what it was sent), and the prediction log, flushed: a
        clean shutdown loses nothing (blocking: call it off the event loop)."""
        self.jobs.shutdown()
        self.scoring.close()
        if self.shadow_scoring is not None:
            self.shadow_scoring.close()
        if self.log is not None:
            self.log.close()


def attach(app: Any, services: Services) -> None:
    """Keep ``services`` on an application (its ``state``) for :func:`services_of`."""
    app.state.services = services


def services_of(app: Any) -> Services:
    """The services an application was started with: how every transport (routes, console,
    OIP REST, the key check) reaches them, whatever the framework."""
    services: Services = app.state.services
    return services


def registry_of(services: Services, directory: str | None) -> ModelRegistry:
    """The registry in ``directory`` of the storage (default: the setting), confined."""
    folder = services.storage.resolve(directory or services.settings.model_directory)
    return ModelRegistry(services.storage, folder)


def store_of(services: Services) -> SchemaStore:
    """The stored schemas (in the setting ``schema_directory``)."""
    directory = services.storage.resolve(services.settings.schema_directory)
    return SchemaStore(services.storage, directory)
