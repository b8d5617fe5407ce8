"""Reason codes: the features that pushed a loan's score up, from XGBoost's SHAP values.

``Booster.predict(..., pred_contribs=True)`` gives each encoded column's contribution to the
log-odds of default (plus a bias). One-hot columns are summed back to their raw attribute
(``loan_grade=D`` and its siblings become ``loan_grade``), and the top-k attributes with a
positive contribution are reported with the applicant's value and the version's reason
catalog entry for it (:mod:`loanrisk.inference.reasons`: the statement of the loan's category
where the catalog has one, else that of the value's direction): the material of an
adverse-action notice. The contributions come from the booster whatever backend scores,
so the reasons are the same on every backend.
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


def reason_codes(
    booster: xgb.Booster,
    spec: FeatureSpec,
    features: np.ndarray,
    values: Sequence[ReasonValues],
    *,
    top_k: int = 4,
    schema: LoanSchema | None = None,
    catalog: ReasonCatalog | None = None,
) -> list[list[Reason]]:
    """Per row, up to ``top_k`` attributes that raised the risk, largest first, each a
    :class:`Reason` (``reason`` is the catalog's statement: the loan's category's where it
    has one, else the direction's; for a declared special code in ``values``
    (:class:`SpecialCode`), the direction ``special`` and "<title>: <its meaning>", under
    the missing value's code; contribution in log-odds)."""
    schema = schema or builtin_schema()
    catalog = catalog or derived_catalog(schema)
    entries, by_value = catalog.lookup(), catalog.value_lookup()
    contributions = booster.predict(xgb.DMatrix(features), pred_contribs=True)[:, :-1]
    attributes, matrix = attribute_matrix(spec)
    above = above_typical(spec, features)
    by_attribute = contributions @ matrix
    out: list[list[Reason]] = []
    for r, (row, record) in enumerate(zip(by_attribute, values, strict=True)):
        reasons: list[Reason] = []
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
                )
            )
        out.append(reasons)
    return out
