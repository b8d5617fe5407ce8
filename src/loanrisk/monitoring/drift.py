"""Drift: the population stability index (PSI) of the score and the characteristic
stability index (CSI, the same formula) of each feature, for a window of the prediction log
against the version's reference profile.

``PSI = sum over bins of (a - e) * ln(a / e)``, with ``e`` the bin's share of the training
rows and ``a`` its share of the window's loans. A share of 0 would make the logarithm
infinite: shares below :data:`EPSILON` are raised to it (in both distributions) before the
sum. The usual reading: below 0.1 stable, 0.1 to 0.25 investigate, above 0.25 a shift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.monitoring.profile import Bins, Profile, feature_values
from loanrisk.schema import LoanSchema, validate_frame

EPSILON = 1e-4
STABLE, SHIFT = 0.1, 0.25


def band(index: float) -> str:
    """``stable`` below 0.1, ``investigate`` to 0.25, ``shift`` above."""
    return "stable" if index < STABLE else "investigate" if index <= SHIFT else "shift"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (see the module's formula)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0
    e = np.maximum(e / e.sum(), EPSILON)
    a = np.maximum(a / a.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Stability:
    """One variable's index, its band, and the shares per bin (training, window)."""

    name: str
    index: float
    bins: list[str]
    expected: list[float]
    actual: list[float]

    @property
    def band(self) -> str:
        return band(self.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": round(self.index, 6),
            "band": self.band,
            "bins": [
                {"bin": b, "expected": round(e, 6), "actual": round(a, 6)}
                for b, e, a in zip(self.bins, self.expected, self.actual, strict=True)
            ],
        }


def _shares(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total for c in counts] if total else [0.0] * len(counts)


def _stability(name: str, bins: Bins, actual: np.ndarray) -> Stability:
    expected = np.asarray(bins.counts, dtype=np.float64)
    return Stability(name, psi(expected, actual), bins.labels, _shares(expected), _shares(actual))


@dataclass
class DriftReport:
    """PSI of the score and CSI per feature (worst first) for a window of logged loans."""

    model: str
    version: int
    since: datetime | None
    until: datetime | None
    rows: int
    rejected: int
    score: Stability | None
    features: list[Stability] = field(default_factory=list)
    #: The rows the shares come from, when a sample of ``rows`` (None: all of them).
    sampled: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "rows": self.rows,
            "sampled": self.sampled,
            "rejected": self.rejected,
            "bands": {
                "stable": f"< {STABLE}",
                "investigate": f"{STABLE} to {SHIFT}",
                "shift": f"> {SHIFT}",
            },
            "epsilon": EPSILON,
            "score": self.score.to_dict() if self.score else None,
            "features": [f.to_dict() for f in self.features],
        }


def drift_report(
    log: pd.DataFrame,
    profile: Profile,
    schema: LoanSchema,
    *,
    model: str,
    version: int,
    since: datetime | None = None,
    until: datetime | None = None,
    rows: int | None = None,
) -> DriftReport:
    """The drift of the logged loans ``log`` (rows of
    :func:`~loanrisk.monitoring.log.reader.read_log` for one version) against ``profile``;
    ``rows``: how many loans ``log`` is a sample of. Loans are read back through the version's
    schema, as they were scored; the few that no longer validate are counted in ``rejected``
    (among those read)."""
    total = len(log) if rows is None else rows
    sampled = len(log) if total > len(log) else None
    if log.empty:
        return DriftReport(model, version, since, until, total, 0, None, sampled=sampled)
    records = [json.loads(text) for text in log["features"]]
    loans = validate_frame(
        pd.DataFrame.from_records(records), schema=schema, mode="score", on_error="drop"
    )
    features = [
        _stability(name, bins, bins.count(feature_values(loans.frame, name)))
        for name, bins in profile.features.items()
        if name in loans.frame.columns
    ]
    features.sort(key=lambda s: s.index, reverse=True)
    score_bins = profile.score
    score = _stability(
        "score", score_bins, score_bins.count(log["probability"].to_numpy(dtype=np.float64))
    )
    return DriftReport(
        model,
        version,
        since,
        until,
        total,
        len(log) - len(loans.frame),
        score,
        features,
        sampled=sampled,
    )
