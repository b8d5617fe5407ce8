"""Calibration: a monotone map from the booster's probability of default to a calibrated one.

PD feeds pricing and loss provisions, so "0.2" must mean about 20 defaults in 100 such
loans. A training with ``calibration`` (``isotonic`` or ``platt``) fits the map on a held-out
calibration split of the training data (never the test split), and the version stores it as
``calibration.json``: plain numbers, never a pickle. Every scorer applies it in numpy after
its backend (oneDAL or XGBoost), so every route, batch, log and report sees the same PD.

- ``isotonic``: sklearn's ``IsotonicRegression`` (clipped to [0, 1], out-of-range inputs
  clipped), stored as its thresholds; applied with ``np.interp``, which is how sklearn
  predicts between them.
- ``platt``: a logistic regression on the log-odds, ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``.

Fitted on too few loans, either map makes the PD worse: a training whose held-out set would
be smaller than :data:`MIN_HELD_OUT` asks is refused before it starts
(:func:`check_calibration_size`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NotRequired

import numpy as np
from typing_extensions import TypedDict

from loanrisk.errors import InvalidInput
from loanrisk.registry.report import CalibrationBin, CalibrationFit

FORMAT = "loanrisk.calibration"
Method = Literal["isotonic", "platt"]
#: Probabilities are clipped this far from 0 and 1 before their log-odds are taken.
_EDGE = 1e-7


@dataclass(frozen=True)
class SizeBound:
    """The fewest held-out loans, and loans of the rarer class among them (the defaults, on
    loan data), a calibration method needs to make the PD better rather than worse."""

    rows: int
    minority: int

    def met(self, defaults: int, repaid: int) -> bool:
        return defaults + repaid >= self.rows and min(defaults, repaid) >= self.minority

    def describe(self, rarer: str) -> str:
        return (
            f"{self.rows:,} loans and {self.minority} {rarer}"
            if self.rows
            else (f"{self.minority} {rarer}")
        )


#: Measured with benchmarks/bench_calibration_size.py (docs/training.md, "Calibration"): on
#: held-out sets smaller than these, the map made the test Brier score worse on average for
#: the reference model on the PAKDD 2009 file (isotonic under 1,000 loans, ~200 defaults) and
#: on the public data thinned to 5% defaults (isotonic under 100 defaults, ~2,000 loans;
#: Platt under ~50). Platt fits two numbers, isotonic a step function: Platt needs fewer.
MIN_HELD_OUT: dict[str, SizeBound] = {
    "isotonic": SizeBound(rows=1_000, minority=100),
    "platt": SizeBound(rows=0, minority=50),
}
#: Calibration fractions a training accepts (``TrainingRequest.calibration_fraction``: above 0,
#: below this).
MAX_FRACTION = 0.5


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EDGE, 1 - _EDGE)
    logit: np.ndarray = np.log(p) - np.log1p(-p)
    return logit


class FitCounts(TypedDict):
    """``fitted`` as stored (:class:`~loanrisk.registry.report.CalibrationFit`)."""

    rows: int
    defaults: int


class CalibrationDocument(TypedDict):
    """``calibration.json`` as stored: the isotonic map has ``x`` and ``y``, Platt's ``a``
    and ``b``."""

    format: str
    version: int
    method: Method
    x: NotRequired[list[float]]
    y: NotRequired[list[float]]
    a: NotRequired[float]
    b: NotRequired[float]
    fitted: FitCounts


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration map. ``x``/``y``: the isotonic thresholds; ``a``/``b``: Platt's;
    ``fitted``: the held-out loans it was fitted on."""

    method: Method
    fitted: CalibrationFit = field(compare=False)
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def apply(self, probability: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of default, float64, one per input."""
        raw = np.asarray(probability, dtype=np.float64)
        if self.method == "isotonic":
            out: np.ndarray = np.interp(raw, self.x, self.y)
            return out
        with np.errstate(over="ignore"):  # exp overflows to inf for a steep map: PD 0
            calibrated: np.ndarray = 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))
        return calibrated

    def to_json(self) -> str:
        fitted = FitCounts(rows=self.fitted.rows, defaults=self.fitted.defaults)
        if self.method == "isotonic":
            doc = CalibrationDocument(
                format=FORMAT,
                version=1,
                method=self.method,
                x=list(self.x),
                y=list(self.y),
                fitted=fitted,
            )
        else:
            doc = CalibrationDocument(
                format=FORMAT, version=1, method=self.method, a=self.a, b=self.b, fitted=fitted
            )
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Calibration:
        """Parse a stored calibration; :class:`InvalidInput` for anything malformed."""
        try:
            doc: CalibrationDocument = json.loads(text)
            if doc.get("format") != FORMAT or doc.get("version") != 1:
                raise InvalidInput(f"not a calibration (format {doc.get('format')!r})")
            method = doc["method"]
            counts = doc["fitted"]
            fitted = CalibrationFit(rows=int(counts["rows"]), defaults=int(counts["defaults"]))
            if method == "isotonic":
                x = tuple(float(v) for v in doc["x"])
                y = tuple(float(v) for v in doc["y"])
                if not x or len(x) != len(y) or list(x) != sorted(x) or list(y) != sorted(y):
                    raise InvalidInput("isotonic calibration: x and y must be ascending pairs")
                return cls("isotonic", fitted, x=x, y=y)
            if method == "platt":
                return cls("platt", fitted, a=float(doc["a"]), b=float(doc["b"]))
            raise InvalidInput(f"unknown calibration method {method!r}")
        except InvalidInput:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"malformed calibration: {exc!r}") from None


def held_out_counts(rows: int, defaults: int, fraction: float) -> tuple[int, int]:
    """(defaults, repaid loans) a stratified ``fraction`` of ``rows`` training loans with
    ``defaults`` among them holds out, as :func:`loanrisk.data.split.split_indices` takes
    them (each class rounded on its own)."""
    return round(fraction * defaults), round(fraction * (rows - defaults))


def _smallest_fraction(rows: int, defaults: int, bound: SizeBound) -> float | None:
    """The smallest accepted fraction (in hundredths) that holds out what ``bound`` asks;
    None when none does."""
    return next(
        (
            f / 100
            for f in range(1, round(MAX_FRACTION * 100))
            if bound.met(*held_out_counts(rows, defaults, f / 100))
        ),
        None,
    )


def check_calibration_size(method: Method, *, rows: int, defaults: int, fraction: float) -> None:
    """Refuse a calibration whose held-out set (``fraction`` of ``rows`` training loans,
    ``defaults`` of them defaults) is smaller than :data:`MIN_HELD_OUT` asks for the method:
    fitted on so few, the map makes the PD worse, not better. The :class:`InvalidInput` names
    the field to change (``calibration_fraction`` when a larger one would do, else
    ``calibration``), says how many loans and defaults the set holds, and lists the ways out:
    a larger fraction, Platt (for isotonic), or no calibration."""
    bound = MIN_HELD_OUT[method]
    held_defaults, held_repaid = held_out_counts(rows, defaults, fraction)
    if bound.met(held_defaults, held_repaid):
        return
    rarer = "defaults" if defaults <= rows - defaults else "repaid loans"
    larger = _smallest_fraction(rows, defaults, bound)
    ways = [
        f"a calibration_fraction of {larger:g}"
        if larger is not None
        else f"more training loans (no calibration_fraction below {MAX_FRACTION:g} holds out "
        f"{bound.describe(rarer)})"
    ]
    if method == "isotonic":
        platt = _smallest_fraction(rows, defaults, MIN_HELD_OUT["platt"])
        if platt is not None and platt <= fraction:
            ways.append("calibration platt")
        elif platt is not None:
            ways.append(f"calibration platt with a calibration_fraction of {platt:g}")
    ways.append("calibration none")
    raise InvalidInput(
        f"{method} calibration needs at least {bound.describe(rarer)} in its held-out set, and "
        f"calibration_fraction {fraction:g} of the {rows:,} training loans holds out "
        f"{held_defaults + held_repaid:,} loans, {held_defaults:,} of them defaults: fitted "
        "on fewer, calibration made the PD worse on average where it was measured "
        f"(docs/training.md, Calibration). Use {', or '.join(ways)}.",
        details={
            "field": "calibration_fraction" if larger is not None else "calibration",
            "method": method,
            "held_out_rows": held_defaults + held_repaid,
            "held_out_defaults": held_defaults,
            "needed_rows": bound.rows,
            "needed_minority": bound.minority,
            "suggested_fraction": larger,
        },
    )


def fit_calibration(method: Method, probability: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit ``method`` on held-out (probability, label) pairs."""
    probability = np.asarray(probability, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if np.unique(labels).size < 2:
        raise InvalidInput("calibration needs both defaults and non-defaults in its split")
    fitted = CalibrationFit(rows=int(labels.size), defaults=int(labels.sum()))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(probability, labels)
        return Calibration(
            "isotonic",
            fitted,
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(_logit(probability).reshape(-1, 1), labels)
    return Calibration("platt", fitted, a=float(platt.coef_[0, 0]), b=float(platt.intercept_[0]))


def expected_calibration_error(table: Sequence[CalibrationBin]) -> float:
    """ECE from an evaluation's calibration table: the loans' average distance between the
    mean predicted PD and the observed default rate of their bin."""
    total = sum(b.count for b in table)
    if not total:
        return 0.0
    return float(
        sum(
            b.count * abs(b.mean_predicted - b.observed_rate)
            for b in table
            if b.count and b.mean_predicted is not None and b.observed_rate is not None
        )
        / total
    )
