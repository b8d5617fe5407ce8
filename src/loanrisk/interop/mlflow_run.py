"""A published version's training run, logged to MLflow (``loanrisk train
--mlflow-tracking-uri``, or the ``mlflow_tracking_uri`` setting for every training job).

One run per version, in the experiment named by the setting (default: the model's name):
- parameters: the XGBoost parameters, the rounds, the threshold, the dataset and the parent;
- metrics: the evaluation report's figures (:func:`report_metrics`), equal to its values;
- tags: the model, version, dataset id, schema and FeatureSpec hashes, and the SHA-256 of
  every file of the version and of the dataset;
- artifacts: ``report.json``, ``manifest.json``, ``model_card.html`` and ``plots/*.svg``;
- with ``mlflow_register``: the MLflow model (:mod:`loanrisk.interop.mlflow_model`) under
  ``model/``, registered under the model's name, tagged with the loanrisk version, and the
  loanrisk aliases that point at the version set on it.

The version is published before any of this: MLflow being unreachable, slow or refusing is a
warning in the result, never a lost version. Each request is bounded by ``mlflow_timeout``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from loanrisk.contracts import DatasetManifest, MlflowRegistration, MlflowRun, MlflowWarning
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import NotFound, describe_error
from loanrisk.interop.mlflow_model import export_mlflow, require_mlflow
from loanrisk.registry.manifest import ModelManifest
from loanrisk.registry.models import LATEST, ModelRegistry
from loanrisk.registry.report import EvaluationReport
from loanrisk.reporting.card import card_of
from loanrisk.reporting.facts import VersionFacts, version_facts
from loanrisk.settings import Settings

#: The report's classes as metric prefixes.
CLASSES = {
    "Non-Default": "non_default",
    "Default": "default",
    "macro avg": "macro_avg",
    "weighted avg": "weighted_avg",
}
CLASS_FIGURES = {
    "precision": "precision",
    "recall": "recall",
    "f1-score": "f1",
    "support": "support",
}


#: Characters an MLflow metric name may not hold.
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def report_metrics(report: EvaluationReport) -> dict[str, float]:
    """The report's figures as MLflow metrics: ``auc``, ``log_loss``, ``brier``, ``ks``,
    ``accuracy``, ``rows``, ``confusion.<tn|fp|fn|tp>``, ``<class>.<precision|recall|f1|
    support>`` and, with a fairness report, ``fairness.<attribute>.<rate>`` parity ratios and
    ``air.<attribute>.<group>`` and ``smd.<attribute>.<group>`` (characters MLflow refuses in a
    name become ``_``)."""
    classes = report.classification_report
    metrics = {
        "auc": report.auc,
        "log_loss": report.log_loss,
        "brier": report.brier,
        "ks": report.ks,
        "rows": float(report.rows),
        "accuracy": classes.accuracy,
    }
    metrics |= {f"confusion.{k}": float(v) for k, v in report.confusion_matrix.model_dump().items()}
    rows = classes.rows()
    for name, prefix in CLASSES.items():
        scores = rows[name].model_dump()
        for figure, short in CLASS_FIGURES.items():
            metrics[f"{prefix}.{short}"] = float(scores[figure])
    for attribute, fairness in (report.fairness_by_attribute or {}).items():
        for rate, ratio in fairness.parity.items():
            if ratio is not None:
                metrics[f"fairness.{attribute}.{rate}"] = float(ratio)
    for attribute, measures in (report.fairness_measures or {}).items():
        for group in measures.groups:
            key = _METRIC_UNSAFE.sub("_", f"{attribute}.{group.group}")
            if group.air is not None and group.air.air is not None:
                metrics[f"air.{key}"] = group.air.air
            if group.smd is not None and group.smd.smd is not None:
                metrics[f"smd.{key}"] = group.smd.smd
    return metrics


def run_params(manifest: ModelManifest) -> dict[str, str]:
    """What the version was trained with."""
    rounds = manifest.rounds
    parent = manifest.parent
    described = {
        "rounds.requested": rounds.get("requested"),
        "rounds.trained": rounds.get("trained"),
        "rounds.best_iteration": rounds.get("best_iteration"),
        "rounds.total_trees": rounds.get("total_trees"),
        "threshold": manifest.threshold,
        "nthread": manifest.nthread,
        "dataset": (manifest.dataset or {}).get("id"),
        "parent": f"{parent.name}@{parent.version}" if parent else None,
    }
    return {k: str(v)[:6000] for k, v in (manifest.params | described).items()}


def run_tags(manifest: ModelManifest, catalogue: DatasetCatalogue | None) -> dict[str, str]:
    """The version and the data it came from, by name and by hash."""
    tags = {
        "loanrisk.model": manifest.name,
        "loanrisk.version": str(manifest.version),
        "loanrisk.created_at": manifest.created_at,
    }
    if manifest.schema_ref is not None:
        tags |= {
            "loanrisk.schema.name": manifest.schema_ref.name,
            "loanrisk.schema.hash": manifest.schema_ref.hash,
        }
    if manifest.feature_spec is not None:
        tags["loanrisk.feature_spec"] = str(manifest.feature_spec.get("fingerprint"))
    tags |= {f"loanrisk.sha256.{f}": e.sha256 for f, e in manifest.files.items()}
    trained_on = manifest.training_dataset
    if trained_on is not None:
        directory, dataset_id = trained_on
        tags |= {"loanrisk.dataset.id": dataset_id, "loanrisk.dataset.directory": directory}
        dataset = _dataset(catalogue, dataset_id) if catalogue is not None else None
        if dataset is not None:
            tags |= {
                "loanrisk.dataset.schema_hash": dataset.schema_hash,
                "loanrisk.dataset.feature_spec": dataset.feature_spec,
            }
            tags |= {f"loanrisk.dataset.sha256.{f}": e.sha256 for f, e in dataset.files.items()}
    return tags


def _dataset(catalogue: DatasetCatalogue, dataset_id: str) -> DatasetManifest | None:
    """The dataset's manifest; None when it has been removed since (its id still tags)."""
    try:
        return catalogue.get(dataset_id)
    except NotFound:
        return None


