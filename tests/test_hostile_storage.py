"""Hostile storage: one bad stored item (a symlink leading out of the storage, a corrupt alias
record, an unreadable prediction-log, outcomes or dataset file) never takes a listing or a
report down. Through a real app on a real local storage, each listing or report answers 200,
names the bad item in ``problems`` (and in ``loanrisk_bad_items``) and serves the rest; the
repair routes overwrite a corrupt alias; reading the bad item by name is still refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.registry.models import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
ALIAS = "models/loan-default/aliases/production.json"
LOGGED = 300


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage with a dataset, two versions (production: 2, was 1), a challenger alias,
    and LOGGED loans on the prediction log."""
    path = tmp_path_factory.mktemp("pristine") / "store"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(2_000, seed=0)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    run_training(TrainingRequest(rounds=6), storage, nthread=1)
    registry = ModelRegistry(storage)
    registry.promote("loan-default", 2, "production")
    registry.promote("loan-default", 1, "challenger")
    scorer = Scorer(registry.load("loan-default", "production"))
    log = PredictionLog(storage, "prediction-log", flush_seconds=60)
    records = as_records(generate_sample(LOGGED, seed=1).drop(columns=["loan_status"]))
    for record in records:
        record["loan_id"] = f"L{len(str(record))}-{id(record)}"
    log.scored_records(scorer, records, scorer.score_records(records), source="test")
    log.close()
    return path


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pristine storage for each test to spoil."""
    path = tmp_path / "store"
    shutil.copytree(pristine, path, symlinks=True)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the storage, holding what a link out of it would expose."""
    path = tmp_path / "outside"
    (path / "versions" / "1").mkdir(parents=True)
    (path / "versions" / "1" / "manifest.json").write_text("{}")
    (path / "manifest.json").write_text("{}")
    (path / "secret.json").write_text('{"version": 1}')
    (path / "secret.parquet").write_bytes(b"PAR1 secret")
    return path


def client_for(root: Path) -> TestClient:
    settings = Settings(storage=str(root), nthread=1, drift_interval=3600)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    with client_for(root) as test_client:
        yield test_client


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    doc: dict[str, Any] = response.json()
    return doc


def named(doc: dict[str, Any], kind: str) -> list[str]:
    return [p["path"] for p in doc["problems"] if p["kind"] == kind]


def gauge(client: TestClient, view: str, kind: str) -> float:
    prefix = f'loanrisk_bad_items{{kind="{kind}",view="{view}"}} '
    text = client.get("/metrics").text
    line = next((x for x in text.splitlines() if x.startswith(prefix)), None)
    assert line is not None, f"no {prefix!r} in /metrics"
    return float(line.rsplit(" ", 1)[1])


def log_folder(root: Path) -> Path:
    (folder,) = (root / "prediction-log" / "model=loan-default").iterdir()
    return folder


# -- symlinks leading out of the storage ------------------------------------------------------


def test_a_symlink_out_of_the_storage_is_skipped_and_named_in_each_listing(
    root: Path, outside: Path
) -> None:
    (root / "models" / "evil").symlink_to(outside)
    (root / "models" / "loan-default" / "aliases" / "stolen.json").symlink_to(
        outside / "secret.json"
    )
    (root / "data" / "datasets" / "evil").symlink_to(outside)
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / "evil.json").symlink_to(outside / "secret.json")
    (log_folder(root) / "evil.parquet").symlink_to(outside / "secret.parquet")
    (root / "outcomes").mkdir(exist_ok=True)
    (root / "outcomes" / "evil.parquet").symlink_to(outside / "secret.parquet")

    with client_for(root) as client:
        models = ok(client.get("/v1/models"))
        assert [m["name"] for m in models["models"]] == ["loan-default"]
        assert set(models["models"][0]["aliases"]) == {"challenger", "production"}
        assert named(models, "link") == ["models/evil"]
        assert named(models, "alias") == ["models/loan-default/aliases/stolen.json"]
        assert all(str(outside) not in p["message"] for p in models["problems"])
        assert gauge(client, "models", "link") == 1.0

        datasets = ok(client.get("/v1/datasets"))
        assert len(datasets["datasets"]) == 1
        assert named(datasets, "dataset") == ["data/datasets/evil"]
        assert gauge(client, "datasets", "dataset") == 1.0

        assert ok(client.get("/v1/jobs"))["jobs"] is not None

        drift = ok(client.get("/v1/models/loan-default/drift"))
        assert drift["rows"] == LOGGED
        assert [p.rsplit("/", 1)[1] for p in named(drift, "log_file")] == ["evil.parquet"]

        performance = ok(client.get("/v1/models/loan-default/performance"))
        assert named(performance, "outcome_file") == ["outcomes/evil.parquet"]
        assert len(named(performance, "log_file")) == 1

        # Read by name, each is still refused.
        for url in (
            "/v1/models/evil",
            "/v1/models/evil/versions/1",
            "/v1/datasets/evil",
            "/v1/models/loan-default/versions/stolen",
        ):
            response = client.get(url)
            assert response.status_code == 403, (url, response.text)
            assert response.json()["error"]["code"] == "path_not_allowed"


