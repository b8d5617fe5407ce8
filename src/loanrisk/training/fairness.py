"""Fairness: the reference kit's parity ratios between a privileged and a non-privileged group.

For each group the confusion-matrix rates at the decision threshold: PPV (precision), FDR,
NPV, FOR, TPR (recall), FNR, TNR, FPR; the parity ratio of a rate is privileged /
non-privileged (1.0 is parity; None where the non-privileged rate is 0 or a rate is
undefined because its denominator is empty).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loanrisk.errors import InvalidInput

RATES = ("PPV", "FDR", "NPV", "FOR", "TPR", "FNR", "TNR", "FPR")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def group_rates(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    return {
        "size": int(labels.size),
        "PPV": _ratio(tp, tp + fp), "FDR": _ratio(fp, tp + fp),
        "NPV": _ratio(tn, tn + fn), "FOR": _ratio(fn, tn + fn),
        "TPR": _ratio(tp, tp + fn), "FNR": _ratio(fn, tp + fn),
        "TNR": _ratio(tn, tn + fp), "FPR": _ratio(fp, tn + fp),
    }  # fmt: skip


def parity_report(
    labels: np.ndarray,
    probability: np.ndarray,
    privileged: np.ndarray,
    *,
    attribute: str,
    privileged_value: str,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Parity ratios of the eight rates between ``privileged`` (a boolean mask) and the rest."""
    labels = np.asarray(labels).astype(np.int64)
    privileged = np.asarray(privileged, dtype=bool)
    if privileged.all() or not privileged.any():
        raise InvalidInput(f"attribute {attribute!r}: both groups must have members")
    predicted = (np.asarray(probability) > threshold).astype(np.int64)
    groups = {
        "privileged": group_rates(labels[privileged], predicted[privileged]),
        "non_privileged": group_rates(labels[~privileged], predicted[~privileged]),
    }
    parity = {}
    for rate in RATES:
        a, b = groups["privileged"][rate], groups["non_privileged"][rate]
        parity[rate] = a / b if a is not None and b else None
    return {
        "attribute": attribute,
        "privileged_value": privileged_value,
        "threshold": threshold,
        "groups": groups,
        "parity": parity,
    }