def _artifacts(facts: VersionFacts, settings: Settings, into: Path) -> None:
    into.joinpath("report.json").write_text(json.dumps(facts.report.to_json(), indent=2) + "\n")
    into.joinpath("manifest.json").write_text(facts.manifest.model_dump_json(indent=2) + "\n")
    into.joinpath("model_card.html").write_text(card_of(facts, settings))
    plots = into / "plots"
    plots.mkdir()
    for chart in facts.charts:
        plots.joinpath(f"{chart.key}.svg").write_text(chart.svg)


def log_training(
    settings: Settings, registry: ModelRegistry, manifest: ModelManifest
) -> MlflowRun | MlflowWarning:
    """Log version ``manifest`` as an MLflow run (register it when the settings say so).

    Returns what was done (the run, its experiment, the registered version) or, when MLflow
    could not be reached or refused, a warning. Never raises.
    """
    uri = settings.mlflow_tracking_uri
    assert uri is not None
    # MLflow reads these on each request; the defaults retry for minutes.
    timeout = str(max(1, round(settings.mlflow_timeout)))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    run_id = None
    client: Any = None
    try:
        mlflow = require_mlflow()
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment_name = settings.mlflow_experiment or manifest.name
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(experiment_name)
        )
        dataset_directory = (manifest.training_dataset or ("data", ""))[0]
        catalogue = DatasetCatalogue(registry.storage, dataset_directory)
        tags = run_tags(manifest, catalogue if manifest.training_dataset else None)
        run = client.create_run(
            experiment_id, run_name=f"{manifest.name} v{manifest.version}", tags=tags
        )
        run_id = run.info.run_id
        registered = _log_run(client, run_id, registry, manifest, settings)
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:  # MLflow is optional: the version stands, the user is told
        warning = (
            f"{manifest.name} version {manifest.version} is published, but MLflow at "
            f"{uri} was not updated: {describe_error(exc)}"
        )
        if run_id is not None:
            with contextlib.suppress(Exception):  # the same outage: the warning says it all
                client.set_terminated(run_id, "FAILED")
        return MlflowWarning(warning=warning, run_id=run_id)
    return MlflowRun(
        tracking_uri=uri,
        experiment=experiment_name,
        experiment_id=experiment_id,
        run_id=run_id,
        registered=registered,
    )


def _log_run(
    client: Any, run_id: str, registry: ModelRegistry, manifest: ModelManifest, settings: Settings
) -> MlflowRegistration | None:
    """Log the run's metrics, parameters and artefacts; register it when the settings say so."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    facts = version_facts(registry, manifest.name, manifest.version)  # read once
    metrics = [Metric(k, v, now, 0) for k, v in report_metrics(facts.report).items()]
    params = [Param(k, v) for k, v in run_params(manifest).items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    with tempfile.TemporaryDirectory(prefix="loanrisk-mlflow-") as tmp:
        _artifacts(facts, settings, Path(tmp))
        client.log_artifacts(run_id, tmp)
    if not settings.mlflow_register:
        return None
    with tempfile.TemporaryDirectory(prefix="loanrisk-mlflow-") as tmp:
        exported = export_mlflow(
            registry, manifest.name, manifest.version, Path(tmp, "model"), settings
        )
        client.log_artifacts(run_id, str(exported), "model")
    return _register(client, run_id, facts)


def _register(client: Any, run_id: str, facts: VersionFacts) -> MlflowRegistration:
    from mlflow.exceptions import MlflowException

    name = facts.name
    try:
        client.create_registered_model(name, description="Trained and published by loanrisk.")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(
        name, source, run_id=run_id, tags={"loanrisk.version": str(facts.version)}
    )
    aliases = [alias for alias in facts.aliases if alias != LATEST]
    mirrored, refused = [], {}
    for alias in aliases:
        try:
            client.set_registered_model_alias(name, alias, version.version)
            mirrored.append(alias)
        except MlflowException as exc:
            refused[alias] = exc.message
    return MlflowRegistration(
        name=name, version=int(version.version), aliases=mirrored, aliases_refused=refused
    )
