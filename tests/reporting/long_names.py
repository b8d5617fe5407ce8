"""A lender's schema with long names, and loans of it: 32 attributes named in 40 characters,
15 of them categorical with 4 categories (60 one-hot model inputs), half with a title of up to
40 characters and half labelled from their name; and a protected column, named in 40
characters too, with its privileged value. Every attribute moves the outcome a little,
so a small model splits on most of them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.schema import LoanSchema, parse_schema

TOPICS = (
    "months_since_the_most_recent_late_pay",
    "count_of_open_revolving_credit_trades",
    "ratio_of_revolving_balances_to_limits",
    "number_of_hard_inquiries_on_the_files",
    "unpaid_balance_on_instalment_accounts",
)
TITLES = (
    "Months since the last late payment",
    "Open revolving credit trades held",
    "Revolving balances to their limits",
    "Hard inquiries on the credit files",
    "Unpaid instalment account balances",
)
CATEGORIES = ("owner_occupied", "rented_privately", "living_with_family", "other_housing")
CATEGORICAL = 15
ATTRIBUTES = 32
#: A protected column (never a feature), named at length too: its parity chart is measured.
PROTECTED = "age_band_of_the_applicant_at_application"


def _name(i: int) -> str:
    """The attribute's topic and its number: 40 characters, two names differing at their end."""
    return f"{TOPICS[i % len(TOPICS)]}_{i:02d}"


def long_schema_doc() -> dict[str, Any]:
    columns: list[dict[str, Any]] = []
    for i in range(ATTRIBUTES):
        column: dict[str, Any] = {"name": _name(i)}
        if i < CATEGORICAL:
            column.update(type="categorical", categories=list(CATEGORIES))
        else:
            column.update(type="numeric")
        if i % 2 == 0:  # the other half: labelled from the name
            column["title"] = f"{TITLES[i % len(TITLES)]} ({i:02d})"
        columns.append(column)
    columns.append(
        {
            "name": PROTECTED,
            "role": "protected",
            "type": "categorical",
            "categories": ["under_forty", "forty_or_over"],
            "privileged": "forty_or_over",
        }
    )
    columns.append(
        {
            "name": "defaulted",
            "role": "label",
            "type": "categorical",
            "positive": ["yes"],
            "negative": ["no"],
        }
    )
    return {
        "format": "loanrisk.schema",
        "version": 1,
        "name": "long-names",
        "description": "A lender's own attributes, named at length.",
        "columns": columns,
    }


def long_schema() -> LoanSchema:
    return parse_schema(json.dumps(long_schema_doc()))


def long_loans(n: int = 3_000, *, seed: int = 7) -> pd.DataFrame:
    """Loans of :func:`long_schema` whose default depends on every attribute, the first most."""
    rng = np.random.default_rng(seed)
    frame: dict[str, Any] = {}
    logit = np.full(n, -1.2)
    for i in range(ATTRIBUTES):
        weight = 1.5 / (1 + i / 4)
        if i < CATEGORICAL:
            codes = rng.integers(0, len(CATEGORIES), n)
            frame[_name(i)] = np.asarray(CATEGORIES)[codes]
            logit += weight * (codes - 1.5) / 1.5
        else:
            values = rng.normal(0, 1, n)
            frame[_name(i)] = np.round(values * 10 + 50, 2)
            logit += weight * values
    frame[PROTECTED] = rng.choice(["under_forty", "forty_or_over"], n)
    frame["defaulted"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame(frame)
