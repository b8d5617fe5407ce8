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
from loanrisk.schema import LoanSchema, builtin_schema


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
    schema: LoanSchema | None = None,
) -> list[list[dict[str, Any]]]:
    """Per row, up to ``top_k`` attributes that raised the risk, largest first:
    ``{"feature", "name", "reason", "value", "contribution"}`` (contribution in log-odds;
    ``name`` and ``reason`` are the schema's plain-language title and reason text)."""
    contributions = booster.predict(xgb.DMatrix(features), pred_contribs=True)[:, :-1]
    attributes, matrix = attribute_matrix(spec)
    words = _words(attributes, schema or builtin_schema())
    by_attribute = contributions @ matrix
    out = []
    for row, record in zip(by_attribute, values, strict=True):
        order = [i for i in np.argsort(-row) if row[i] > 0][:top_k]
        out.append([
            {"feature": attributes[i], **words[i], "value": record.get(attributes[i]),
             "contribution": round(float(row[i]), 6)}
            for i in order
        ])  # fmt: skip
    return out


def _words(attributes: Sequence[str], schema: LoanSchema) -> list[dict[str, str]]:
    """Each attribute's declared title and reason (a generic reason where none is declared)."""
    out = []
    for name in attributes:
        column = schema.by_name.get(name)
        title = column.label_text if column else name
        reason = column.reason if column and column.reason else f"{title} raised the risk"
        out.append({"name": title, "reason": reason})
    return out
