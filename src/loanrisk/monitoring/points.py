"""Monitoring in points: system stability of the score and characteristic analysis of each
scorecard attribute, for a window of the prediction log against the version's development
sample.

The report follows optbinning's ``ScorecardMonitoring`` (``optbinning/scorecard/
monitoring.py``, version 0.21), whose definitions it mirrors:

* **System stability** (``_fit_system`` and ``_system_psi``): the scores (whole points) of
  the window's loans (``A``, actual) and of the development sample (``E``, expected: the
  version's profile rows, :mod:`.score_bins`) over the score bins CART finds on the
  development sample; per bin the counts, the shares ``a = A_i / sum(A)`` and
  ``e = E_i / sum(E)``, and ``PSI_i = (a - e) * ln(a / e)`` (optbinning's ``jeffrey``,
  Jeffreys' divergence term); the total is their sum.
* **Characteristic analysis** (``_fit_variables``, ``psi_variable_table(style="detailed")``):
  per attribute of a scorecard version, the same counts, shares and ``PSI_i`` over the
  attribute's bins (expected: its training counts in ``scorecard.json``), and the classic
  points shift of the characteristic analysis (Siddiqi, *Credit Risk Scorecards*, 2006,
  ch. 11, "Characteristic Analysis Report"): ``sum_i (a_i - e_i) * points_i``, the points
  the window's loans gain (positive) or lose on the attribute on average against the
  development sample's; a score shift the system report shows is read from these.

One difference from optbinning, for a bin that holds no loan of one side: its ``PSI_i`` is
infinite there; here shares below :data:`~loanrisk.monitoring.drift.EPSILON` are raised to it
(as the drift report does), so every index is finite and equals optbinning's wherever every
share is at least ``EPSILON``. The shares and the points shift are the raw ones. Bands as
optbinning reads a total (``print_psi_report``): below 0.1 stable, 0.1 to 0.25 investigate,
above 0.25 a shift. optbinning's per-bin default-rate tests and performance metrics need
outcomes; they are the realized performance and backtest reports' part, not this one's.

An XGBoost version has no bins with fixed points (a loan's per-attribute points, from its
log-odds contributions, vary within any bin of the attribute), so the characteristic analysis
does not apply to it: the report says so (``characteristics_note``); its features'
distributions are the drift report's CSI. A profile written before score bins were recorded
(``points`` None) gives the development distribution over its probability bins, read in
points through the scaling (``source: "probability"``): the score is a decreasing function
of the PD, so those are bins of the score too, bounded by the exact scores of the edges.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.inference.scorecard import feature_values
from loanrisk.inference.scorer import special_codes
from loanrisk.monitoring.drift import EPSILON, Bands, Moment, Rounded, band
from loanrisk.monitoring.log.personal import readable_schema
from loanrisk.monitoring.log.reader import logged_features
from loanrisk.monitoring.profile import Profile
from loanrisk.monitoring.reports import version_window
from loanrisk.registry.models import ModelRegistry
from loanrisk.registry.scaling import Scaling
from loanrisk.registry.scorecard import Characteristic, Scorecard
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

#: Why an XGBoost version has no characteristic analysis in points.
NOT_A_SCORECARD = (
    "not applicable: an XGBoost version has no bins with fixed points (a loan's points on an "
    "attribute come from its log-odds contributions and vary within any bin); the features' "
    "distributions are the drift report's CSI"
)


def psi_terms(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per bin ``(a - e) * ln(a / e)`` of two count vectors over the same bins, shares below
    ``EPSILON`` raised to it (all zeros when either side has no rows)."""
    a_counts = np.asarray(actual, dtype=np.float64)
    e_counts = np.asarray(expected, dtype=np.float64)
    if a_counts.sum() == 0 or e_counts.sum() == 0:
        return np.zeros(len(a_counts))
    a = np.maximum(a_counts / a_counts.sum(), EPSILON)
    e = np.maximum(e_counts / e_counts.sum(), EPSILON)
    terms: np.ndarray = (a - e) * np.log(a / e)
    return terms


def _shares(counts: np.ndarray) -> np.ndarray:
    total = float(np.sum(counts))
    shares: np.ndarray = (
        np.asarray(counts, dtype=np.float64) / total if total else np.zeros(len(counts))
    )
    return shares


