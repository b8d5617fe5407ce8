"""A second schema, of another shape than the built-in one, and loans of it.

Other column names; an ordinal column; a boolean; a text label ("good"/"bad"); an id column;
a protected column (never a feature) with its privileged value; a date carried along.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import yaml

SECOND: dict[str, Any] = {
    "format": "loanrisk.schema",
    "version": 1,
    "name": "second",
    "description": "Card and auto loans of a test lender.",
    "columns": [
        {"name": "application_id", "role": "id", "type": "categorical"},
        {"name": "applied_on", "role": "kept", "type": "date"},
        {
            "name": "applicant_age",
            "type": "integer",
            "valid": {"min": 18, "max": 120},
            "plausible": {"min": 18, "max": 90},
            "title": "Age",
            "example": 41,
        },
        {
            "name": "monthly_income",
            "type": "numeric",
            "valid": {"min": 0},
            "preprocess": "power",
            "risk": "decreasing",
            "title": "Monthly income",
            "reason": "Monthly income is low",
            "example": 3200.0,
        },
        {
            "name": "bureau_score",
            "type": "integer",
            "valid": {"min": 300, "max": 850},
            "preprocess": "scale",
            "risk": "decreasing",
            "title": "Bureau score",
            "reason": "Credit bureau score is low",
            "example": 640,
        },
        {
            "name": "product",
            "type": "categorical",
            "categories": ["card", "auto", "personal"],
            "title": "Product",
            "example": "card",
        },
        {
            "name": "risk_tier",
            "type": "ordinal",
            "categories": ["low", "medium", "high"],
            "risk": "increasing",
            "title": "Risk tier",
            "reason": "The application's risk tier is high",
            "example": "medium",
        },
        {
            "name": "has_guarantor",
            "type": "boolean",
            "risk": "decreasing",
            "title": "Guarantor",
            "reason": "No guarantor",
            "example": False,
        },
        {
            "name": "region",
            "role": "protected",
            "type": "categorical",
            "categories": ["north", "south"],
            "privileged": "north",
        },
        {
            "name": "outcome",
            "role": "label",
            "type": "categorical",
            "positive": ["bad"],
            "negative": ["good"],
        },
    ],
}


def second_yaml() -> str:
    return yaml.safe_dump(SECOND, sort_keys=False)


def second_loans(n: int = 4_000, *, seed: int = 5) -> pd.DataFrame:
    """Loans of the second schema whose outcome depends on tier, score, guarantor, income."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["low", "medium", "high"], n, p=[0.5, 0.3, 0.2])
    score = rng.integers(450, 820, n)
    guarantor = rng.random(n) < 0.3
    income = np.round(np.exp(rng.normal(8.0, 0.5, n)), 2)
    logit = (
        -1.5
        + 1.2 * (tier == "medium")
        + 2.5 * (tier == "high")
        - (score - 640) / 60
        - 1.0 * guarantor
        - 0.8 * (np.log(income) - 8)
    )
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "application_id": [f"A{i:06d}" for i in range(n)],
            "applied_on": pd.date_range("2025-01-01", periods=n, freq="h").strftime("%Y-%m-%d"),
            "applicant_age": rng.integers(18, 80, n),
            "monthly_income": income,
            "bureau_score": score,
            "product": rng.choice(["card", "auto", "personal"], n),
            "risk_tier": tier,
            "has_guarantor": np.where(guarantor, "yes", "no"),
            "region": rng.choice(["north", "south"], n),
            "outcome": np.where(bad, "bad", "good"),
        }
    )


def second_record(**changes: Any) -> dict[str, Any]:
    record = {
        "application_id": "A999999",
        "applicant_age": 35,
        "monthly_income": 900.0,
        "bureau_score": 480,
        "product": "card",
        "risk_tier": "high",
        "has_guarantor": False,
    }
    return {**record, **changes}


def second_with(**changes: dict[str, Any]) -> dict[str, Any]:
    """SECOND with fields of the named columns changed: ``product={"unknown": "missing"}``."""
    columns = [{**c, **changes.get(c["name"], {})} for c in SECOND["columns"]]
    return {**SECOND, "columns": columns}


#: Every missing-value treatment at once: a median, a power, a scaled and a passthrough
#: number, an ordinal, and a one-hot column whose unknown categories are missing values.
POLICIES = second_with(applicant_age={"preprocess": "median"}, product={"unknown": "missing"})
