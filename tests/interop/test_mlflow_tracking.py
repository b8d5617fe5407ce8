"""``loanrisk train --mlflow-tracking-uri``: the run reaches a real MLflow server with the
version's report, and an unreachable server never costs the version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage

from ..conftest import free_port
from ..service.test_v1 import finished
from ..test_cli import run

#: Loads the registered model by its mirrored alias, in a fresh interpreter.
LOAD_BY_ALIAS = """
import json, sys
import mlflow
from loanrisk.schema import builtin_schema
model = mlflow.pyfunc.load_model(sys.argv[1])
scored = model.predict([builtin_schema().example_record()])
print(json.dumps(scored.to_dict(orient="records")))
"""


def _newest(store: Path) -> int:
    return ModelRegistry(FsspecStorage(str(store))).versions("loan-default")[-1]


def test_a_training_run_reaches_mlflow_with_the_reports_figures_and_is_registered(
    store: Path, mlflow_server: str, tmp_path: Path
) -> None:
    done = run(
        "train",
        "--storage",
        str(store),
        "--rounds",
        "15",
        "--promote",
        "--mlflow-tracking-uri",
        mlflow_server,
        "--mlflow-experiment",
        "credit-tests",
        "--mlflow-register",
    )
    assert done.returncode == 0, done.stderr
    registry = ModelRegistry(FsspecStorage(str(store)))
    version = _newest(store)
    manifest = registry.manifest("loan-default", version)
    report = registry.report("loan-default", version).to_json()
    assert "registered as loan-default version" in done.stderr and "(production)" in done.stderr

    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("credit-tests")
    assert experiment is not None
    [run_] = client.search_runs(
        [experiment.experiment_id], f"tags.`loanrisk.version` = '{version}'"
    )
    assert run_.info.status == "FINISHED" and run_.info.run_name == f"loan-default v{version}"
    assert run_.info.run_id in done.stderr

    metrics, classes = run_.data.metrics, report["classification_report"]
    for key in ("auc", "log_loss", "brier", "ks", "rows"):
        assert metrics[key] == report[key], key
    assert metrics["accuracy"] == classes["accuracy"]
    assert metrics["default.precision"] == classes["Default"]["precision"]
    assert metrics["default.recall"] == classes["Default"]["recall"]
    assert metrics["non_default.f1"] == classes["Non-Default"]["f1-score"]
    assert metrics["weighted_avg.support"] == classes["weighted avg"]["support"]
    confusion = {k: metrics[f"confusion.{k}"] for k in ("tn", "fp", "fn", "tp")}
    assert confusion == report["confusion_matrix"]

    params = run_.data.params
    assert params["max_depth"] == str(manifest.params["max_depth"])
    assert params["rounds.trained"] == "15" and params["dataset"] == manifest.dataset["id"]
    tags = run_.data.tags
    assert tags["loanrisk.dataset.id"] == manifest.dataset["id"]
    assert tags["loanrisk.schema.hash"] == manifest.schema_ref.hash
    for file, entry in manifest.files.items():
        assert tags[f"loanrisk.sha256.{file}"] == entry.sha256
    dataset = DatasetCatalogue(registry.storage).get(manifest.dataset["id"])
    assert dataset.files
    for file, entry in dataset.files.items():
        assert tags[f"loanrisk.dataset.sha256.{file}"] == entry.sha256

    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    assert {"report.json", "manifest.json", "model_card.html", "plots", "model"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run_.info.run_id, "plots")}
    assert {"plots/roc.svg", "plots/calibration.svg", "plots/confusion.svg"} <= plots
    local = client.download_artifacts(run_.info.run_id, "report.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == report

    registered = client.get_model_version_by_alias("loan-default", "production")
    assert registered.run_id == run_.info.run_id
    assert registered.tags["loanrisk.version"] == str(version)
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_BY_ALIAS, "models:/loan-default@production"],
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    [scored] = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert 0 <= scored["probability"] <= 1 and scored["band"] in ("low", "medium", "high")


def test_an_unreachable_mlflow_is_a_warning_and_the_version_stands(store: Path) -> None:
    before = _newest(store)
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run(
        "train",
        "--storage",
        str(store),
        "--rounds",
        "5",
        "--no-promote",
        "--mlflow-tracking-uri",
        nowhere,
    )
    assert done.returncode == 0, done.stderr
    assert _newest(store) == before + 1
    message = " ".join(done.stderr.split())
    assert f"loan-default version {before + 1} is published, but MLflow at {nowhere}" in message
    assert time.monotonic() - started < 120


def test_without_mlflow_installed_the_training_says_which_extra_to_install(
    store: Path, tmp_path: Path
) -> None:
    script = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from loanrisk.interop.mlflow_run import log_training\n"
        "from loanrisk.registry import ModelRegistry\n"
        "from loanrisk.settings import Settings\n"
        "from loanrisk.storage import FsspecStorage\n"
        "registry = ModelRegistry(FsspecStorage(sys.argv[1]))\n"
        "settings = Settings(mlflow_tracking_uri='http://127.0.0.1:9')\n"
        "print(log_training(settings, registry, registry.manifest('loan-default', 1)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'loanrisk[mlflow]'" in done.stdout and "is published" in done.stdout


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "ftp://127.0.0.1", "127.0.0.1:5000"])
def test_a_tracking_uri_that_is_not_a_server_is_refused_before_training(
    store: Path, uri: str
) -> None:
    before = _newest(store)
    done = run("train", "--storage", str(store), "--rounds", "5", "--mlflow-tracking-uri", uri)
    assert done.returncode == 2 and "mlflow_tracking_uri" in done.stderr
    assert _newest(store) == before
    with pytest.raises(ValueError, match="mlflow_tracking_uri"):
        Settings(mlflow_tracking_uri=uri)


def test_the_services_training_jobs_log_their_runs_when_the_setting_names_a_server(
    store: Path, mlflow_server: str
) -> None:
    settings = Settings(
        storage=str(store),
        nthread=1,
        job_heartbeat=0.2,
        job_stale_after=1.0,
        mlflow_tracking_uri=mlflow_server,
        mlflow_experiment="service-jobs",
    )
    with TestClient(create_app(settings)) as client:
        accepted = client.post(
            "/v1/models/loan-default/versions", json={"rounds": 5, "promote": False}
        )
        record = finished(client, accepted)
    assert record["state"] == "succeeded", record["error"]
    logged = record["result"]["mlflow"]
    assert logged["experiment"] == "service-jobs" and logged["registered"] is None
    run_ = mlflow.MlflowClient(mlflow_server).get_run(logged["run_id"])
    version = record["result"]["manifest"]["version"]
    assert run_.data.tags["loanrisk.version"] == str(version)
    assert run_.data.metrics["auc"] == record["result"]["report"]["auc"]
