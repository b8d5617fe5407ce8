"""Two models' scores of the same loans, compared: the AUC difference with DeLong's variance,
the KS statistic, agreement and decision flips, and the PSI between the score distributions.

DeLong, DeLong and Clarke-Pearson (1988), computed with midranks as Sun and Xu (2014) show
(O(n log n), exact for ties): each positive's placement is the share of negatives it outranks
(ties count one half), each negative's the share of positives that outrank it; the AUC is the
mean placement, and the variance of the difference of two AUCs on the same loans comes from
the covariance of the two models' placements.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import roc_curve

from loanrisk.errors import InvalidInput
from loanrisk.monitoring.drift import psi

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: Bins of the score PSI: deciles of the first model's scores.
SCORE_BINS = 10


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    ranks: np.ndarray = pd.Series(values).rank(method="average").to_numpy()
    return ranks


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _placements(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    positive = labels == 1
    m, n = int(positive.sum()), int((~positive).sum())
    overall = _midranks(scores)
    within_positive = _midranks(scores[positive])
    within_negative = _midranks(scores[~positive])
    positive_place = (overall[positive] - within_positive) / n
    negative_place = 1.0 - (overall[~positive] - within_negative) / m
    return float(positive_place.mean()), positive_place, negative_place


class AucDifference(BaseModel):
    """The difference ``b - a`` of two AUCs on the same loans, with its standard error, 95%
    interval and two-sided p-value."""

    model_config = ConfigDict(frozen=True)

    b_minus_a: float
    se: float
    ci95: tuple[float, float]
    p_value: float
    method: Literal["DeLong"] = "DeLong"


class PairedAuc(BaseModel):
    """The AUC of each of two models on the same loans, each with its DeLong standard error
    and 95% interval, and their difference."""

    model_config = ConfigDict(frozen=True)

    a: float
    b: float
    difference: AucDifference
    a_se: float | None = None
    b_se: float | None = None
    a_ci95: tuple[float, float] | None = None
    b_ci95: tuple[float, float] | None = None


class Flips(BaseModel):
    """Decisions that differ between two models, by direction."""

    model_config = ConfigDict(frozen=True)

    a_approves_b_declines: int
    a_declines_b_approves: int


class Agreement(BaseModel):
    """How often two models decide alike on ``loans`` (None when there are none)."""

    model_config = ConfigDict(frozen=True)

    loans: int
    agreement: float | None
    flips: Flips


def delong(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> PairedAuc:
    """AUC of ``a`` and ``b`` on the same loans (labels 1 = default), each with its DeLong
    standard error and 95% interval, and the difference ``b - a`` with its standard error, 95%
    interval and two-sided p-value (DeLong, DeLong and Clarke-Pearson, Biometrics 1988)."""
    labels = np.asarray(labels).astype(np.int64)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not labels.shape == a.shape == b.shape or not 0 < labels.sum() < labels.size:
        raise InvalidInput("a paired AUC needs defaults and non-defaults scored by both models")
    auc_a, pos_a, neg_a = _placements(labels, a)
    auc_b, pos_b, neg_b = _placements(labels, b)
    m, n = pos_a.size, neg_a.size
    pos_cov = np.cov(np.vstack([pos_a, pos_b])) if m > 1 else np.zeros((2, 2))
    neg_cov = np.cov(np.vstack([neg_a, neg_b])) if n > 1 else np.zeros((2, 2))
    cov = pos_cov / m + neg_cov / n
    variance = max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0)
    se = math.sqrt(variance)
    difference = auc_b - auc_a
    same = 1.0 if difference == 0 else 0.0
    p_value = 2 * _normal_sf(abs(difference) / se) if se > 0 else same
    se_a, se_b = math.sqrt(max(float(cov[0, 0]), 0.0)), math.sqrt(max(float(cov[1, 1]), 0.0))
    return PairedAuc(
        a=auc_a,
        b=auc_b,
        a_se=se_a,
        b_se=se_b,
        a_ci95=(auc_a - Z95 * se_a, auc_a + Z95 * se_a),
        b_ci95=(auc_b - Z95 * se_b, auc_b + Z95 * se_b),
        difference=AucDifference(
            b_minus_a=difference,
            se=se,
            ci95=(difference - Z95 * se, difference + Z95 * se),
            p_value=p_value,
        ),
    )


def ks_statistic(labels: np.ndarray, scores: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of defaults and
    non-defaults (max TPR - FPR)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.max(tpr - fpr))


def brier(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean((np.asarray(scores, dtype=np.float64) - labels) ** 2))


def probability_psi(a: np.ndarray, b: np.ndarray) -> float:
    """PSI of ``b``'s probabilities of default against ``a``'s, over the deciles of ``a``'s."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return 0.0
    edges = np.unique(np.quantile(a, np.linspace(0, 1, SCORE_BINS + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1)
    actual = np.bincount(np.searchsorted(edges, b, side="right"), minlength=edges.size + 1)
    return psi(expected, actual)


def agreement(a_labels: np.ndarray, b_labels: np.ndarray) -> Agreement:
    """How often two models decide alike (label = predicted default, i.e. a decline), and
    the decisions that flip in each direction."""
    a_labels, b_labels = np.asarray(a_labels, dtype=bool), np.asarray(b_labels, dtype=bool)
    total = int(a_labels.size)
    same = int((a_labels == b_labels).sum())
    return Agreement(
        loans=total,
        agreement=same / total if total else None,
        flips=Flips(
            a_approves_b_declines=int((~a_labels & b_labels).sum()),
            a_declines_b_approves=int((a_labels & ~b_labels).sum()),
        ),
    )
