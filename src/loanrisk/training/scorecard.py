"""Training a scorecard (``kind: scorecard``): the challenger credit teams read in points.

On the same dataset and split as an XGBoost training: the binning engine
(:func:`loanrisk.binning.fit.fit_schema`) bins every feature attribute of the schema on the
training split (a monotonic trend following each declared direction of risk, special codes
and missing values in bins of their own); each loan becomes its bins' weights of evidence
(WoE, positive where a bin is riskier than the sample: :mod:`loanrisk.binning.models`); an
L2-penalised logistic regression (scikit-learn's ``LogisticRegression``, ``C=1``, lbfgs: with
thousands of rows and WoE inputs of order 1, the penalty is light, and it keeps a coefficient
finite where an attribute's WoE is all but constant) fits the log-odds of default on them;
the version's scaling turns intercept and terms into whole points
(:mod:`loanrisk.registry.scorecard`). The version is evaluated on the test split as an
XGBoost one is (:mod:`.evaluate`, :mod:`.assess`) and published as ``scorecard.json``: JSON,
no pickle, no ``model.ubj``.

What a scorecard does not take (refused naming the field, :func:`check_kind`): continued
training (a scorecard is refitted), a calibration (its PD is its score's, so that every
result's points are the table's), XGBoost parameters and early stopping.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression

from loanrisk._version import __version__
from loanrisk.binning.apply import with_codes, woe_of
from loanrisk.binning.fit import fit_schema
from loanrisk.binning.models import AttributeBinning, BinningLimits, SchemaBinning
from loanrisk.contracts import DatasetManifest, TrainingRequest, TrainingResult
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import Cancelled, InvalidInput
from loanrisk.features.spec import FeatureSpec
from loanrisk.inference.scorecard import feature_values, frame_bins
from loanrisk.monitoring.profile import build_profile, profile_sample, sample_rows
from loanrisk.registry.models import (
    MASTER_SCALE_FILE,
    PROFILE_FILE,
    REASONS_FILE,
    SCALING_FILE,
    LoadedModel,
    ModelRegistry,
)
from loanrisk.registry.reasons import ReasonCatalog
from loanrisk.registry.report import EvaluationReport
from loanrisk.registry.scaling import Scaling
from loanrisk.registry.scorecard import Characteristic, Scorecard, ScorecardBin
from loanrisk.schema import LoanSchema
from loanrisk.training.assess import assessed, promoted
from loanrisk.training.evaluate import evaluate

#: The regression's penalty, as scikit-learn is given it and the version records it.
REGULARISATION: dict[str, float | str] = {"penalty": "l2", "C": 1.0, "solver": "lbfgs"}


def check_kind(request: TrainingRequest, parent: LoadedModel | None) -> None:
    """Refuse what the request's kind cannot do, naming the field: a scorecard continued,
    calibrated, given XGBoost parameters or early stopping; an XGBoost training continued
    from a scorecard."""
    if request.kind == "xgboost":
        if parent is not None and parent.kind != "xgboost":
            raise InvalidInput(
                f"cannot continue training from {parent.name!r} version {parent.version}: it "
                f"is a {parent.kind}, not XGBoost trees",
                details={"field": "continue_from"},
            )
        return
    refused = {
        "continue_from": request.continue_from is not None,
        "calibration": request.calibration != "none",
        "params": bool(request.params),
        "early_stopping_rounds": request.early_stopping_rounds is not None,
    }
    for field, given in refused.items():
        if given:
            raise InvalidInput(
                f"{field}: a scorecard takes no {field.replace('_', ' ')} (it is refitted on "
                "its dataset, and its PD is its score's)",
                details={"field": field},
            )


def _characteristic(
    attribute: AttributeBinning, coefficient: float, factor: float
) -> Characteristic:
    """One attribute's bins with their points: ``rint(-factor * coefficient * woe)``. A
    special code's bin that no training loan fell into is left out (no training loan held
    the code, or the dataset was stored before codes were kept, and its loans were binned as
    missing): the code is scored as missing."""
    bins = [
        ScorecardBin(
            kind=b.kind,
            label=b.label,
            lower=b.lower,
            upper=b.upper,
            categories=[c.upper() for c in b.categories],
            code=b.code,
            count=b.count,
            events=b.events,
            woe=b.woe,
            points=int(np.rint(-factor * coefficient * b.woe)),
        )
        for b in attribute.bins
        if b.kind != "special" or b.count > 0
    ]
    return Characteristic(
        name=attribute.name,
        type=attribute.type,
        coefficient=coefficient,
        edges=attribute.edges,
        bins=bins,
        iv=attribute.iv,
    )


def _woe_matrix(
    binning: SchemaBinning, frame: pd.DataFrame, special: pd.DataFrame | None
) -> np.ndarray:
    """Each loan's WoE per attribute (rows x attributes), through the fitted bins (a
    special code a loan held, named in ``special``, through its code's bin)."""
    held = special if special is not None else pd.DataFrame()
    columns = [
        woe_of(
            a,
            feature_values(frame[a.name], numeric=a.type == "numeric")
            if a.name not in held.columns
            else with_codes(frame[a.name], held[a.name]),
        )
        for a in binning.attributes
    ]
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