class PointsBin(BaseModel):
    """One bin: the window's (``actual``) and the development sample's (``expected``) counts
    and shares, and the bin's PSI term."""

    model_config = ConfigDict(frozen=True)

    bin: str
    count_actual: int
    count_expected: int
    actual: Rounded
    expected: Rounded
    psi: Rounded


class SystemStability(BaseModel):
    """The score's PSI over its bins (optbinning's ``psi_table``)."""

    model_config = ConfigDict(frozen=True)

    source: Literal["profile", "probability"] = Field(
        description="profile: the score bins recorded at training; probability: the "
        "profile's probability bins read in points through the scaling (older versions)."
    )
    psi: Rounded
    band: str
    rows_actual: int
    rows_expected: int
    bins: list[PointsBin]


class CharacteristicBin(PointsBin):
    """One bin of an attribute, with its points and its part of the points shift."""

    points: int
    shift: Rounded = Field(description="(actual - expected) x points.")


class CharacteristicAnalysis(BaseModel):
    """One attribute: its PSI over its bins and the points shift (Siddiqi, ch. 11)."""

    model_config = ConfigDict(frozen=True)

    name: str
    psi: Rounded
    band: str
    points_shift: Rounded = Field(
        description="sum of (actual - expected) x points: the points the window's loans "
        "gain (positive) or lose on the attribute, on average, against development."
    )
    bins: list[CharacteristicBin]


class PointsReport(BaseModel):
    """System stability in points and, for a scorecard version, the characteristic
    analysis of each attribute (largest absolute points shift first)."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    kind: Literal["xgboost", "scorecard"]
    since: Moment | None
    until: Moment | None
    rows: int
    sampled: int | None = None
    rejected: int = Field(0, description="Loans read back that no longer validate.")
    bands: Bands = Bands()
    epsilon: float = EPSILON
    scaling: Scaling
    system: SystemStability | None = Field(
        description="The score's PSI (None: no loans in the window)."
    )
    characteristics: list[CharacteristicAnalysis] = []
    characteristics_note: str | None = Field(
        None, description="Why there is no characteristic analysis, when there is none."
    )
    left_out: list[str] = Field(
        default_factory=list,
        description="Attributes the schema declares personal: not read back from the log.",
    )
    problems: list[Problem] = []


def _bins(labels: list[str], actual: np.ndarray, expected: np.ndarray) -> list[PointsBin]:
    terms = psi_terms(actual, expected)
    a, e = _shares(actual), _shares(expected)
    return [
        PointsBin(
            bin=label,
            count_actual=int(actual[i]),
            count_expected=int(expected[i]),
            actual=float(a[i]),
            expected=float(e[i]),
            psi=float(terms[i]),
        )
        for i, label in enumerate(labels)
    ]


def system_stability(
    scores: np.ndarray, probability: np.ndarray, profile: Profile, scaling: Scaling
) -> SystemStability:
    """The window's ``scores`` (whole points; ``probability``, the same loans' PDs, is read
    when the profile has no score bins) against the profile's development sample."""
    if profile.points is not None:
        expected = np.asarray(profile.points.counts, dtype=np.int64)
        actual = profile.points.count(scores)
        labels, source = profile.points.labels, "profile"
    else:  # the probability's bins, ascending PD: descending points, so read backwards
        bins = profile.probability
        expected = np.asarray(bins.counts[:-1], dtype=np.int64)[::-1]
        actual = bins.count(probability)[:-1][::-1]
        bounds = scaling.exact_scores(np.array(bins.edges, dtype=np.float64))[::-1]
        edges = ["-inf", *(f"{b:.1f}" for b in bounds), "inf"]
        labels = [f"[{edges[i]}, {edges[i + 1]})" for i in range(len(edges) - 1)]
        source = "probability"
    rows = _bins(labels, actual, expected)
    index = float(sum(b.psi for b in rows))
    return SystemStability(
        source=source,
        psi=index,
        band=band(index),
        rows_actual=int(actual.sum()),
        rows_expected=int(expected.sum()),
        bins=rows,
    )


def characteristic_analysis(c: Characteristic, actual: np.ndarray) -> CharacteristicAnalysis:
    """One attribute's analysis: ``actual`` holds the window's count in each of its bins;
    the expected counts are its training counts."""
    expected = np.array([b.count for b in c.bins], dtype=np.int64)
    points = np.array([b.points for b in c.bins], dtype=np.float64)
    base = _bins([b.label for b in c.bins], actual, expected)
    shifts = (_shares(actual) - _shares(expected)) * points
    index = float(sum(b.psi for b in base))
    return CharacteristicAnalysis(
        name=c.name,
        psi=index,
        band=band(index),
        points_shift=float(shifts.sum()),
        bins=[
            CharacteristicBin(**dict(b), points=int(p), shift=float(s))
            for b, p, s in zip(base, points, shifts, strict=True)
        ],
    )


