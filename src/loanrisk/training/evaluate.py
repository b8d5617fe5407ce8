"""Evaluation of predicted default probabilities against the truth.

The report holds the reference's classification report (per class "Non-Default" and
"Default": precision, recall, f1-score, support; accuracy; macro and weighted averages) and
AUC, plus log loss, Brier score, the KS statistic, the confusion matrix at the threshold,
ROC curve points (at most 200), a 10-bin calibration table with its expected calibration
error (ECE) and the distribution of scores
by true label (20 bins of width 0.05). :func:`band_table` adds how the loans fall in a
decision policy's risk bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    brier_score_loss,
    classification_report,
    confusion_matrix,
    log_loss,
    roc_auc_score,
    roc_curve,
)

from loanrisk.errors import InvalidInput
from loanrisk.registry.calibration import expected_calibration_error
from loanrisk.registry.masterscale import MasterScale
from loanrisk.registry.report import (
    BandRow,
    CalibrationBin,
    ClassificationReport,
    ConfusionMatrix,
    EvaluationReport,
    GradeRow,
    ProbabilityDistribution,
    RocCurve,
)
from loanrisk.validation import Backtest, backtest

CLASS_NAMES = ("Non-Default", "Default")
MAX_ROC_POINTS = 200
CALIBRATION_BINS = 10
SCORE_BINS = 20


def _downsample(n: int, keep: int) -> np.ndarray:
    if n <= keep:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, keep)).astype(np.int64))


def evaluate(
    labels: np.ndarray, probability: np.ndarray, *, threshold: float = 0.5
) -> EvaluationReport:
    """Evaluate probabilities of default (class 1). A label is 1 when probability > threshold."""
    labels = np.asarray(labels).astype(np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    if labels.shape != probability.shape or labels.size == 0:
        raise InvalidInput("labels and probabilities must be non-empty and of the same length")
    if np.unique(labels).size < 2:
        raise InvalidInput("evaluation needs both defaults and non-defaults in the test split")
    predicted = (probability > threshold).astype(np.int64)
    report = classification_report(
        labels,
        predicted,
        labels=[0, 1],
        target_names=list(CLASS_NAMES),
        output_dict=True,
        zero_division=0,
    )
    fpr, tpr, thresholds = roc_curve(labels, probability)
    keep = _downsample(fpr.size, MAX_ROC_POINTS)
    (tn, fp), (fn, tp) = confusion_matrix(labels, predicted, labels=[0, 1])
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(probability, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    calibration = []
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        count = int(inside.sum())
        calibration.append(
            CalibrationBin(
                bin=[float(edges[b]), float(edges[b + 1])],
                count=count,
                mean_predicted=float(probability[inside].mean()) if count else None,
                observed_rate=float(labels[inside].mean()) if count else None,
            )
        )
    score_edges = np.linspace(0, 1, SCORE_BINS + 1)

    def counts(cls: int) -> list[int]:
        return [int(c) for c in np.histogram(probability[labels == cls], score_edges)[0]]

    return EvaluationReport(
        threshold=threshold,
        classification_report=ClassificationReport.model_validate(report),
        auc=float(roc_auc_score(labels, probability)),
        log_loss=float(log_loss(labels, np.clip(probability, 1e-15, 1 - 1e-15), labels=[0, 1])),
        brier=float(brier_score_loss(labels, probability)),
        ks=float(np.max(tpr - fpr)),
        confusion_matrix=ConfusionMatrix(tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp)),
        roc_curve=RocCurve(
            fpr=[float(x) for x in fpr[keep]],
            tpr=[float(x) for x in tpr[keep]],
            thresholds=[float(min(x, 1.0)) for x in thresholds[keep]],
        ),
        calibration=calibration,
        ece=expected_calibration_error(calibration),
        probability_distribution=ProbabilityDistribution(
            edges=[float(x) for x in score_edges], non_default=counts(0), default=counts(1)
        ),
        rows=int(labels.size),
    )


def band_table(
    labels: np.ndarray,
    probability: np.ndarray,
    *,
    cutoffs: Sequence[float],
    names: Sequence[str],
) -> list[BandRow]:
    """Per risk band (``names[i]`` below ``cutoffs[i]``, the last at or above the last
    cut-off, as scoring assigns them): its probability range ``[low, high)``, the loans in it
    and their ``share``, the ``defaults`` among them and their ``default_rate`` (None for
    an empty band), and the ``mean_predicted`` probability."""
    labels = np.asarray(labels).astype(np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    band = np.searchsorted(np.asarray(cutoffs, dtype=np.float64), probability, side="right")
    edges = [0.0, *cutoffs, 1.0]
    rows = []
    for i, name in enumerate(names):
        inside = band == i
        loans = int(inside.sum())
        defaults = int(labels[inside].sum())
        rows.append(
            BandRow(
                band=name,
                range=[float(edges[i]), float(edges[i + 1])],
                loans=loans,
                share=loans / max(labels.size, 1),
                defaults=defaults,
                default_rate=defaults / loans if loans else None,
                mean_predicted=float(probability[inside].mean()) if loans else None,
            )
        )
    return rows


def grade_table(labels: np.ndarray, probability: np.ndarray, scale: MasterScale) -> list[GradeRow]:
    """Per grade of ``scale`` (as scoring assigns them): its PD range ``[lower, upper)``, the
    loans in it and their ``share``, the ``defaults`` among them and their ``default_rate``,
    and their ``mean_pd`` (both None for a grade with no loans)."""
    labels = np.asarray(labels).astype(np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    index = scale.grade_index(probability)
    loans = np.bincount(index, minlength=len(scale.grades))
    defaults = np.bincount(index, weights=labels, minlength=len(scale.grades))
    pd_sums = np.bincount(index, weights=probability, minlength=len(scale.grades))
    total = max(labels.size, 1)
    return [
        GradeRow(
            grade=grade.name,
            range=[grade.lower, grade.upper],
            loans=int(n),
            share=int(n) / total,
            defaults=int(d),
            default_rate=float(d) / int(n) if n else None,
            mean_pd=float(p) / int(n) if n else None,
        )
        for grade, n, d, p in zip(scale.grades, loans, defaults, pd_sums, strict=True)
    ]


#: PDs of exactly 0 or 1 (an isotonic calibration gives them) are backtested as this far
#: inside (0, 1): the tests need a PD strictly between.
PD_EDGE = 1e-9


def development_backtest(
    labels: np.ndarray,
    probability: np.ndarray,
    scale: MasterScale,
    *,
    amount: np.ndarray | None = None,
) -> Backtest | None:
    """The backtest of the test split's PDs against its outcomes, per grade of ``scale`` and
    for the portfolio (:func:`loanrisk.validation.backtest`; no development figures: this is
    the development sample). ``amount``: each loan's amount (the schema's amount column; a
    missing one counts 0), for the exposure-weighted concentration. None for a scale of one
    grade (a backtest compares grades)."""
    if len(scale.grades) < 2:
        return None
    pd_ = np.asarray(probability, dtype=np.float64)
    weights = None
    if amount is not None:
        weights = np.asarray(amount, dtype=np.float64)
        weights = np.where(np.isfinite(weights) & (weights >= 0), weights, 0.0)
    return backtest(
        np.clip(pd_, PD_EDGE, 1.0 - PD_EDGE),
        np.asarray(labels).astype(np.int64),
        scale.grade_index(pd_),
        scale.names,
        amount=weights,
    )
