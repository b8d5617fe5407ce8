"""Reason codes: the features that pushed a loan's score up, from XGBoost's SHAP values.

``Booster.predict(..., pred_contribs=True)`` gives each encoded column's contribution to the
log-odds of default (plus a bias). One-hot columns are summed back to their raw attribute
(``loan_grade=D`` and its siblings become ``loan_grade``), and the top-k attributes with a
positive contribution are reported with the applicant's value and the version's reason
catalog entry for it (:mod:`loanrisk.inference.reasons`: the statement of the loan's category
where the catalog has one, else that of the value's direction): the material of an
adverse-action notice. The contributions come from the booster whatever backend scores,
so the reasons are the same on every backend.

Each reason also carries its ``points``: its contribution in points of the version's scaling
(:meth:`~loanrisk.registry.scaling.Scaling.points_of_log_odds`, ``-factor * contribution``:
negative, the points the attribute cost the loan). Over all attributes, the base points
(``offset - factor * bias``) plus every attribute's points is the loan's exact score before
rounding (:func:`attribute_contributions` gives every attribute's contribution and the bias),
for a version without calibration; with one, they sum to the score of the booster's own PD,
before the calibration map moves it (docs/scorecard.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xgboost as xgb

from loanrisk.features.spec import FeatureSpec
from loanrisk.inference.reasons import above_typical, reason_of
from loanrisk.inference.records import ReasonValues, SpecialCode
from loanrisk.inference.results import Reason
from loanrisk.registry.reasons import ReasonCatalog, derived_catalog
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling
from loanrisk.schema import LoanSchema, builtin_schema

#: A contribution (log-odds) below this did not raise the risk in any sense a notice means.
MIN_CONTRIBUTION = 1e-6


def attribute_matrix(spec: FeatureSpec) -> tuple[list[str], np.ndarray]:
    """Raw attribute names, and the (encoded column x attribute) 0/1 matrix that sums them."""
    attributes = list(spec.input_columns)
    matrix = np.zeros((len(spec.output_columns), len(attributes)))
    position = {name: j for j, name in enumerate(attributes)}
    for i, attribute in enumerate(spec.output_attributes):
        matrix[i, position[attribute]] = 1
    return attributes, matrix


def attribute_contributions(
    booster: xgb.Booster, spec: FeatureSpec, features: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The raw attribute names, each row's contribution of each attribute to the log-odds of
    default (rows x attributes: TreeSHAP values, one-hot columns summed back), and each
    row's bias; per row, the bias plus the contributions is the booster's margin."""
    contributions = booster.predict(xgb.DMatrix(features), pred_contribs=True)
    attributes, matrix = attribute_matrix(spec)
    by_attribute: np.ndarray = contributions[:, :-1] @ matrix
    bias: np.ndarray = contributions[:, -1]
    return attributes, by_attribute, bias


def reason_codes(
    booster: xgb.Booster,
    spec: FeatureSpec,
    features: np.ndarray,
    values: Sequence[ReasonValues],
    *,
    top_k: int = 4,
    schema: LoanSchema | None = None,
    catalog: ReasonCatalog | None = None,
    scaling: Scaling = DEFAULT_SCALING,
) -> list[list[Reason]]:
    """Per row, up to ``top_k`` attributes that raised the risk, largest first, each a
    :class:`Reason` (``reason`` is the catalog's statement: the loan's category's where it
    has one, else the direction's; for a declared special code in ``values``
    (:class:`SpecialCode`), the direction ``special`` and "<title>: <its meaning>", under
    the missing value's code; contribution in log-odds, and in ``points`` of ``scaling``)."""
    schema = schema or builtin_schema()
    catalog = catalog or derived_catalog(schema)
    entries, by_value = catalog.lookup(), catalog.value_lookup()
    attributes, by_attribute, _ = attribute_contributions(booster, spec, features)
    above = above_typical(spec, features)
    out: list[list[Reason]] = []
    for r, (row, record) in enumerate(zip(by_attribute, values, strict=True)):
        reasons: list[Reason] = []
        points = scaling.points_of_log_odds(row)
        for i in [i for i in np.argsort(-row) if row[i] >= MIN_CONTRIBUTION][:top_k]:
            name = attributes[i]
            raw = record.get(name)
            special = raw if isinstance(raw, SpecialCode) else None
            value = None if isinstance(raw, SpecialCode) else raw
            way, entry = reason_of(
                schema,
                entries,
                by_value,
                name,
                value,
                bool(above[name][r]) if name in above else None,
            )
            title = schema.column(name).label_text
            if special is not None:  # a declared code, not a gap: say what it means
                statement = f"{title}: {special.meaning}"
            else:
                statement = entry.says(value) if entry else f"{name} raised the risk"
            reasons.append(
                Reason(
                    feature=name,
                    name=title,
                    value=special.code if special else value,
                    direction="special" if special else way,
                    code=entry.code if entry else None,
                    reason=statement,
                    contribution=round(float(row[i]), 6),
                    points=float(points[i]),
                )
            )
        out.append(reasons)
    return out
