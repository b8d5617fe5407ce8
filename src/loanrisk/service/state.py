"""What the service holds while it runs, built in the app's lifespan (never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from loanrisk.errors import NotFound
from loanrisk.inference.cache import ModelCache
from loanrisk.inference.scorer import Scorer, scorer_from_settings
from loanrisk.jobs.manager import JobManager
from loanrisk.registry.models import LoadedModel, ModelRegistry, check_name
from loanrisk.service.auth import ApiKeys
from loanrisk.service.batching import ScoringQueue
from loanrisk.service.locations import Locations
from loanrisk.service.metrics import Metrics
from loanrisk.settings import Settings
from loanrisk.storage import Storage

#: Most models one replica keeps scorers for (clients name models; memory must stay bounded).
MAX_CACHED_MODELS = 8


def training_scope(model_directory: str, name: str) -> str:
    """The lock that keeps two trainings of one model from interleaving (on any replica)."""
    return f"training of model {name!r} in {model_directory or '/'!r}"


@dataclass
class Services:
    settings: Settings
    storage: Storage
    jobs: JobManager
    keys: ApiKeys
    metrics: Metrics
    caches: dict[tuple[str, str, str], ModelCache] = field(default_factory=dict)
    #: Scores small JSON requests, batched, on one thread per worker.
    scoring: ScoringQueue = field(default_factory=ScoringQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def locations(self) -> Locations:
        return Locations(self.settings, self.storage)

    def build_scorer(self, model: LoadedModel) -> Scorer:
        return scorer_from_settings(model, self.settings, nthread=1)

    def __post_init__(self) -> None:
        s = self.settings
        #: The configured model's cache: what ``/v1/predict`` scores with. Built once, so the
        #: hot path does no name check, lock or lookup; never evicted.
        self.served = self._new_cache(s.model_directory, check_name("model", s.model_name))
        self.caches[self._key(s.model_directory, s.model_name)] = self.served

    def _key(self, directory: str, name: str) -> tuple[str, str, str]:
        return (directory, name, self.settings.model_alias)

    def _new_cache(self, directory: str, name: str) -> ModelCache:
        registry = ModelRegistry(self.storage, directory)
        return ModelCache(
            registry,
            name,
            self.settings.model_alias,
            build=self.build_scorer,
            on_failure=self.metrics.model_load_failed,
        )

    def scorer_of(self, directory: str, name: str) -> Scorer:
        """The serving scorer of a model the client names (loaded on first use; models that
        do not exist are not cached, and at most :data:`MAX_CACHED_MODELS` are)."""
        key = self._key(directory, check_name("model", name))
        cache = self.caches.get(key)
        if cache is None:
            if name not in ModelRegistry(self.storage, directory).models():
                raise NotFound(f"no model {name!r} in {directory or 'the storage root'!r}")
            with self._lock:
                if key not in self.caches and len(self.caches) >= MAX_CACHED_MODELS:
                    self.caches.pop(next(k for k, c in self.caches.items() if c is not self.served))
                cache = self.caches.setdefault(key, self._new_cache(directory, name))
            cache.refresh()
        return cache.current()

    def refresh_model(self, directory: str, name: str) -> None:
        """Follow a model's alias now (after this replica trained it), not on the next tick."""
        cache = self.caches.get(self._key(directory, name))
        if cache is not None:
            cache.refresh()

    def refresh_all(self) -> None:
        for cache in list(self.caches.values()):
            cache.refresh()
