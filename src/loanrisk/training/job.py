"""The training job: dataset -> (parent model) -> encode -> train -> evaluate -> publish.

Continued training encodes the new dataset with the **parent's** FeatureSpec, never the
dataset's own: the model's trees split on the parent's encoding, and serving uses the parent's
spec too. Datasets store raw loans, so re-encoding is exact; categories the parent never saw
encode as all-zero one-hot columns (as in scoring) and are counted in the manifest. The new
dataset's declared schema must be compatible with the parent's (:func:`incompatibilities`):
added categories are fine, a changed type or a missing feature is refused before training.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from loanrisk._version import __version__
from loanrisk.contracts import DatasetManifest
from loanrisk.contracts import TrainingRequest as TrainingRequest
from loanrisk.contracts import TrainingResult as TrainingResult
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.split import split_indices
from loanrisk.errors import InvalidInput, NotFound, naming
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.monitoring.profile import profile_of, profile_sample
from loanrisk.registry.calibration import Calibration, check_calibration_size, fit_calibration
from loanrisk.registry.manifest import DistributedRun
from loanrisk.registry.models import (
    CALIBRATION_FILE,
    MASTER_SCALE_FILE,
    PROFILE_FILE,
    REASONS_FILE,
    SCALING_FILE,
    LoadedModel,
    ModelRegistry,
)
from loanrisk.registry.reasons import ReasonCatalog, derived_catalog
from loanrisk.registry.report import (
    CalibrationFigures,
    CalibrationStep,
    EvaluationReport,
)
from loanrisk.schema import LoanSchema, incompatibilities
from loanrisk.storage.base import Storage
from loanrisk.training.assess import assessed, promoted
from loanrisk.training.evaluate import evaluate
from loanrisk.training.monotone import check as monotone_check
from loanrisk.training.monotone import constrained_spec, constraint_param, constraint_vector
from loanrisk.training.scorecard import check_kind, train_scorecard
from loanrisk.training.train import DEFAULT_PARAMS, RoundProgress, train_booster

if TYPE_CHECKING:
    from pydantic import JsonValue

log = logging.getLogger(__name__)
#: The files a training reads rows from: checked against their hashes before it is queued.
SPLIT_FILES = ("train.parquet", "test.parquet")


def _unknown_categories(dataset: DatasetManifest, spec: FeatureSpec) -> dict[str, int]:
    """Training rows per column whose category the spec does not know (from the manifest)."""
    out = {}
    for column in spec.onehot:
        counts = dataset.columns[column.name].counts or {}
        unknown = sum(n for value, n in counts.items() if value not in column.categories)
        if unknown:
            out[column.name] = unknown
    return out


def _load_parent(registry: ModelRegistry, request: TrainingRequest) -> LoadedModel | None:
    if request.continue_from is None:
        return None
    try:
        return registry.load(request.model_name, request.continue_from)
    except (NotFound, InvalidInput) as exc:
        raise type(exc)(
            f"cannot continue training model {request.model_name!r} from "
            f"{request.continue_from!r}: {exc.message}",
            details={**exc.details, "field": "continue_from"},
        ) from None


@dataclass(frozen=True)
class Prepared:
    """What both the single-process and the Dask training start from."""

    dataset: DatasetManifest
    registry: ModelRegistry
    parent: LoadedModel | None
    spec: FeatureSpec
    catalogue: DatasetCatalogue
    schema: LoanSchema
    params: dict[str, JsonValue]
    reasons: ReasonCatalog


def training_params(
    request: TrainingRequest, spec: FeatureSpec, schema: LoanSchema
) -> dict[str, JsonValue]:
    """The reference's parameters, the request's over them, and the monotone constraints."""
    params = {**DEFAULT_PARAMS, **request.params}
    if request.monotone:
        if "monotone_constraints" in request.params:
            raise InvalidInput(
                "give monotone or params.monotone_constraints, not both",
                details={"field": "monotone"},
            )
        params["monotone_constraints"] = constraint_param(constraint_vector(spec, schema))
    return params


def prepare(request: TrainingRequest, storage: Storage) -> Prepared:
    """Find the dataset, load the parent (for continued training) and pick the spec."""
    catalogue = DatasetCatalogue(storage, request.data_directory)
    if request.dataset_size is not None:
        dataset = catalogue.find(size=request.dataset_size)
    else:
        dataset = catalogue.resolve(request.dataset)
    schema = catalogue.load_schema(dataset.id)
    _check_fairness_request(request, dataset, schema)
    _check_calibration_request(request, dataset)
    registry = ModelRegistry(storage, request.model_directory)
    parent = _load_parent(registry, request)
    check_kind(request, parent)
    if parent is not None:
        problems = incompatibilities(parent.schema, schema)
        if problems:
            raise InvalidInput(
                f"cannot continue training {parent.name!r} version {parent.version} (schema "
                f"{parent.schema.name!r}) on dataset {dataset.id!r} (schema {schema.name!r}): "
                + "; ".join(problems),
                details={"problems": problems},
            )
    if parent is not None:
        spec = parent.spec
    else:
        spec = catalogue.load_spec(dataset.id)
        if request.monotone:
            spec = constrained_spec(spec, schema)
    params = training_params(request, spec, schema)
    with naming("reason_catalog"):
        reasons = derived_catalog(schema, request.reason_catalog)
    return Prepared(dataset, registry, parent, spec, catalogue, schema, params, reasons)


def check_request(request: TrainingRequest, storage: Storage) -> None:
    """What a training would refuse, found before its job is queued (the API answers 4xx,
    not a job that fails): everything :func:`prepare` checks, the dataset's splits against
    the hashes its manifest recorded (:class:`~loanrisk.errors.HashMismatch` naming the file
    that changed), and the parameters, which XGBoost is given to train one round on two
    rows. The job checks the splits again as it reads them."""
    prepared = prepare(request, storage)
    for split in SPLIT_FILES:
        prepared.catalogue.verify_file(prepared.dataset.id, split)
    features = np.zeros((2, len(prepared.spec.output_columns)), dtype=np.float32)
    try:
        xgb.train({**prepared.params, "nthread": 1}, xgb.DMatrix(features, label=[0, 1]), 1)
    except xgb.core.XGBoostError as exc:
        raise InvalidInput(
            f"XGBoost refused the parameters: {str(exc).splitlines()[0]}",
            details={"field": "params"},
        ) from None


def evaluate_and_publish(
    request: TrainingRequest,
    prepared: Prepared,
    booster: xgb.Booster,
    *,
    best_iteration: int | None,
    nthread: int,
    timings: dict[str, float],
    distributed: DistributedRun | None = None,
    profile_rows: pd.DataFrame | None = None,
    calibration_rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainingResult:
    """Evaluate ``booster`` on the dataset's test split, publish it, and maybe promote it.

    ``booster`` is the whole trained model (the parent's trees first); after early stopping
    (``best_iteration``) only the trees up to the best iteration are evaluated and published.
    ``profile_rows`` are the training rows the reference profile is counted on (default: read
    from the dataset). ``calibration_rows`` (encoded features, labels) are the held-out
    training rows the request's calibration is fitted on. ``distributed`` (the Dask path)
    is recorded in the manifest.
    """
    parent_rounds = (
        prepared.parent.require_booster("continued training").num_boosted_rounds()
        if prepared.parent
        else 0
    )
    trained_rounds = booster.num_boosted_rounds() - parent_rounds
    if best_iteration is not None:
        booster = booster[: best_iteration + 1]
    clock = time.perf_counter()

    def raw(features: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(xgb.DMatrix(features, nthread=nthread)))

    calibration = None
    if request.calibration != "none":
        if calibration_rows is None:
            raise InvalidInput("calibration needs its held-out split of the training rows")
        calibration = fit_calibration(
            request.calibration, raw(calibration_rows[0]), calibration_rows[1]
        )

    def predict(features: np.ndarray) -> np.ndarray:
        return raw(features) if calibration is None else calibration.apply(raw(features))

    test = prepared.catalogue.load_split(prepared.dataset.id, "test")
    test_features = FeatureTransformer(prepared.spec).transform(test, dtype=np.float32)
    uncalibrated = raw(test_features)
    probability = uncalibrated if calibration is None else calibration.apply(uncalibrated)
    labels = test[prepared.schema.label_name].to_numpy()
    evaluated = evaluate(labels, probability, threshold=request.threshold)
    policy = request.policy
    step = None
    if calibration is not None:
        step = _calibration_step(
            calibration, evaluate(labels, uncalibrated, threshold=request.threshold), evaluated
        )
    monotonicity = monotone_check(
        predict,
        prepared.spec,
        prepared.schema,
        test,
        enforced=request.monotone,
        seed=request.seed,
    )
    report = assessed(
        request,
        prepared.schema,
        labels,
        probability,
        test,
        evaluated,
        calibration_step=step,
        monotonicity=monotonicity,
    )
    timings["evaluate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    dataset, parent, spec = prepared.dataset, prepared.parent, prepared.spec
    metadata = {
        "parent": {"name": parent.name, "version": parent.version} if parent else None,
        "dataset": {
            "id": dataset.id,
            "directory": request.data_directory,
            "requested_size": dataset.requested_size,
            "rows": dataset.rows.model_dump(),
        },
        "feature_spec": {
            "fingerprint": spec.fingerprint(),
            "source": "parent" if parent else "dataset",
            "unknown_categories": _unknown_categories(dataset, spec),
        },
        "params": prepared.params,
        "monotone": {
            "enforced": request.monotone,
            "constraints": monotonicity.constraints,
        },
        "calibration": (
            {"method": calibration.method, **calibration.fitted.model_dump()}
            if calibration is not None
            else None
        ),
        "rounds": {
            "requested": request.rounds,
            "trained": trained_rounds,
            "best_iteration": best_iteration,
            "total_trees": booster.num_boosted_rounds(),
        },
        "threshold": request.threshold,
        "policy": policy.model_dump(mode="json"),
        "metrics": {
            "auc": report.auc,
            "log_loss": report.log_loss,
            "brier": report.brier,
            "accuracy": report.classification_report.accuracy,
        },
        "request": request.model_dump(mode="json"),
        "tuned_from": request.tuned_from,
        "nthread": nthread,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "libraries": {
            "loanrisk": __version__,
            "xgboost": xgb.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        **({"distributed": distributed.model_dump()} if distributed else {}),
    }
    if profile_rows is None:  # the Dask path: its rows were never here
        profile_rows = prepared.catalogue.load_split(dataset.id, "train")
    profile = profile_of(
        profile_rows,
        prepared.schema,
        spec,
        booster,
        seed=request.seed,
        nthread=nthread,
        calibration=calibration,
        scaling=request.scaling,
    )
    del profile_rows
    registry = prepared.registry
    manifest = registry.publish(
        request.model_name,
        booster=booster,
        spec=spec,
        report=report,
        metadata=metadata,
        schema=prepared.schema,
        extra_files={
            PROFILE_FILE: profile.model_dump_json().encode(),
            REASONS_FILE: prepared.reasons.model_dump_json(indent=2).encode(),
            MASTER_SCALE_FILE: request.master_scale.to_json().encode(),
            SCALING_FILE: request.scaling.to_json().encode(),
            **({CALIBRATION_FILE: calibration.to_json().encode()} if calibration else {}),
        },
    )
    promote, not_promoted = promoted(request, registry, manifest.version)
    # The stored manifest has every stage but publishing itself; the caller gets that too.
    timings = {**manifest.timings, "publish": round(time.perf_counter() - clock, 4)}
    manifest = manifest.model_copy(update={"timings": timings})
    return TrainingResult(
        manifest=manifest, report=report, promoted=promote, not_promoted=not_promoted
    )


def _calibration_step(
    calibration: Calibration, before: EvaluationReport, after: EvaluationReport
) -> CalibrationStep:
    """The calibration's effect on the test split: Brier, log loss, ECE and the calibration
    table of the booster's own probabilities (``before``) and the calibrated ones."""

    def figures(report: EvaluationReport) -> CalibrationFigures:
        assert report.ece is not None  # evaluate() always computes it
        return CalibrationFigures(
            brier=report.brier,
            log_loss=report.log_loss,
            ece=report.ece,
            calibration=report.calibration,
        )

    return CalibrationStep(
        method=calibration.method,
        fitted=calibration.fitted,
        before=figures(before),
        after=figures(after),
    )


def run_training(
    request: TrainingRequest,
    storage: Storage,
    *,
    nthread: int,
    progress: Callable[[RoundProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train, evaluate on the dataset's test split, publish a new version, maybe promote it.

    ``promote=None`` promotes to ``production`` only when the model has no production version
    yet. A cancelled or failed training publishes nothing. ``kind: scorecard`` trains a
    scorecard on the same dataset and split instead (:mod:`loanrisk.training.scorecard`).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    prepared = prepare(request, storage)
    if request.kind == "scorecard":
        return train_scorecard(
            request,
            catalogue=prepared.catalogue,
            dataset=prepared.dataset,
            registry=prepared.registry,
            schema=prepared.schema,
            spec=prepared.spec,
            reasons=prepared.reasons,
            nthread=nthread,
            should_cancel=should_cancel,
        )
    train = prepared.catalogue.load_split(prepared.dataset.id, "train")
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    features = FeatureTransformer(prepared.spec).transform(train, dtype=np.float32)
    labels = train[prepared.schema.label_name].to_numpy()
    profile_rows = profile_sample(train, seed=request.seed)  # kept: train is not read twice
    del train
    held_out = None
    if request.calibration != "none":  # held out of the training rows: never the test split
        fit_rows, calibration_rows = split_indices(
            labels, len(labels), test_fraction=request.calibration_fraction, seed=request.seed
        )
        held_out = (features[calibration_rows], labels[calibration_rows])
        features, labels = features[fit_rows], labels[fit_rows]
    validation = None
    if request.early_stopping_rounds is not None:
        fit_rows, valid_rows = split_indices(
            labels, len(labels), test_fraction=request.validation_fraction, seed=request.seed
        )
        validation = (features[valid_rows], labels[valid_rows])
        features, labels = features[fit_rows], labels[fit_rows]
    timings["encode"] = time.perf_counter() - clock

    outcome = train_booster(
        features,
        labels,
        params=prepared.params,
        rounds=request.rounds,
        nthread=nthread,
        init_model=prepared.parent.booster if prepared.parent else None,
        validation=validation,
        early_stopping_rounds=request.early_stopping_rounds,
        progress=progress,
        should_cancel=should_cancel,
    )
    del features, labels, validation
    timings["train"] = outcome.seconds
    return evaluate_and_publish(
        request,
        prepared,
        outcome.booster,
        best_iteration=outcome.best_iteration,
        nthread=nthread,
        timings=timings,
        profile_rows=profile_rows,
        calibration_rows=held_out,
    )


def _check_calibration_request(request: TrainingRequest, dataset: DatasetManifest) -> None:
    """Refuse a calibration whose held-out split would be too small to help (counted from
    the dataset's manifest: its training rows and their default rate)."""
    if request.calibration == "none":
        return
    rows = dataset.rows.train
    check_calibration_size(
        request.calibration,
        rows=rows,
        fraction=request.calibration_fraction,
        defaults=round(rows * dataset.label_rate.train),
    )


def _check_fairness_request(
    request: TrainingRequest, dataset: DatasetManifest, schema: LoanSchema
) -> None:
    """Refuse a fairness request that cannot be met before any training is spent on it."""
    column = request.protected_attribute
    if column is None:
        return
    if column in schema.feature_names:
        raise InvalidInput(
            f"protected attribute {column!r} is a feature of schema {schema.name!r}; a "
            "protected attribute is never a feature: declare it with role protected",
            details={"field": "protected_attribute"},
        )
    if column not in dataset.kept_columns:
        raise InvalidInput(
            f"protected attribute {column!r} is not in the dataset: declare it in the schema "
            f"with role protected, or process the data with --keep-column {column}",
            details={"field": "protected_attribute"},
        )
    declared = schema.by_name.get(column)
    if request.privileged_value is None and (declared is None or declared.privileged is None):
        raise InvalidInput(
            "a protected attribute needs the privileged value",
            details={"field": "privileged_value"},
        )
