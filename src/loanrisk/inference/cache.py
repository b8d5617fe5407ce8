"""The model cache: one scorer per model version, swapped atomically when an alias moves.

``snapshot()`` hands out what the cache serves, as one :class:`Routing` (champion, canary,
shadow); ``refresh()`` resolves the alias again and, if it points elsewhere, builds (or reuses)
that version's scorer and swaps the reference. A scorer is immutable, so a request that took
the old one finishes on it while new requests get the new one: no request fails during a
swap, and the oneDAL conversion is paid once per version, never per request.

A version that cannot be loaded (corrupt files, a storage outage) never takes the service
down: the cache keeps serving what it serves, or, when it serves nothing yet (a fresh start),
falls back to the versions the alias pointed at before. ``problem`` says what went wrong; a
failed version is tried again after :data:`RETRY_SECONDS`, not on every refresh.

A cache may have companions that follow other aliases of the same model: a ``shadow`` (scored
alongside every request, never answering) and a ``canary`` (answering a share of loans, see
:mod:`loanrisk.inference.routing`). They are refreshed with it; when their alias goes away
(or is retired) they stop serving, where the champion keeps what it has. The three are
published together, once the refresh of all three is done, as one immutable :class:`Routing`:
a request that takes one snapshot scores, routes and shadows with the versions of one
moment, even when a promotion moves them while it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from loanrisk.errors import Conflict, NotFound, describe_error
from loanrisk.inference.routing import CanaryRule
from loanrisk.inference.scorer import Scorer
from loanrisk.registry.models import PRODUCTION, LoadedModel, ModelRegistry, check_name
from loanrisk.storage.base import Storage

log = logging.getLogger("loanrisk.models")

#: Seconds before a version that failed to load is tried again.
RETRY_SECONDS = 60.0
#: Most earlier versions tried when the alias's own version cannot be loaded at a fresh start.
MAX_FALLBACKS = 3


@dataclass(frozen=True)
class Routing:
    """What a model serves at one moment: the ``champion``; the ``canary``, answering the
    share of loans ``rule`` sends it; the ``shadow``, scoring what the champion scored (each
    None unless it serves another version than the champion)."""

    champion: Scorer
    canary: Scorer | None = None
    rule: CanaryRule | None = None
    shadow: Scorer | None = None


class ModelCache:
    """Scorers of one model, following ``ref`` (an alias such as ``production``, or
    ``latest``); keeps the ``keep`` most recent versions' scorers for instant rollbacks.
    ``on_failure(name, version)`` is called for every version that fails to load."""

    def __init__(
        self,
        registry: ModelRegistry,
        name: str,
        ref: str = PRODUCTION,
        *,
        build: Callable[[LoadedModel], Scorer] = Scorer,
        keep: int = 3,
        on_failure: Callable[[str, int | None], None] | None = None,
        optional: bool = False,
    ) -> None:
        self.registry = registry
        self.optional = optional
        self.name = name
        self.ref = ref
        self._build = build
        self._keep = keep
        self._on_failure = on_failure
        self._scorers: OrderedDict[int, Scorer] = OrderedDict()
        self._current: Scorer | None = None
        #: What requests are handed: replaced whole, after a refresh of all three roles.
        self._routing: Routing | None = None
        self._publishing = threading.Lock()
        self._failed: dict[int, tuple[float, str]] = {}
        self._refreshing = threading.Lock()
        #: Why the cache does not serve what ``ref`` names (None when it does).
        self.problem: str | None = None
        #: Companions: the shadow alias's cache, and the canary alias's with its share.
        self.shadow: ModelCache | None = None
        self.canary: ModelCache | None = None
        self.canary_rule: CanaryRule | None = None

    def snapshot(self) -> Routing:
        """Champion, canary and shadow as the last refresh left them, all three from that one
        moment (one read: never half-swapped); :class:`Conflict` when no model has been
        loaded yet. Route a whole request with one snapshot."""
        routing = self._routing
        if routing is None:
            why = f" ({self.problem})" if self.problem else ""
            raise Conflict(
                f"no model to score with: model {self.name!r} has no {self.ref!r} yet{why}"
            )
        return routing

    def current(self) -> Scorer:
        """The champion of :meth:`snapshot` (:class:`Conflict` before one is loaded)."""
        return self.snapshot().champion

    def serving(self) -> Scorer | None:
        """The champion, or None before one is loaded (never raises, never loads)."""
        routing = self._routing
        return routing.champion if routing is not None else None

    def companions(self) -> list[ModelCache]:
        return [c for c in (self.shadow, self.canary) if c is not None]

    def refresh(self) -> bool:
        """Follow the alias (and the companions theirs); True when the serving version
        changed. Never raises: a model that does not exist yet is not an error here
        (``current()`` says so), and one that cannot be loaded is reported in
        :attr:`problem`."""
        changed = self._follow()
        for companion in self.companions():
            companion.refresh()
        self._publish()
        return changed

    def _publish(self) -> None:
        """Hand out the roles as they are now, together (one assignment)."""
        with self._publishing:
            champion = self._current
            if champion is None:
                self._routing = None
                return
            canary = _other(self.canary, champion)
            self._routing = Routing(
                champion,
                canary=canary,
                rule=self.canary_rule if canary is not None else None,
                shadow=_other(self.shadow, champion),
            )

    def _follow(self) -> bool:
        with self._refreshing:
            try:
                version = self.registry.resolve(self.name, self.ref)
            except NotFound:
                self.problem = None
                if self.optional:  # a shadow or canary alias removed: stop using it
                    changed, self._current = self._current is not None, None
                    return changed
                return False
            except Exception as exc:  # storage outage: keep serving what we serve
                self._report(None, describe_error(exc))
                return False
            if self._current is not None and self._current.version == version:
                self.problem = None
                return False
            scorer = self._scorer(version)
            if scorer is None and self._current is None:
                scorer = self._fallback(version)
            if scorer is None:
                return False
            self._scorers.move_to_end(scorer.version)
            changed = self._current is None or self._current.version != scorer.version
            self._current = scorer
            return changed

    def version_scorer(self, version: int) -> Scorer:
        """The scorer of exactly ``version`` (built on first use, then kept with the others;
        blocking): NotFound when the version does not exist, Conflict when it cannot load."""
        self.registry.manifest(self.name, version)  # raises NotFound
        with self._refreshing:
            serving_problem = self.problem  # what the alias's version has, kept as it is
            scorer = self._scorer(version)
            problem, self.problem = self.problem, serving_problem
        if scorer is None:
            raise Conflict(f"model {self.name!r} version {version} cannot be served: {problem}")
        return scorer

    def _scorer(self, version: int) -> Scorer | None:
        """The scorer of ``version``, built if need be; None (and :attr:`problem`) if it
        cannot be loaded."""
        scorer = self._scorers.get(version)
        if scorer is not None:
            self.problem = None
            return scorer
        failed = self._failed.get(version)
        if failed is not None and time.monotonic() - failed[0] < RETRY_SECONDS:
            self._report(version, failed[1], again=True)
            return None
        try:
            scorer = self._build(self.registry.load(self.name, version))
        except Exception as exc:  # corrupt files, a storage outage, a model oneDAL refuses
            reason = describe_error(exc)
            self._failed[version] = (time.monotonic(), reason)
            self._report(version, reason)
            return None
        self._failed.pop(version, None)
        self._scorers[version] = scorer
        while len(self._scorers) > self._keep:
            self._scorers.popitem(last=False)
        self.problem = None
        return scorer

    def _fallback(self, broken: int) -> Scorer | None:
        problem = self.problem
        for version in self.registry.earlier_targets(self.name, self.ref, broken)[:MAX_FALLBACKS]:
            scorer = self._scorer(version)
            if scorer is not None:
                self.problem = f"{problem}; serving version {version} instead"
                log.warning("model %s: %s", self.name, self.problem)
                return scorer
        self.problem = problem
        return None

    def _report(self, version: int | None, reason: str, *, again: bool = False) -> None:
        serving = f"; serving version {self._current.version}" if self._current is not None else ""
        self.problem = (
            f"{self.ref!r} names version {version}, which failed to load: {reason}{serving}"
            if version is not None
            else f"cannot resolve {self.ref!r}: {reason}{serving}"
        )
        if again:
            return
        log.error("model %s: %s", self.name, self.problem)
        if self._on_failure is not None:
            self._on_failure(self.name, version)


def _other(companion: ModelCache | None, champion: Scorer) -> Scorer | None:
    """The companion's scorer when it serves another version than ``champion``."""
    scorer = companion._current if companion is not None else None
    if scorer is None or scorer.version == champion.version:
        return None
    return scorer


