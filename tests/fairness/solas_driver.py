"""Run in solas-ai's own venv (requirements/solas.lock) by tests/fairness/conftest.py: reads
cases as JSON on stdin, writes solas-ai's AIR and SMD of each as JSON on stdout.

A case: ``outcome`` (approvals 0/1), ``score`` (the PD), ``groups`` (name -> weight per
loan; null for a loan in no group), ``protected`` (group names), ``reference`` (the one
reference group's name, in a list) and optionally ``sample_weight``. Only the standard
library and pandas besides solas-ai.
"""

import json
import sys
import warnings

import pandas as pd
import solas_disparity as sd

warnings.simplefilter("ignore")


def figures(case: dict) -> dict:  # type: ignore[type-arg]
    groups = pd.DataFrame(case["groups"], dtype="float64")
    weight = case.get("sample_weight")
    common = {
        "group_data": groups,
        "protected_groups": case["protected"],
        "reference_groups": case["reference"] * len(case["protected"]),
        "group_categories": ["attribute"] * len(case["protected"]),
        "sample_weight": None if weight is None else pd.Series(weight, dtype="float64"),
    }
    air = sd.adverse_impact_ratio(
        outcome=pd.Series(case["outcome"], dtype="float64"),
        air_threshold=0.8,
        percent_difference_threshold=0.0,
        **common,
    ).summary_table
    smd = sd.standardized_mean_difference(
        outcome=pd.Series(case["score"], dtype="float64"), smd_threshold=30.0, **common
    ).summary_table
    out = {}
    for group in case["protected"]:
        out[group] = {
            "air": float(air.loc[group, "AIR"]),
            "air_p_value": float(air.loc[group, "P-Values"]),
            "protected_rate": float(air.loc[group, "Percent Favorable"]),
            "reference_rate": float(air.loc[case["reference"][0], "Percent Favorable"]),
            "protected_count": float(air.loc[group, "Total"]),
            "smd": float(smd.loc[group, "SMD"]),
            "smd_p_value": float(smd.loc[group, "P-Values"]),
        }
    return out


json.dump([figures(case) for case in json.load(sys.stdin)], sys.stdout)
