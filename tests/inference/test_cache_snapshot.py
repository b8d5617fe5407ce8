"""One routing snapshot per request: champion, canary and shadow are handed out together, as
one refresh left them, so a promotion while a request is scored never mixes versions."""

from __future__ import annotations

from collections.abc import Callable

from loanrisk.inference.cache import ModelCaches, Routing
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import LoadedModel, ModelRegistry
from loanrisk.storage import MemoryStorage

NAME = "loan-default"


def copied(storage: MemoryStorage) -> MemoryStorage:
    """A copy of the shared storage, so these tests move aliases on their own."""
    copy = MemoryStorage("snapshot")
    for path in storage.walk_files(""):
        copy.write_bytes(path, storage.read_bytes(path))
    return copy


def versions(routing: Routing) -> tuple[int, int | None, int | None]:
    """(champion, canary, shadow) versions of a snapshot."""
    canary, shadow = routing.canary, routing.shadow
    return (
        routing.champion.version,
        canary.version if canary is not None else None,
        shadow.version if shadow is not None else None,
    )


def point(registry: ModelRegistry, production: int, challenger: int) -> None:
    registry.promote(NAME, production)
    registry.promote(NAME, challenger, "canary")
    registry.promote(NAME, challenger, "shadow")


def caches(storage: MemoryStorage, build: Callable[[LoadedModel], Scorer] = Scorer) -> ModelCaches:
    return ModelCaches(
        storage,
        directory="models",
        name=NAME,
        ref="production",
        build=build,
        shadow_alias="shadow",
        canary=("canary", 30.0),
    )


def test_a_snapshot_taken_before_a_reload_keeps_its_versions(
    trained: tuple[MemoryStorage, str],
) -> None:
    storage = copied(trained[0])
    registry = ModelRegistry(storage)
    point(registry, production=1, challenger=2)
    served = caches(storage).served
    served.refresh()
    before = served.snapshot()
    assert versions(before) == (1, 2, 2)
    assert before.rule is not None and before.rule.percent == 30.0

    point(registry, production=2, challenger=1)
    assert served.refresh() is True

    assert versions(before) == (1, 2, 2)  # a request that took it finishes on its versions
    assert versions(served.snapshot()) == (2, 1, 1)
    assert served.current() is served.snapshot().champion


def test_champion_canary_and_shadow_come_from_one_cache_state_even_mid_refresh(
    trained: tuple[MemoryStorage, str],
) -> None:
    """While a promotion is being followed, the champion has moved before the canary and the
    shadow have: a request routed then would pair the new champion with the old challenger
    (or with none). Every snapshot taken during the refresh is the old state whole."""
    storage = copied(trained[0])
    registry = ModelRegistry(storage)
    point(registry, production=1, challenger=2)
    seen: list[tuple[int, int | None, int | None]] = []
    holder: list[ModelCaches] = []

    def build(model: LoadedModel) -> Scorer:
        served = holder[0].served if holder else None
        if served is not None and served.serving() is not None:
            seen.append(versions(served.snapshot()))  # a request arriving mid-refresh
        return Scorer(model)

    holder.append(caches(storage, build))
    served = holder[0].served
    served.refresh()
    assert versions(served.snapshot()) == (1, 2, 2)

    point(registry, production=2, challenger=1)
    served.refresh()  # builds version 2 for the champion, then 1 for canary and shadow

    assert len(seen) == 3
    assert set(seen) == {(1, 2, 2)}
    assert versions(served.snapshot()) == (2, 1, 1)


def test_a_companion_on_the_champions_version_is_not_routed_to(
    trained: tuple[MemoryStorage, str],
) -> None:
    storage = copied(trained[0])
    point(ModelRegistry(storage), production=1, challenger=1)
    served = caches(storage).served
    served.refresh()
    routing = served.snapshot()
    assert versions(routing) == (1, None, None)
    assert routing.rule is None  # no canary: nothing to split