#: Most models one replica keeps scorers for (clients name models; memory must stay bounded).
MAX_CACHED_MODELS = 8


class ModelCaches:
    """The model caches of one service: the configured model's (``served``, what
    ``/v1/predict`` scores with, built once and never evicted) and those of models clients
    name by folder and name (loaded on first use; at most :data:`MAX_CACHED_MODELS`, models
    that do not exist are not cached). Every cache follows the same alias, with the same
    companions (``shadow_alias``; ``canary``: alias and percent of loans)."""

    def __init__(
        self,
        storage: Storage,
        *,
        directory: str,
        name: str,
        ref: str,
        build: Callable[[LoadedModel], Scorer],
        on_failure: Callable[[str, int | None], None] | None = None,
        shadow_alias: str | None = None,
        canary: tuple[str, float] | None = None,
        shadow_build: Callable[[LoadedModel], Scorer] | None = None,
    ) -> None:
        self.storage = storage
        self.ref = ref
        self.shadow_alias = shadow_alias
        self.canary = canary
        self._build = build
        # The shadow never answers: it may be built without the checks an answering version
        # passes, so a shadow that fails is loaded, and its failures are counted.
        self._shadow_build = shadow_build or build
        self._on_failure = on_failure
        self._caches: dict[tuple[str, str], ModelCache] = {}
        self._lock = threading.Lock()
        self.served = self._new(directory, check_name("model", name))
        self._caches[(directory, name)] = self.served

    def _new(self, directory: str, name: str) -> ModelCache:
        registry = ModelRegistry(self.storage, directory)

        def cache(
            ref: str,
            *,
            optional: bool = False,
            build: Callable[[LoadedModel], Scorer] | None = None,
        ) -> ModelCache:
            return ModelCache(
                registry,
                name,
                ref,
                build=build or self._build,
                on_failure=self._on_failure,
                optional=optional,
            )

        champion = cache(self.ref)
        if self.shadow_alias is not None:
            champion.shadow = cache(self.shadow_alias, optional=True, build=self._shadow_build)
        if self.canary is not None:
            champion.canary = cache(self.canary[0], optional=True)
            champion.canary_rule = CanaryRule(self.canary[1])
        return champion

    def all(self) -> list[ModelCache]:
        return list(self._caches.values())

    def scorer_of(self, directory: str, name: str) -> Scorer:
        """The serving scorer of a model a client names (blocking: call it off the loop)."""
        return self.cache_of(directory, name).current()

    def cached(self, directory: str, name: str) -> ModelCache | None:
        """The cache of a model already in use (no loading: safe on the event loop)."""
        return self._caches.get((directory, name))

    def cache_of(self, directory: str, name: str) -> ModelCache:
        """The cache of a model a client names, loaded on first use (blocking)."""
        key = (directory, check_name("model", name))
        cache = self._caches.get(key)
        if cache is None:
            if name not in ModelRegistry(self.storage, directory).models():
                raise NotFound(f"no model {name!r} in {directory or 'the storage root'!r}")
            with self._lock:
                if key not in self._caches and len(self._caches) >= MAX_CACHED_MODELS:
                    oldest = next(k for k, c in self._caches.items() if c is not self.served)
                    self._caches.pop(oldest)
                cache = self._caches.setdefault(key, self._new(directory, name))
            cache.refresh()
        return cache

    def refresh(self, directory: str, name: str) -> None:
        """Follow a model's alias now (after this replica trained it), not on the next tick."""
        cache = self._caches.get((directory, name))
        if cache is not None:
            cache.refresh()

    def refresh_all(self) -> None:
        for cache in self.all():
            cache.refresh()
