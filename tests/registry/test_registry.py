"""The model registry on every storage: versions, verification, aliases, concurrency, crashes."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from loanrisk.errors import Conflict, InvalidInput, NotFound, StorageError
from loanrisk.features.spec import FeatureSpec, ImputedColumn
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
from tests.storage.doubles import WholeReadsRecorded

SPEC = FeatureSpec(imputed=(ImputedColumn("loan_int_rate", 11.0),), power=(), onehot=())


def tiny_booster(rounds: int = 3, seed: int = 0) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(200, 1))
    labels = (features[:, 0] > 0).astype(int)
    return xgb.train(
        {"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(features, label=labels), rounds
    )


def publish(registry: ModelRegistry, name: str = "m", **metadata: Any) -> dict[str, Any]:
    return registry.publish(
        name, booster=tiny_booster(), spec=SPEC, report={"auc": 0.9}, metadata=metadata
    )


def test_publish_and_load_round_trip(storage: Storage) -> None:
    registry = ModelRegistry(storage)
    first = publish(registry, dataset={"id": "ds-1"})
    second = publish(registry)
    assert (first.version, second.version) == (1, 2)
    assert registry.versions("m") == [1, 2]
    assert registry.models() == ["m"]
    loaded = registry.load("m", "latest")
    assert loaded.version == 2
    assert loaded.spec == SPEC
    assert loaded.booster.num_boosted_rounds() == 3
    assert registry.load("m", 1).manifest.dataset == {"id": "ds-1"}
    assert set(first.files) == {"model.ubj", "feature_spec.json", "schema.json", "report.json"}
    assert loaded.schema == builtin_schema()
    assert json.loads(registry.file("m", 1, "report.json") or b"") == {"auc": 0.9}
    with pytest.raises(StorageError, match="not an evaluation report"):
        registry.report("m", 1)


def test_tampered_files_are_detected_on_load() -> None:
    storage = MemoryStorage()
    registry = ModelRegistry(storage)
    publish(registry)
    storage.write_bytes("models/m/versions/1/model.ubj", tiny_booster(rounds=4).save_raw("ubj"))
    with pytest.raises(StorageError, match="does not match its recorded hash"):
        registry.load("m", 1)


def test_verifying_a_file_reads_it_in_chunks_and_refuses_a_changed_one() -> None:
    storage = WholeReadsRecorded()
    registry = ModelRegistry(storage)
    publish(registry)
    storage.whole.clear()
    registry.verify_file("m", 1, "model.ubj")
    assert storage.whole == ["models/m/versions/1/manifest.json"]  # the model: in chunks
    model = "models/m/versions/1/model.ubj"
    same_size = bytearray(storage.read_bytes(model))
    same_size[-1] ^= 1
    for changed in (bytes(same_size), bytes(same_size) + b"x"):
        storage.write_bytes(model, changed)
        with pytest.raises(StorageError, match=r"m' version 1: model\.ubj does not match"):
            registry.verify_file("m", 1, "model.ubj")
        with pytest.raises(StorageError, match=r"model\.ubj does not match its recorded hash"):
            registry.load("m", 1)
    storage.delete(model)
    with pytest.raises(NotFound):
        registry.verify_file("m", 1, "model.ubj")


def test_references_resolve_and_bad_ones_are_clear() -> None:
    registry = ModelRegistry(MemoryStorage())
    with pytest.raises(NotFound, match="has no versions"):
        registry.resolve("m", "latest")
    publish(registry)
    publish(registry)
    assert registry.resolve("m", "v1") == 1
    assert registry.resolve("m", "2") == 2
    assert registry.resolve("m", 2) == 2
    with pytest.raises(NotFound, match="no version 9"):
        registry.resolve("m", 9)
    with pytest.raises(NotFound, match="no alias 'production'"):
        registry.resolve("m", "production")
    for bad in ("../../x", "a/b", "", "x" * 65, ".hidden"):
        with pytest.raises(InvalidInput, match="invalid model name"):
            registry.versions(bad)


def test_promote_and_rollback_keep_history() -> None:
    registry = ModelRegistry(MemoryStorage())
    for _ in range(3):
        publish(registry)
    assert registry.promote("m", 1)["previous"] is None
    with pytest.raises(Conflict, match="no previous version"):
        registry.rollback("m")
    registry.promote("m", 3)
    assert registry.resolve("m", "production") == 3
    back = registry.rollback("m")
    assert (back["version"], back["previous"]) == (1, 3)
    assert [h["version"] for h in back["history"]] == [1, 3, 1]
    registry.promote("m", 2, "staging")
    assert set(registry.aliases("m")) == {"production", "staging"}
    with pytest.raises(InvalidInput, match="cannot be moved"):
        registry.promote("m", 1, "latest")
    with pytest.raises(NotFound):
        registry.promote("m", 7)


def test_a_claimed_but_unfinished_version_is_invisible_and_skipped() -> None:
    storage = MemoryStorage()
    registry = ModelRegistry(storage)
    publish(registry)
    storage.create_exclusive("models/m/versions/2/claim.json", b"{}")  # a publisher that died
    assert registry.versions("m") == [1]
    assert registry.resolve("m", "latest") == 1
    assert publish(registry).version == 3


def _publish_in_process(settings: Settings, barrier: Any, results: Any) -> None:
    registry = ModelRegistry(open_storage(settings))
    barrier.wait()
    manifest = registry.publish("m", booster=tiny_booster(), spec=SPEC, report={}, metadata={})
    results.put(manifest.version)


def _shared_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of a storage several processes share: a local directory, or the S3 server."""
    if backend == "local":
        return Settings(storage=str(tmp_path))
    settings: Settings = request.getfixturevalue("s3_settings")
    return settings


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_processes_publishing_at_once_get_two_versions(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = _shared_settings(backend, tmp_path, request)
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    processes = [
        context.Process(target=_publish_in_process, args=(settings, barrier, results))
        for _ in range(3)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    versions = sorted(results.get(timeout=5) for _ in range(3))
    assert versions == [1, 2, 3]
    registry = ModelRegistry(open_storage(settings))
    assert registry.versions("m") == [1, 2, 3]
    for version in versions:
        assert registry.load("m", version).booster.num_boosted_rounds() == 3


def _promote_in_process(settings: Settings, barrier: Any, by: str) -> None:
    registry = ModelRegistry(open_storage(settings))
    barrier.wait(60)
    for move in range(4):
        registry.promote("m", 1 + move % 2, "production", by=f"{by}-{move}")


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_moves_of_one_alias_at_once_from_three_processes_all_stay_in_its_history(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = _shared_settings(backend, tmp_path, request)
    registry = ModelRegistry(open_storage(settings))
    publish(registry)
    publish(registry)
    context = mp.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [
        context.Process(target=_promote_in_process, args=(settings, barrier, f"p{i}"))
        for i in range(3)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    history = registry.aliases("m")["production"]["history"]
    assert sorted(h["by"] for h in history) == sorted(
        f"p{i}-{m}" for i in range(3) for m in range(4)
    )
    assert registry.storage.list(registry.storage.join("models", "m", "aliases")) == [
        "production.json"
    ]  # the lock is gone


def test_a_lock_left_by_a_dead_mover_is_taken_over_and_a_live_one_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loanrisk.registry import alias_lock

    registry = ModelRegistry(MemoryStorage())
    publish(registry)
    lock = "models/m/aliases/production.lock"
    registry.storage.write_bytes(lock, json.dumps({"at": 0.0, "by": "gone:1"}).encode())
    assert registry.promote("m", 1)["version"] == 1  # a lock from 1970: its mover died
    assert not registry.storage.exists(lock)
    monkeypatch.setattr(alias_lock, "WAIT_SECONDS", 0.3)
    registry.storage.write_bytes(lock, json.dumps({"at": time.time()}).encode())
    with pytest.raises(Conflict, match="'production' of model 'm' is being moved"):
        registry.promote("m", 1)
    assert registry.storage.exists(lock)  # another mover's lock is left alone


KILL_MID_PUBLISH = """
import os, sys
from loanrisk.storage import FsspecStorage
from loanrisk.registry import ModelRegistry
sys.path.insert(0, sys.argv[2])
from test_registry import SPEC, tiny_booster

class DiesBeforeManifest(FsspecStorage):
    def write_bytes(self, path, data):
        if path.endswith("manifest.json"):
            os._exit(9)
        super().write_bytes(path, data)

registry = ModelRegistry(DiesBeforeManifest(sys.argv[1]))
registry.publish("m", booster=tiny_booster(), spec=SPEC, report={}, metadata={})
"""


def test_a_process_killed_mid_publish_leaves_no_loadable_version(tmp_path: Path) -> None:
    registry = ModelRegistry(FsspecStorage(str(tmp_path)))
    publish(registry)
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", KILL_MID_PUBLISH, str(tmp_path), here], check=False, timeout=120
    )
    assert done.returncode == 9
    assert (tmp_path / "models/m/versions/2/model.ubj").exists()  # it did get that far
    assert registry.versions("m") == [1]
    assert registry.load("m", "latest").version == 1
    assert publish(registry).version == 3
    manifest = json.loads((tmp_path / "models/m/versions/3/manifest.json").read_text())
    assert manifest["version"] == 3


def test_an_alias_never_moves_to_a_version_that_cannot_be_served() -> None:
    storage = MemoryStorage()
    registry = ModelRegistry(storage)
    publish(registry)
    publish(registry)
    registry.promote("m", 1)
    storage.write_bytes("models/m/versions/2/model.ubj", b"not a model")
    with pytest.raises(Conflict, match=r"version 2 cannot be served: .*recorded hash"):
        registry.promote("m", 2)
    assert registry.resolve("m", "production") == 1

    def refuse(loaded: object) -> None:
        raise ValueError("scores nonsense")

    with pytest.raises(Conflict, match="version 1 cannot be served: ValueError: scores nonsense"):
        registry.promote("m", 1, "staging", check=refuse)
    assert "staging" not in registry.aliases("m")


def test_an_alias_written_before_moves_were_attributed_still_reads_and_moves() -> None:
    storage = MemoryStorage()
    registry = ModelRegistry(storage)
    publish(registry)
    publish(registry)
    old = {
        "alias": "production",
        "version": 1,
        "previous": None,
        "updated_at": "2026-11-01T00:00:00+00:00",
        "history": [{"version": 1, "at": "2026-11-01T00:00:00+00:00"}],
    }
    storage.write_bytes("models/m/aliases/production.json", json.dumps(old).encode())
    assert registry.aliases("m") == {"production": old}  # no keys added, none lost
    moved = registry.promote("m", 2, by="alice", reason="refresh")
    assert moved["history"] == [
        *old["history"],
        {"version": 2, "at": moved["updated_at"], "by": "alice", "reason": "refresh"},
    ]
    storage.write_bytes("models/m/aliases/production.json", b'{"version": "two"}')
    with pytest.raises(StorageError, match="its record is corrupt"):
        registry.resolve("m", "production")
    assert registry.earlier_targets("m", "production", 2) == []


def test_a_corrupt_alias_is_named_not_fatal_and_a_move_replaces_it() -> None:
    storage = MemoryStorage()
    registry = ModelRegistry(storage)
    for _ in range(3):
        publish(registry)
    registry.promote("m", 2)
    registry.promote("m", 3)
    registry.promote("m", 1, "staging")
    path = "models/m/aliases/production.json"
    storage.write_bytes(path, storage.read_bytes(path)[:70])
    listing = registry.alias_listing("m")
    assert set(listing.records) == {"staging"}
    assert [(p.kind, p.path) for p in listing.problems] == [("alias", path)]
    assert "corrupt" in listing.problems[0].message
    assert set(registry.aliases("m")) == {"staging"}
    assert registry.model_listing().names == ["m"]
    with pytest.raises(StorageError, match="corrupt"):
        registry.resolve("m", "production")
    back = registry.rollback("m")  # the truncated record still shows previous 2
    assert (back["version"], back["previous"]) == (2, 3)
    assert registry.alias_listing("m").problems == []
    storage.write_bytes(path, b"\xff garbage")
    with pytest.raises(Conflict, match="corrupt and names no previous version"):
        registry.rollback("m")
    moved = registry.promote("m", 3)
    assert (moved["version"], moved["previous"], len(moved["history"])) == (3, None, 1)
    assert registry.resolve("m", "production") == 3


def test_the_served_alias_is_retired_only_when_forced() -> None:
    registry = ModelRegistry(MemoryStorage())
    publish(registry)
    registry.promote("m", 1)
    registry.promote("m", 1, "challenger")
    with pytest.raises(Conflict, match="'production' of model 'm' is the one the service serves"):
        registry.retire("m", "production", served="production")
    assert registry.resolve("m", "production") == 1
    assert registry.retire("m", "challenger", served="production")["version"] is None
    assert registry.retire("m", "production", served="production", force=True)["version"] is None