# -- a corrupt alias record --------------------------------------------------------------------


def test_a_truncated_alias_is_flagged_and_the_rest_listed(root: Path) -> None:
    path = root / ALIAS
    path.write_bytes(path.read_bytes()[:60])
    with client_for(root) as client:
        models = ok(client.get("/v1/models"))
        (model,) = models["models"]
        assert model["versions"] == [1, 2]
        assert set(model["aliases"]) == {"challenger"}
        assert named(models, "alias") == [ALIAS]
        (problem,) = models["problems"]
        assert "corrupt" in problem["message"] and "repair" in problem["message"]
        assert gauge(client, "models", "alias") == 1.0
        assert named(ok(client.get("/v1/models/loan-default")), "alias") == [ALIAS]

        # A PUT replaces the record, and the next listing is clean (the gauge back to 0).
        moved = ok(client.put("/v1/models/loan-default/aliases/production", json={"version": 1}))
        assert moved["version"] == 1 and moved["previous"] == 2  # read from what was left
        again = ok(client.get("/v1/models"))
        assert again["problems"] == []
        assert again["models"][0]["aliases"]["production"]["version"] == 1
        assert gauge(client, "models", "alias") == 0.0


def test_a_rollback_repairs_a_truncated_alias_with_the_previous_version_it_still_shows(
    client: TestClient, root: Path
) -> None:
    path = root / ALIAS
    text = path.read_text()
    assert '"previous": 1,' in text
    path.write_text(text[: text.index('"previous": 1,') + len('"previous": 1,')])
    back = ok(client.post("/v1/models/loan-default/aliases/production/rollback"))
    assert back["version"] == 1 and back["previous"] == 2
    assert ok(client.get("/v1/models"))["problems"] == []


def test_a_garbage_alias_cannot_be_rolled_back_but_a_put_repairs_it(
    client: TestClient, root: Path
) -> None:
    (root / ALIAS).write_bytes(b"\x00\xffnot json at all")
    refused = client.post("/v1/models/loan-default/aliases/production/rollback")
    assert refused.status_code == 409, refused.text
    assert "corrupt" in refused.json()["error"]["message"]
    moved = ok(client.put("/v1/models/loan-default/aliases/production", json={"version": 2}))
    assert moved["version"] == 2 and moved["previous"] is None
    assert ok(client.get("/v1/models"))["problems"] == []
    assert ok(client.post("/v1/predict", json=as_records(generate_sample(2, seed=5))))


def test_a_training_never_takes_a_corrupt_production_alias_for_an_absent_one(root: Path) -> None:
    damaged = (root / ALIAS).read_bytes()[:60]
    (root / ALIAS).write_bytes(damaged)
    storage = FsspecStorage(str(root))
    result = run_training(TrainingRequest(rounds=3), storage, nthread=1)
    assert result.manifest.version == 3 and not result.promoted
    assert (root / ALIAS).read_bytes() == damaged  # left for an operator to repair


