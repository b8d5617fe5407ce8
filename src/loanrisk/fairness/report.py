"""The fairness figures of one protected attribute over a set of loans (docs/fairness.md):
per group, its approvals and PDs, and against the reference group the AIR of approvals and
the SMD of the PD (:mod:`.measures`); where loans have outcomes, each group's calibration
(observed default rate against the mean PD) and AUC. The training report computes it on the
test split, ``loanrisk monitor fairness`` on a window of the prediction log.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from loanrisk.errors import InvalidInput
from loanrisk.fairness.groups import AttributeGroups, Group
from loanrisk.fairness.measures import adverse_impact_ratio, standardized_mean_difference
from loanrisk.fairness.models import AttributeFairness, GroupFigures, GroupOutcomes


def _mean(values: np.ndarray, weight: np.ndarray) -> float | None:
    total = float(weight.sum())
    return float(weight @ values) / total if total > 0 else None


def _outcomes(
    group: Group, labels: np.ndarray, probability: np.ndarray, known: np.ndarray
) -> GroupOutcomes:
    weight = group.weight[known]
    y, p = labels[known], probability[known]
    inside = weight > 0
    auc = None
    if len(np.unique(y[inside])) == 2:
        auc = float(roc_auc_score(y[inside], p[inside], sample_weight=weight[inside]))
    return GroupOutcomes(
        loans=float(weight.sum()), observed=_mean(y, weight), predicted=_mean(p, weight), auc=auc
    )


def attribute_fairness(
    groups: AttributeGroups,
    probability: np.ndarray,
    *,
    threshold: float,
    approved: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> AttributeFairness:
    """The figures of ``groups`` (built over the same loans, in the same order) for the PDs
    ``probability``: approvals are ``approved`` when given (the decisions logged), else a PD
    at or below ``threshold``; ``labels`` (1 default, 0 repaid, NaN unknown) give the
    calibration and AUC per group. The SMD's population is every loan given. Raises
    :class:`InvalidInput` when the arrays and the groups disagree in length."""
    probability = np.asarray(probability, dtype=np.float64)
    size = probability.size
    if groups.reference.weight.size != size:
        raise InvalidInput(f"{groups.attribute}: groups of another number of loans than {size}")
    decided = (
        (probability <= threshold) if approved is None else np.asarray(approved, dtype=bool)
    ).astype(np.float64)
    outcome = None if labels is None else np.asarray(labels, dtype=np.float64)
    known = None if outcome is None else ~np.isnan(outcome)

    def figures(group: Group, reference: Group | None) -> GroupFigures:
        return GroupFigures(
            group=group.name,
            loans=group.size,
            approval_rate=_mean(decided, group.weight),
            mean_pd=_mean(probability, group.weight),
            air=None
            if reference is None
            else adverse_impact_ratio(decided, group.weight, reference.weight),
            smd=None
            if reference is None
            else standardized_mean_difference(probability, group.weight, reference.weight),
            outcomes=None
            if outcome is None or known is None or not known.any()
            else _outcomes(group, outcome, probability, known),
        )

    return AttributeFairness(
        attribute=groups.attribute,
        kind=groups.kind,
        threshold=threshold,
        loans=size,
        reference=figures(groups.reference, None),
        groups=[figures(g, groups.reference) for g in groups.groups],
        warnings=groups.warnings(),
    )


__all__ = [
    "AttributeFairness",
    "GroupFigures",
    "GroupOutcomes",
    "attribute_fairness",
]
