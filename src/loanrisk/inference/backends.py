"""Prediction backends: oneDAL (daal4py) first, XGBoost as the reference and the fallback.

A backend turns a float32 feature matrix into probabilities of default. The oneDAL model is
converted from the XGBoost booster once per model version (``daal4py.mb.convert_model``),
then checked against XGBoost on a probe set built from the model's own FeatureSpec (missing
values, unknown categories, extremes); if any probability differs by more than 1e-5, the
disagreement is logged and XGBoost serves instead. Known conversion bugs exist upstream:
this check is what makes oneDAL safe to be the default.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import xgboost as xgb

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec
from loanrisk.registry.calibration import Calibration

log = logging.getLogger(__name__)

BackendChoice = Literal["auto", "onedal", "xgboost"]
PARITY_TOLERANCE = 1e-5


class Fallback(NamedTuple):
    """Why XGBoost serves rather than oneDAL: ``cause`` is one word for a metric label
    (``chosen``, ``unavailable``, ``failed``, ``disagreed``), ``reason`` the sentence."""

    cause: Literal["chosen", "unavailable", "failed", "disagreed"]
    reason: str


class Backend(Protocol):
    name: str

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of default (class 1), float64, one per row of ``features``."""
        ...


class XGBoostBackend:
    name = "xgboost"

    def __init__(self, booster: xgb.Booster, *, nthread: int = 1) -> None:
        self.booster = booster
        self.booster.set_param({"nthread": nthread})

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64)


#: Calls of up to this many rows reuse a oneDAL prediction algorithm (one per thread, row
#: count and precision: an algorithm keeps the result table of its first call's size).
REUSED_ROWS = 256
_PRECISION = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


class OneDALBackend:
    """oneDAL's prediction of the converted model. ``daal4py``'s ``predict_proba`` builds a
    prediction algorithm per call, which costs about what scoring a loan does (one loan:
    48 µs a call, 35 µs with the algorithm reused); calls of at most :data:`REUSED_ROWS`
    rows, a server's, reuse one."""

    name = "onedal"

    def __init__(self, booster: xgb.Booster) -> None:
        import daal4py

        self._daal4py = daal4py
        self.model = daal4py.mb.convert_model(booster)
        self._reused = threading.local()

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        rows, precision = len(features), _PRECISION.get(features.dtype)
        model = self.model
        if precision is None or not 0 < rows <= REUSED_ROWS or features.ndim != 2:
            return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
        if features.shape[1] != model.n_features_in_:
            raise ValueError("Shape of input is different from what was seen in `fit`")
        algorithms: dict[tuple[int, str], Any] = self._reused.__dict__.setdefault("by_rows", {})
        algorithm = algorithms.get((rows, precision))
        if algorithm is None:
            algorithm = self._daal4py.gbt_classification_prediction(
                nClasses=model.n_classes_,
                fptype=precision,
                resultsToEvaluate="computeClassProbabilities",
            )
            algorithms[rows, precision] = algorithm
        result = algorithm.compute(features, model.daal_model_)
        # a copy: the algorithm's next call writes over its result table
        return np.array(result.probabilities[:, 1], dtype=np.float64)


class CalibratedBackend:
    """A backend followed by the version's calibration map (numpy, the same for every
    backend)."""

    def __init__(self, inner: Backend, calibration: Calibration) -> None:
        self.inner = inner
        self.name = inner.name
        self.calibration = calibration

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.calibration.apply(self.inner.predict_proba(features))


def calibrated(backend: Backend, calibration: Calibration | None) -> Backend:
    return backend if calibration is None else CalibratedBackend(backend, calibration)


def limit_onedal_threads(nthread: int) -> None:
    """Cap oneDAL's threads in this process (a server worker scores one request per thread;
    more threads per call only contend with the other workers)."""
    if onedal_available():
        import daal4py

        daal4py.daalinit(nthread)