def fit_scorecard(
    train: pd.DataFrame,
    schema: LoanSchema,
    scaling: Scaling,
    *,
    limits: BinningLimits | None = None,
    special: pd.DataFrame | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Scorecard:
    """The scorecard of validated training loans ``train`` (features and 0/1 label of
    ``schema``) in points of ``scaling``; ``special``, the declared special codes its
    loans held (aligned with ``train``: :func:`~loanrisk.binning.fit.fit_schema`), gives
    each code its own bin and points."""
    binning = fit_schema(schema, train, limits=limits, special=special)
    if should_cancel is not None and should_cancel():
        raise Cancelled("training cancelled")
    woe = _woe_matrix(binning, train, special)
    labels = train[schema.label_name].to_numpy(dtype=np.int64)
    model = LogisticRegression(
        C=float(REGULARISATION["C"]), l1_ratio=0.0, solver="lbfgs", max_iter=1_000
    )
    model.fit(woe, labels)
    coefficients = [float(c) for c in model.coef_[0]]
    intercept = float(model.intercept_[0])
    return Scorecard(
        scaling=scaling,
        intercept=intercept,
        base_points=int(np.rint(scaling.offset - scaling.factor * intercept)),
        regularisation=REGULARISATION,
        characteristics=[
            _characteristic(a, c, scaling.factor)
            for a, c in zip(binning.attributes, coefficients, strict=True)
        ],
    )


def train_scorecard(
    request: TrainingRequest,
    *,
    catalogue: DatasetCatalogue,
    dataset: DatasetManifest,
    registry: ModelRegistry,
    schema: LoanSchema,
    spec: FeatureSpec,
    reasons: ReasonCatalog,
    nthread: int,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Fit a scorecard on the dataset's training split, evaluate it on its test split,
    publish it as a new version of ``request.model_name`` and maybe promote it (as
    :func:`~loanrisk.training.job.run_training` does for XGBoost; ``spec``, the dataset's
    FeatureSpec, is stored with it as the record of the data's preprocessing, not used to
    score)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    train = catalogue.load_split(dataset.id, "train")
    special = catalogue.load_special(dataset.id, "train")
    timings["load"] = time.perf_counter() - clock
    clock = time.perf_counter()
    scorecard = fit_scorecard(
        train,
        schema,
        request.scaling,
        limits=BinningLimits(seed=request.seed),
        special=special,
        should_cancel=should_cancel,
    )
    timings["train"] = time.perf_counter() - clock
    sampled = sample_rows(len(train), seed=request.seed)
    profile_rows = profile_sample(train, seed=request.seed)
    if special is not None and sampled is not None:
        special = special.take(sampled).reset_index(drop=True)
    del train

    clock = time.perf_counter()
    test = catalogue.load_split(dataset.id, "test")
    test_codes = catalogue.load_special(dataset.id, "test")
    probability = scorecard.probabilities(frame_bins(scorecard, test, test_codes))
    labels = test[schema.label_name].to_numpy()
    report = assessed(
        request,
        schema,
        labels,
        probability,
        test,
        evaluate(labels, probability, threshold=request.threshold),
    )
    timings["evaluate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    profile = build_profile(
        profile_rows,
        schema,
        scorecard.probabilities(frame_bins(scorecard, profile_rows, special)),
        scaling=request.scaling,
    )
    manifest = registry.publish(
        request.model_name,
        booster=None,
        scorecard=scorecard,
        spec=spec,
        report=report,
        metadata=_metadata(request, dataset, spec, scorecard, report, nthread, timings),
        schema=schema,
        extra_files={
            PROFILE_FILE: profile.model_dump_json().encode(),
            REASONS_FILE: reasons.model_dump_json(indent=2).encode(),
            MASTER_SCALE_FILE: request.master_scale.to_json().encode(),
            SCALING_FILE: request.scaling.to_json().encode(),
        },
    )
    promote, not_promoted = promoted(request, registry, manifest.version)
    timings = {**manifest.timings, "publish": round(time.perf_counter() - clock, 4)}
    return TrainingResult(
        manifest=manifest.model_copy(update={"timings": timings}),
        report=report,
        promoted=promote,
        not_promoted=not_promoted,
    )


def _metadata(
    request: TrainingRequest,
    dataset: DatasetManifest,
    spec: FeatureSpec,
    scorecard: Scorecard,
    report: EvaluationReport,
    nthread: int,
    timings: dict[str, float],
) -> dict[str, object]:
    """What the manifest records of a scorecard training (the registry adds the rest)."""
    return {
        "dataset": {
            "id": dataset.id,
            "directory": request.data_directory,
            "requested_size": dataset.requested_size,
            "rows": dataset.rows.model_dump(),
        },
        "feature_spec": {"fingerprint": spec.fingerprint(), "source": "dataset"},
        "params": {},
        "scorecard": {
            "attributes": len(scorecard.characteristics),
            "base_points": scorecard.base_points,
            "regularisation": scorecard.regularisation,
            "score_range": list(scorecard.score_range),
        },
        "threshold": request.threshold,
        "policy": request.policy.model_dump(mode="json"),
        "metrics": {
            "auc": report.auc,
            "log_loss": report.log_loss,
            "brier": report.brier,
            "accuracy": report.classification_report.accuracy,
        },
        "request": request.model_dump(mode="json"),
        "nthread": nthread,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "libraries": {
            "loanrisk": __version__,
            "optbinning": version("optbinning"),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