def window_bins(
    scorecard: Scorecard, schema: LoanSchema, log: pd.DataFrame
) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """The bins of the logged loans ``log`` (its ``features`` column), read back through the
    version's schema as they were scored (declared special codes in their own bins): per
    attribute, the count in each bin; the loans that no longer validate; the attributes left
    out (personal: the log holds them hashed or not at all)."""
    readable, left_out = readable_schema(schema)
    if log.empty or readable is None:
        return {}, 0, left_out
    raw = logged_features(log["features"])
    loans = validate_frame(raw, schema=readable, mode="score", on_error="drop")
    positions = loans.row_numbers - 1
    codes = special_codes(readable, raw, positions)
    counts: dict[str, np.ndarray] = {}
    for c in scorecard.characteristics:
        if c.name in left_out or c.name not in loans.frame.columns:
            continue
        index = c.indices(feature_values(loans.frame[c.name], numeric=c.type == "numeric"))
        for i, code in codes.get(c.name, {}).items():
            index[i] = c.index_of(None, code.code)
        counts[c.name] = np.bincount(index, minlength=len(c.bins))
    return counts, len(log) - len(loans.frame), left_out


def window_scores(log: pd.DataFrame, scaling: Scaling) -> tuple[np.ndarray, np.ndarray]:
    """The logged loans' scores (whole points; rows logged before scores were, from their
    PD through ``scaling``) and PDs."""
    probability = log["probability"].to_numpy(dtype=np.float64)
    if "score" not in log.columns:
        return scaling.scores_of(probability), probability
    logged = pd.to_numeric(log["score"], errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(logged)
    if missing.any():
        logged[missing] = scaling.scores_of(probability[missing])
    return logged.astype(np.int64), probability


def points_report(
    log: pd.DataFrame,
    profile: Profile,
    schema: LoanSchema,
    *,
    model: str,
    version: int,
    scaling: Scaling,
    scorecard: Scorecard | None,
    since: datetime | None = None,
    until: datetime | None = None,
    rows: int | None = None,
    problems: list[Problem] | None = None,
) -> PointsReport:
    """The points report of the logged loans ``log`` (rows of the prediction log for one
    version; a sample of ``rows`` of them, when given) against ``profile`` and, for a
    scorecard version, its ``scorecard``'s bins."""
    total = len(log) if rows is None else rows
    system = None
    if not log.empty:
        scores, probability = window_scores(log, scaling)
        system = system_stability(scores, probability, profile, scaling)
    characteristics: list[CharacteristicAnalysis] = []
    rejected, note, left_out = 0, None, readable_schema(schema)[1]
    if scorecard is None:
        note = NOT_A_SCORECARD
    elif not log.empty:
        counts, rejected, left_out = window_bins(scorecard, schema, log)
        characteristics = [
            characteristic_analysis(c, counts[c.name])
            for c in scorecard.characteristics
            if c.name in counts
        ]
        characteristics.sort(key=lambda a: abs(a.points_shift), reverse=True)
    return PointsReport(
        model=model,
        version=version,
        kind="scorecard" if scorecard is not None else "xgboost",
        since=since,
        until=until,
        rows=total,
        sampled=len(log) if total > len(log) else None,
        rejected=rejected,
        scaling=scaling,
        system=system,
        characteristics=characteristics,
        characteristics_note=note,
        left_out=left_out,
        problems=problems or [],
    )


def points_for(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    max_rows: int | None = None,
) -> PointsReport:
    """The points report of version ``ref`` of model ``name`` over ``[since, until)`` of the
    log (from a sample of ``max_rows`` of its loans, past that); a stored profile that
    cannot be read is replaced by one made from the training data and named in
    ``problems``, as in the drift report."""
    model, profile, log = version_window(
        storage, registry, log_directory, name, ref, since=since, until=until, max_rows=max_rows
    )
    return points_report(
        log.frame,
        profile,
        model.schema,
        model=name,
        version=model.version,
        scaling=model.scaling,
        scorecard=model.scorecard,
        since=since,
        until=until,
        rows=log.rows,
        problems=log.problems,
    )
