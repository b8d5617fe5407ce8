"""Fair lending: a protected attribute's groups (categories, rules, proxy probabilities) and
the disparity measures of each group against its reference group (AIR, SMD, calibration and
AUC per group). Library code: no web imports.

The names below are loaded on first use: the registry's report model imports
:mod:`.models` alone, and the light modules (errors, settings, contracts) must not pay for
scipy and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module defining it.
_LAZY = {
    "AirResult": "models",
    "AttributeFairness": "models",
    "GroupFigures": "models",
    "SmdResult": "models",
    "AttributeGroups": "groups",
    "Group": "groups",
    "attribute_groups": "groups",
    "describe_group": "groups",
    "privileged_mask": "groups",
    "protected_attributes": "groups",
    "adverse_impact_ratio": "measures",
    "standardized_mean_difference": "measures",
    "attribute_fairness": "report",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
