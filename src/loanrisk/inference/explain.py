"""Reason codes: the features that pushed a loan's score up, from XGBoost's SHAP values.

``Booster.predict(..., pred_contribs=True)`` gives each encoded column's contribution to the
log-odds of default (plus a bias). One-hot columns are summed back to their raw attribute
(``loan_grade=D`` and its siblings become ``loan_grade``), and the top-k attributes with a
positive contribution are reported with the applicant's value: the material of an
adverse-action notice ("principal reasons": high loan-to-income ratio, grade D ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xgboost as xgb

from loanrisk.features.spec import FeatureSpec


def attribute_matrix(spec: FeatureSpec) -> tuple[list[str], np.ndarray]:
    """Raw attribute names, and the (encoded column x attribute) 0/1 matrix that sums them."""
    attributes = list(spec.input_columns)
    matrix = np.zeros((len(spec.output_columns), len(attributes)))
    for i, column in enumerate(spec.output_columns):
        matrix[i, attributes.index(column.split("=", 1)[0])] = 1
    return attributes, matrix


def reason_codes(
    booster: xgb.Booster,
    spec: FeatureSpec,
    features: np.ndarray,
    values: Sequence[Mapping[str, Any]],
    *,
    top_k: int = 4,
) -> list[list[dict[str, Any]]]:
    """Per row, up to ``top_k`` attributes that raised the risk, largest first:
    ``{"feature", "value", "contribution"}`` (contribution in log-odds)."""
    contributions = booster.predict(xgb.DMatrix(features), pred_contribs=True)[:, :-1]
    attributes, matrix = attribute_matrix(spec)
    by_attribute = contributions @ matrix
    out = []
    for row, record in zip(by_attribute, values, strict=True):
        order = [i for i in np.argsort(-row) if row[i] > 0][:top_k]
        out.append([
            {"feature": attributes[i], "value": record.get(attributes[i]),
             "contribution": round(float(row[i]), 6)}
            for i in order
        ])  # fmt: skip
    return out
