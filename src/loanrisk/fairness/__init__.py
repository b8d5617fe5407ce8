"""Fair lending: a protected attribute's groups (categories, rules, proxy probabilities) and
the disparity measures of each group against its reference group (AIR, SMD, calibration and
AUC per group). Library code: no web imports."""

from loanrisk.fairness.groups import (
    AttributeGroups,
    Group,
    attribute_groups,
    describe_group,
    privileged_mask,
    protected_attributes,
)
from loanrisk.fairness.measures import (
    AirResult,
    SmdResult,
    adverse_impact_ratio,
    standardized_mean_difference,
)

__all__ = [
    "AirResult",
    "AttributeGroups",
    "Group",
    "SmdResult",
    "adverse_impact_ratio",
    "attribute_groups",
    "describe_group",
    "privileged_mask",
    "protected_attributes",
    "standardized_mean_difference",
]
