"""Fairness: the reference kit's parity ratios between a privileged and a non-privileged group.

For each group the confusion-matrix rates at the decision threshold: PPV (precision), FDR,
NPV, FOR, TPR (recall), FNR, TNR, FPR; the parity ratio of a rate is privileged /
non-privileged (1.0 is parity; None where the non-privileged rate is 0 or a rate is
undefined because its denominator is empty).
"""

from __future__ import annotations

import numpy as np

from loanrisk.errors import InvalidInput
from loanrisk.fairness.groups import describe_group, privileged_mask
from loanrisk.registry.report import EvaluationReport, GroupRates, ParityGroups, ParityReport
from loanrisk.schema.model import MIN_GROUP_SIZE

__all__ = ["RATES", "assessed", "describe_group", "group_rates", "parity_report", "privileged_mask"]

RATES = ("PPV", "FDR", "NPV", "FOR", "TPR", "FNR", "TNR", "FPR")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def group_rates(labels: np.ndarray, predicted: np.ndarray) -> GroupRates:
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    return GroupRates(
        size=int(labels.size),
        PPV=_ratio(tp, tp + fp),
        FDR=_ratio(fp, tp + fp),
        NPV=_ratio(tn, tn + fn),
        FOR=_ratio(fn, tn + fn),
        TPR=_ratio(tp, tp + fn),
        FNR=_ratio(fn, tp + fn),
        TNR=_ratio(tn, tn + fp),
        FPR=_ratio(fp, tn + fp),
    )


def assessed(report: EvaluationReport) -> list[ParityReport]:
    """The parity reports of a training report, one per protected attribute assessed
    (``fairness_by_attribute``; reports written before it hold one, under ``fairness``)."""
    if report.fairness_by_attribute:
        return list(report.fairness_by_attribute.values())
    return [report.fairness] if report.fairness else []


def parity_report(
    labels: np.ndarray,
    probability: np.ndarray,
    privileged: np.ndarray,
    *,
    attribute: str,
    privileged_value: str,
    threshold: float = 0.5,
) -> ParityReport:
    """Parity ratios of the eight rates between ``privileged`` (a boolean mask) and the rest."""
    labels = np.asarray(labels).astype(np.int64)
    privileged = np.asarray(privileged, dtype=bool)
    if privileged.all() or not privileged.any():
        raise InvalidInput(f"attribute {attribute!r}: both groups must have members")
    predicted = (np.asarray(probability) > threshold).astype(np.int64)
    groups = ParityGroups(
        privileged=group_rates(labels[privileged], predicted[privileged]),
        non_privileged=group_rates(labels[~privileged], predicted[~privileged]),
    )
    parity = {}
    for rate in RATES:
        a, b = groups.privileged.rate(rate), groups.non_privileged.rate(rate)
        parity[rate] = a / b if a is not None and b else None
    sizes = {"privileged": groups.privileged.size, "non_privileged": groups.non_privileged.size}
    warnings = [
        f"the {name.replace('_', '-')} group has {size} loans, fewer than "
        f"{MIN_GROUP_SIZE}: its parity ratios are noise"
        for name, size in sizes.items()
        if size < MIN_GROUP_SIZE
    ]
    return ParityReport(
        attribute=attribute,
        privileged_value=privileged_value,
        threshold=threshold,
        groups=groups,
        parity=parity,
        warnings=warnings,
    )