def onedal_available() -> bool:
    try:
        import daal4py  # noqa: F401
    except ImportError:
        return False
    return True


def probe_set(spec: FeatureSpec, *, rows: int = 256, seed: int = 0) -> np.ndarray:
    """Encoded probe rows from the spec: typical and extreme values, NaN where the transform
    lets it through, every position of an ordinal column (and NaN), all-zero one-hot blocks
    (unknown categories), and random mixes."""
    rng = np.random.default_rng(seed)
    n_numeric = len(spec.imputed) + len(spec.power) + len(spec.scaled) + len(spec.passthrough)
    width = len(spec.output_columns)
    out = np.zeros((rows, width), dtype=np.float32)
    out[:, :n_numeric] = rng.normal(0, 1.5, size=(rows, n_numeric))
    out[: rows // 8, :n_numeric] *= 10  # extremes
    for i, median in enumerate(c.median for c in spec.imputed):
        out[rows // 8 : rows // 4, i] = median
    # Every numeric column past the imputed ones lets a missing value through as NaN.
    nan_rows = slice(rows // 4, rows // 2)
    missing_kept = slice(len(spec.imputed), n_numeric)
    out[nan_rows, missing_kept] = np.where(
        rng.random((rows // 4, n_numeric - len(spec.imputed))) < 0.3,
        np.nan,
        out[nan_rows, missing_kept],
    )
    for i, ordered in enumerate(spec.ordinal, start=n_numeric):
        positions = rng.integers(0, len(ordered.categories) + 1, rows).astype(np.float32)
        out[:, i] = np.where(positions == len(ordered.categories), np.nan, positions)
    offset = len(spec.single_columns)
    for column in spec.onehot:
        k = len(column.categories)
        picks = rng.integers(0, k + 1, rows)  # k means "unknown": the block stays all zero
        known = picks < k
        out[np.flatnonzero(known), offset + picks[known]] = 1
        offset += k
    return out


def make_backend(
    booster: xgb.Booster,
    spec: FeatureSpec,
    *,
    choice: BackendChoice = "auto",
    nthread: int = 1,
    tolerance: float = PARITY_TOLERANCE,
    calibration: Calibration | None = None,
) -> tuple[Backend, Fallback | None]:
    """The backend to serve ``booster`` with (followed by ``calibration``, when given), and
    why it is not oneDAL (None when it is). The parity check compares calibrated outputs.
    Under ``auto`` and ``onedal`` any failure of the conversion, the probe or the check
    leaves XGBoost serving, with the reason logged."""
    reference = calibrated(XGBoostBackend(booster, nthread=nthread), calibration)
    if choice == "xgboost":
        return reference, Fallback("chosen", "xgboost chosen in settings")
    if choice not in ("auto", "onedal"):
        raise InvalidInput(f"unknown backend {choice!r}: use auto, onedal or xgboost")
    if not onedal_available():
        if choice == "onedal":
            raise InvalidInput("the oneDAL backend needs daal4py (scikit-learn-intelex)")
        return reference, Fallback("unavailable", "daal4py is not installed")
    try:  # the conversion, the probe and the check: any failure leaves XGBoost serving
        probe = probe_set(spec)
        onedal = calibrated(OneDALBackend(booster), calibration)
        difference = float(
            np.nanmax(np.abs(onedal.predict_proba(probe) - reference.predict_proba(probe)))
        )
    except Exception as exc:  # daal4py refuses some models; XGBoost can always serve
        log.warning("oneDAL failed on this model, serving with XGBoost: %r", exc)
        return reference, Fallback("failed", f"oneDAL failed on this model: {exc!r}")
    if not difference <= tolerance:
        log.warning("oneDAL disagrees with XGBoost by %.3g, serving with XGBoost", difference)
        return reference, Fallback(
            "disagreed", f"oneDAL disagreed with XGBoost by {difference:.3g} on the probe set"
        )
    return onedal, None