def test_the_cli_lists_models_with_a_corrupt_alias_and_names_it(root: Path) -> None:
    (root / ALIAS).write_bytes(b'{"alias": "production", "vers')
    done = subprocess.run(
        [LOANRISK, "models", "list", "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "loan-default" in done.stdout and "challenger -> 1" in done.stdout
    assert "Traceback" not in done.stderr
    assert f"skipped {ALIAS}: " in done.stderr and "corrupt" in done.stderr


# -- retiring the served alias -----------------------------------------------------------------


def test_the_served_alias_is_retired_only_with_force(client: TestClient) -> None:
    refused = client.post("/v1/models/loan-default/aliases/production/retire")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "'production'" in error["message"] and error["details"]["alias"] == "production"
    assert ok(client.get("/v1/models"))["models"][0]["aliases"]["production"]["version"] == 2
    assert ok(client.post("/v1/models/loan-default/aliases/challenger/retire"))["version"] is None
    forced = client.post("/v1/models/loan-default/aliases/production/retire", json={"force": True})
    assert ok(forced)["version"] is None


def test_the_cli_retires_the_served_alias_only_with_force(root: Path) -> None:
    command = [LOANRISK, "models", "retire", "loan-default", "--alias", "production"]
    command += ["--storage", str(root)]
    run = {"capture_output": True, "text": True, "timeout": 120, "check": False}
    refused = subprocess.run(command, **run)  # type: ignore[call-overload]
    assert refused.returncode == 1 and "'production'" in refused.stderr
    assert "Traceback" not in refused.stderr
    forced = subprocess.run([*command, "--force"], **run)  # type: ignore[call-overload]
    assert forced.returncode == 0, forced.stderr
    assert "production retired" in forced.stdout


# -- corrupt prediction-log, outcomes and dataset files ----------------------------------------


def test_a_corrupt_log_file_is_skipped_by_drift_performance_and_outcomes(
    client: TestClient, root: Path
) -> None:
    bad = log_folder(root) / "zz-corrupt.parquet"
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    (log_folder(root) / "truncated.parquet").write_bytes(
        next(log_folder(root).glob("*.parquet")).read_bytes()[:100]
    )
    drift = ok(client.get("/v1/models/loan-default/drift"))
    assert drift["rows"] == LOGGED and drift["probability"] is not None
    assert sorted(p.rsplit("/", 1)[1] for p in named(drift, "log_file")) == [
        "truncated.parquet",
        "zz-corrupt.parquet",
    ]
    assert gauge(client, "drift", "log_file") == 2.0

    today = datetime.now(UTC).date().isoformat()
    outcomes = [{"loan_id": "nobody", "defaulted": True, "observed_on": today}]
    stored = ok(client.post("/v1/outcomes", json={"outcomes": outcomes}))
    assert stored["stored"] == 1 and stored["unknown_loans"] == 1
    assert len(named(stored, "log_file")) == 2

    (root / "outcomes" / "broken.parquet").write_bytes(b"garbage")
    performance = ok(client.get("/v1/models/loan-default/performance"))
    assert [v["scored"] for v in performance["versions"]] == [LOGGED]
    assert named(performance, "outcome_file") == ["outcomes/broken.parquet"]
    assert len(named(performance, "log_file")) == 2
    assert gauge(client, "performance", "outcome_file") == 1.0


def test_the_cli_reports_drift_past_a_corrupt_log_file_naming_it(root: Path) -> None:
    (log_folder(root) / "zz-corrupt.parquet").write_bytes(b"not parquet")
    done = subprocess.run(
        [LOANRISK, "monitor", "drift", "--storage", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "skipped prediction-log/model=loan-default/" in done.stderr
    assert "zz-corrupt.parquet" in done.stderr


def test_a_corrupt_profile_is_replaced_by_one_made_from_the_dataset(
    client: TestClient, root: Path
) -> None:
    profile = root / "models" / "loan-default" / "versions" / "2" / "profile.json"
    profile.write_text('{"not": "a profile"}')
    drift = ok(client.get("/v1/models/loan-default/drift"))
    assert drift["rows"] == LOGGED and drift["probability"] is not None
    assert named(drift, "profile") == ["models/loan-default/versions/2/profile.json"]


def test_a_corrupt_dataset_is_flagged_and_the_rest_listed(client: TestClient, root: Path) -> None:
    broken = root / "data" / "datasets" / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"id": "broken", "rows":')
    datasets = ok(client.get("/v1/datasets"))
    assert len(datasets["datasets"]) == 1
    assert named(datasets, "dataset") == ["data/datasets/broken"]
    assert "corrupt" in datasets["problems"][0]["message"]
    assert gauge(client, "datasets", "dataset") == 1.0


def test_an_s3_source_on_local_storage_is_refused_as_outside_the_storage(
    client: TestClient,
) -> None:
    response = client.post("/v1/datasets", json={"source": "s3://loan-default/raw.csv"})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "path_not_allowed"
