"""The model cache: one scorer per model version, swapped atomically when an alias moves.

``current()`` hands out the serving scorer; ``refresh()`` resolves the alias again and, if it
points elsewhere, builds (or reuses) that version's scorer and swaps the reference. A scorer
is immutable, so a request that took the old one finishes on it while new requests get the
new one: no request fails during a swap, and the oneDAL conversion is paid once per version,
never per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from loanrisk.errors import Conflict, NotFound
from loanrisk.inference.scorer import Scorer
from loanrisk.registry.models import PRODUCTION, LoadedModel, ModelRegistry


class ModelCache:
    """Scorers of one model, following ``ref`` (an alias such as ``production``, or
    ``latest``); keeps the ``keep`` most recent versions' scorers for instant rollbacks."""

    def __init__(
        self,
        registry: ModelRegistry,
        name: str,
        ref: str = PRODUCTION,
        *,
        build: Callable[[LoadedModel], Scorer] = Scorer,
        keep: int = 3,
    ) -> None:
        self.registry = registry
        self.name = name
        self.ref = ref
        self._build = build
        self._keep = keep
        self._scorers: OrderedDict[int, Scorer] = OrderedDict()
        self._current: Scorer | None = None
        self._refreshing = threading.Lock()

    def current(self) -> Scorer:
        """The serving scorer; :class:`Conflict` when no model has been loaded yet."""
        scorer = self._current  # one read: atomic, never half-swapped
        if scorer is None:
            raise Conflict(f"no model to score with: model {self.name!r} has no {self.ref!r} yet")
        return scorer

    def refresh(self) -> bool:
        """Follow the alias; True when the serving version changed. A model that does not
        exist yet is not an error here (``current()`` says so)."""
        with self._refreshing:
            try:
                version = self.registry.resolve(self.name, self.ref)
            except NotFound:
                return False
            if self._current is not None and self._current.version == version:
                return False
            scorer = self._scorers.get(version)
            if scorer is None:
                scorer = self._build(self.registry.load(self.name, version))
                self._scorers[version] = scorer
                while len(self._scorers) > self._keep:
                    self._scorers.popitem(last=False)
            self._scorers.move_to_end(version)
            self._current = scorer
            return True
