"""Disparity measures of one group against its reference group, with their uncertainty.

Every measure takes a group's *weights*: 0/1 membership for a group read from a column or a
rule, a membership probability for a proxy (a BISG-style probability a lender computed), so
one formula serves both; with 0/1 weights it is the plain count-based figure.

- :func:`adverse_impact_ratio`: the approval rate of the protected group over the reference
  group's (AIR), the four-fifths flag (AIR < 0.8, the EEOC's Uniform Guidelines, 29 CFR
  1607.4(D)), a 95% interval (Katz et al. 1978, the log method for a ratio of two
  proportions) and the significance of the difference (Fisher's exact test on the 2x2 table
  of approvals while a cell holds at most :data:`MAX_FOR_FISHERS` loans, Pearson's
  chi-squared test with Yates's correction above), as solas-ai 0.6 computes them.
- :func:`standardized_mean_difference`: the difference of mean PDs over the standard
  deviation of the PD over the whole population (solas-ai's "population" denominator;
  solas-ai prints it times 100), a 95% interval and the p-value of the pooled two-sample
  t-test.

Weighted figures (proxies) use the weights as frequency weights, as solas-ai does: weighted
counts in the 2x2 table (Fisher's test on the table rounded down), weighted means and
variances (n - 1 on the sum of weights); docs/fairness.md states the method and its limits.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import stats

from loanrisk.errors import InvalidInput
from loanrisk.fairness.models import AirResult, SmdResult

#: While a cell of the approvals table holds at most this many loans, the AIR's p-value is
#: Fisher's exact test's; above, the chi-squared test's (solas-ai's ``max_for_fishers``).
MAX_FOR_FISHERS = 100
#: The four-fifths rule: an AIR below it flags an adverse impact.
FOUR_FIFTHS = 0.8
#: A p-value below it flags a difference as statistically significant.
SIGNIFICANCE = 0.05
#: Coverage of the intervals.
CONFIDENCE = 0.95
#: An |SMD| above it is flagged as practically significant (loanrisk's convention, between
#: Cohen's "small" 0.2 and "medium" 0.5; solas-ai leaves the threshold to its caller).
SMD_THRESHOLD = 0.3


def _weights(name: str, weight: np.ndarray, size: int) -> np.ndarray:
    out = np.asarray(weight, dtype=np.float64)
    if out.shape != (size,):
        raise InvalidInput(f"{name}: {out.shape} weights for {size} loans")
    if not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0 or out.max(initial=0.0) > 1:
        raise InvalidInput(f"{name}: weights must be membership 0/1 or probabilities in [0, 1]")
    return out


def _approvals_table(
    approved: np.ndarray, protected: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """2x2 (weighted) table: rows protected, reference; columns approved, refused."""
    a = float(protected @ approved)
    c = float(reference @ approved)
    return np.array([[a, protected.sum() - a], [c, reference.sum() - c]])


def _p_value(table: np.ndarray) -> tuple[float | None, Literal["fisher", "chi_squared"]]:
    """Fisher's exact test when a cell holds at most :data:`MAX_FOR_FISHERS` loans (on the
    table's whole loans, weighted counts rounded down), else Pearson's chi-squared test with
    Yates's continuity correction: solas-ai's ``fishers_or_chi_squared``. Every loan approved
    (or every one refused) leaves nothing to tell the groups apart: Fisher's p-value is 1."""
    test: Literal["fisher", "chi_squared"] = (
        "fisher" if table.min() <= MAX_FOR_FISHERS else "chi_squared"
    )
    if (table.sum(axis=1) <= 0).any():  # an empty group: nothing to test
        return None, test
    if test == "fisher":
        return float(stats.fisher_exact(np.floor(table).astype(np.int64)).pvalue), test
    return float(stats.chi2_contingency(table, correction=True).pvalue), test


