"""Two versions' adverse impact ratios on the same loans: what ``loanrisk models compare``
shows beside the AUC difference, so that a less discriminatory alternative (or any
challenger) is judged on both.

Each version decides at its own threshold (the one it is served with); per protected group
of each protected attribute the schema declares, both AIRs with their 95% intervals and
p-values (:func:`~loanrisk.fairness.measures.adverse_impact_ratio`) and the difference
``b - a`` of the two AIRs. The two AIRs are of the same loans, so their intervals are not
independent: the difference carries no interval of its own here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.errors import InvalidInput
from loanrisk.fairness.groups import attribute_groups, protected_attributes
from loanrisk.fairness.measures import AirResult, adverse_impact_ratio
from loanrisk.schema import LoanSchema


class AirComparison(BaseModel):
    """One protected group's AIR under each version, and the difference (b - a; None when
    either is undefined)."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    group: str
    reference: str = Field(description="The reference group it is measured against.")
    a: AirResult
    b: AirResult
    difference: float | None = Field(description="AIR of b minus AIR of a.")


class FairnessComparison(BaseModel):
    """The AIR comparisons of every protected attribute that could be assessed, and why the
    others could not."""

    model_config = ConfigDict(frozen=True)

    threshold_a: float
    threshold_b: float
    groups: list[AirComparison] = Field(default_factory=list)
    not_assessed: dict[str, str] = Field(
        default_factory=dict, description="Attribute: why it was not compared."
    )


def compare_airs(
    schema: LoanSchema,
    loans: pd.DataFrame,
    probability_a: np.ndarray,
    probability_b: np.ndarray,
    *,
    threshold_a: float,
    threshold_b: float,
) -> FairnessComparison:
    """Per protected group of ``schema`` among ``loans``, the AIR of each version's
    approvals (PD at or under its threshold); ``probability_a``/``_b`` are the versions' PDs
    of ``loans``, in its order."""
    approved_a = np.asarray(probability_a) <= threshold_a
    approved_b = np.asarray(probability_b) <= threshold_b
    compared, skipped = [], {}
    for attribute in protected_attributes(schema):
        try:
            groups = attribute_groups(schema, loans, attribute)
        except InvalidInput as exc:  # e.g. a rule no loan meets here: said, not fatal
            skipped[attribute] = exc.message
            continue
        reference = groups.reference
        for group in groups.groups:
            a = adverse_impact_ratio(approved_a, group.weight, reference.weight)
            b = adverse_impact_ratio(approved_b, group.weight, reference.weight)
            difference = None if a.air is None or b.air is None else b.air - a.air
            compared.append(
                AirComparison(
                    attribute=attribute,
                    group=group.name,
                    reference=reference.name,
                    a=a,
                    b=b,
                    difference=difference,
                )
            )
    return FairnessComparison(
        threshold_a=threshold_a, threshold_b=threshold_b, groups=compared, not_assessed=skipped
    )
