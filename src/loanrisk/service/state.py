"""What the service holds while it runs, built in the app's lifespan (never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from loanrisk.inference.cache import ModelCache
from loanrisk.inference.scorer import Bands, Scorer
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.settings import Settings
from loanrisk.storage import Storage


@dataclass
class Services:
    settings: Settings
    storage: Storage
    caches: dict[tuple[str, str, str], ModelCache] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def build_scorer(self, model: LoadedModel) -> Scorer:
        s = self.settings
        return Scorer(model, backend=s.backend, nthread=1, threshold=s.threshold,
                      bands=Bands(s.band_cutoffs, s.band_names))  # fmt: skip

    def cache(self, directory: str | None = None, name: str | None = None) -> ModelCache:
        """The cache of one model (default: the configured one), created on first use."""
        s = self.settings
        key = (directory or s.model_directory, name or s.model_name, s.model_alias)
        with self._lock:
            if key not in self.caches:
                registry = ModelRegistry(self.storage, key[0])
                self.caches[key] = ModelCache(registry, key[1], key[2], build=self.build_scorer)
            return self.caches[key]

    def refresh_all(self) -> None:
        for cache in list(self.caches.values()):
            cache.refresh()