def adverse_impact_ratio(
    approved: np.ndarray, protected_weight: np.ndarray, reference_weight: np.ndarray
) -> AirResult:
    """The AIR of approvals (``approved``: 1/True approved, 0/False refused, one per loan)
    between the protected group and the reference group, given as weights per loan (0/1 or
    membership probabilities; arrays of the same length).

    ``air`` = (approvals / members of the protected group) / (the same of the reference);
    ``low``/``high`` its 95% Katz log interval, exp(ln AIR +- z sqrt(1/a - 1/n1 + 1/c - 1/n2))
    with a, c the groups' approvals and n1, n2 their sizes; ``p_value`` Fisher's exact test
    (or chi-squared, see :func:`_p_value`) of the 2x2 approvals table. ``shortfall`` is how
    many more approvals the protected group needs to reach the reference group's rate.
    Raises :class:`InvalidInput` on mismatched lengths or weights outside [0, 1]."""
    approved = np.asarray(approved).astype(np.float64).ravel()
    protected = _weights("protected_weight", protected_weight, approved.size)
    reference = _weights("reference_weight", reference_weight, approved.size)
    if not np.isin(approved, (0.0, 1.0)).all():
        raise InvalidInput("approved: one 0/1 (or boolean) decision per loan")
    table = _approvals_table(approved, protected, reference)
    (a, b), (c, d) = table
    n1, n2 = a + b, c + d
    p1 = a / n1 if n1 > 0 else None
    p2 = c / n2 if n2 > 0 else None
    air = p1 / p2 if p1 is not None and p2 else None
    low = high = None
    if air and a > 0 and c > 0:
        z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
        se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
        low, high = air * math.exp(-z * se), air * math.exp(z * se)
    p_value, test = _p_value(table)
    return AirResult(
        protected_count=float(n1),
        reference_count=float(n2),
        protected_rate=p1,
        reference_rate=p2,
        shortfall=None if p1 is None or p2 is None else max(0.0, (p2 - p1) * n1),
        air=air,
        low=low,
        high=high,
        p_value=p_value,
        test=test,
        four_fifths=air is not None and air < FOUR_FIFTHS,
        significant=p_value is not None and p_value < SIGNIFICANCE,
    )


def _weighted_moments(score: np.ndarray, weight: np.ndarray) -> tuple[float, float, float]:
    """Weighted mean, sample variance (frequency weights, n - 1) and total weight."""
    n = float(weight.sum())
    mean = float(weight @ score) / n if n > 0 else math.nan
    variance = float(weight @ (score - mean) ** 2) / (n - 1) if n > 1 else math.nan
    return mean, variance, n


def standardized_mean_difference(
    score: np.ndarray,
    protected_weight: np.ndarray,
    reference_weight: np.ndarray,
    *,
    population_weight: np.ndarray | None = None,
) -> SmdResult:
    """The SMD of ``score`` (the PD, one per loan) between the protected and the reference
    group (weights as for :func:`adverse_impact_ratio`): (m1 - m2) / s, with m the groups'
    weighted means and s the standard deviation (n - 1) of the score over the population:
    every loan given, weighted by ``population_weight`` (default 1 each) - solas-ai's
    "population" denominator. The p-value is the pooled two-sample t-test's (n1 + n2 - 2
    degrees of freedom, the weights as frequency weights), the 95% interval that test's
    interval of m1 - m2 divided by s. Raises :class:`InvalidInput` as
    :func:`adverse_impact_ratio`, or on a non-finite score."""
    score = np.asarray(score, dtype=np.float64).ravel()
    protected = _weights("protected_weight", protected_weight, score.size)
    reference = _weights("reference_weight", reference_weight, score.size)
    population = (
        np.ones(score.size)
        if population_weight is None
        else np.asarray(population_weight, dtype=np.float64).ravel()
    )
    if population.shape != score.shape or not np.all(np.isfinite(score)):
        raise InvalidInput("score: a finite number per loan (and one population weight each)")
    m1, v1, n1 = _weighted_moments(score, protected)
    m2, v2, n2 = _weighted_moments(score, reference)
    s = math.sqrt(_weighted_moments(score, population)[1])
    means = {
        "protected_mean": None if n1 <= 0 else m1,
        "reference_mean": None if n2 <= 0 else m2,
    }
    if n1 <= 1 or n2 <= 1 or not s > 0:
        return SmdResult(
            **means, smd=None, low=None, high=None, p_value=None, practical=False, significant=False
        )
    smd = (m1 - m2) / s
    dof = n1 + n2 - 2
    se = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / dof * (1 / n1 + 1 / n2))
    p_value = low = high = None
    if se > 0:
        p_value = float(2 * stats.t.sf(abs(m1 - m2) / se, dof))
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se / s
        low, high = smd - half, smd + half
    return SmdResult(
        **means,
        smd=smd,
        low=low,
        high=high,
        p_value=p_value,
        practical=abs(smd) > SMD_THRESHOLD,
        significant=p_value is not None and p_value < SIGNIFICANCE,
    )


__all__ = [
    "CONFIDENCE",
    "FOUR_FIFTHS",
    "MAX_FOR_FISHERS",
    "SIGNIFICANCE",
    "SMD_THRESHOLD",
    "AirResult",
    "SmdResult",
    "adverse_impact_ratio",
    "standardized_mean_difference",
]
