"""What every kind of training does with its test-split probabilities and its published
version, whatever the model (XGBoost, :mod:`.job`; a scorecard, :mod:`.scorecard`): the
evaluation report's decision-policy, grade, backtest and fairness sections, and the
promotion to ``production``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loanrisk.contracts import TrainingRequest
from loanrisk.errors import Conflict, InvalidInput
from loanrisk.fairness.groups import attribute_groups, protected_attributes
from loanrisk.fairness.report import AttributeFairness, attribute_fairness
from loanrisk.inference.scorer import Scorer, check_servable
from loanrisk.registry.masterscale import MasterScale
from loanrisk.registry.models import PRODUCTION, ModelRegistry
from loanrisk.registry.report import EvaluationReport, NotAssessed, ParityReport
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import PrivilegedGroup
from loanrisk.training.evaluate import band_table, development_backtest, grade_table
from loanrisk.training.fairness import describe_group, parity_report, privileged_mask

if TYPE_CHECKING:
    from pydantic import JsonValue

log = logging.getLogger(__name__)


def assessed(
    request: TrainingRequest,
    schema: LoanSchema,
    labels: np.ndarray,
    probability: np.ndarray,
    test: Any,
    evaluated: EvaluationReport,
    **sections: object,
) -> EvaluationReport:
    """``evaluated`` (:func:`~.evaluate.evaluate` of the test split's ``labels`` and
    ``probability``) with the sections every version's report has: the decision policy at
    work (bands), the master scale's grades and development backtest, and fairness per
    protected attribute of ``test`` (an attribute that cannot be assessed is said, not
    fatal); ``sections`` are set as they are (the kind's own)."""
    policy = request.policy  # recorded with the version: the report shows it at work
    fairness, unassessed = [], _unassessed(request, schema)
    for column, group in _fairness_groups(request, schema):
        try:
            fairness.append(_fairness(request, column, group, labels, test, probability))
        except InvalidInput as exc:  # e.g. a rule no test loan meets: said, not fatal
            unassessed.append(NotAssessed(attribute=column, reason=exc.message))
    measures = _measures(request, schema, labels, probability, test, unassessed)
    return evaluated.model_copy(
        update={
            "policy": policy,
            "bands": band_table(
                labels, probability, cutoffs=policy.band_cutoffs, names=policy.band_names
            ),
            "master_scale": request.master_scale.name,
            "grades": grade_table(labels, probability, request.master_scale),
            "backtest": _backtest_json(
                labels, probability, request.master_scale, _amounts(schema, test)
            ),
            "fairness": fairness[0] if fairness else None,
            "fairness_by_attribute": {f.attribute: f for f in fairness} or None,
            "fairness_not_assessed": unassessed or None,
            "fairness_measures": measures or None,
            **sections,
        }
    )


def promoted(
    request: TrainingRequest, registry: ModelRegistry, version: int
) -> tuple[bool, str | None]:
    """Promote the published ``version`` to ``production`` when the request says so (None:
    when the model has none yet), loaded and scored as the service will first: whether it
    was, and why not when it could not be."""
    promote = request.promote
    if promote is None:
        promote = not registry.has_alias(request.model_name, PRODUCTION)
    not_promoted = None
    if promote:
        reason = "trained with promote" if request.promote else "the model's first production"
        try:  # loaded and scored as the service will: an unservable version is never promoted
            registry.promote(
                request.model_name,
                version,
                PRODUCTION,
                by="training",
                reason=reason,
                check=lambda model: check_servable(Scorer(model)),
            )
        except Conflict as exc:
            promote, not_promoted = False, exc.message
            log.warning("published but not promoted: %s", exc.message)
    return promote, not_promoted


def _backtest_json(
    labels: np.ndarray, probability: np.ndarray, scale: MasterScale, amount: np.ndarray | None
) -> dict[str, JsonValue] | None:
    """The development backtest as the report stores it (None for a one-grade scale)."""
    result = development_backtest(labels, probability, scale, amount=amount)
    return None if result is None else result.model_dump(mode="json")


def _amounts(schema: LoanSchema, test: Any) -> np.ndarray | None:
    """The test loans' amounts when the schema declares an amount column the split holds
    (a feature, or a kept column carried as text); NaN where missing or unreadable."""
    column = schema.amount
    if column is None or column.name not in getattr(test, "columns", ()):
        return None
    values = pd.to_numeric(pd.Series(test[column.name]).astype("string"), errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _fairness_groups(
    request: TrainingRequest, schema: LoanSchema
) -> list[tuple[str, str | PrivilegedGroup]]:
    """(attribute, privileged group) pairs to report parity for: the request's, else every
    protected column of the schema that declares its privileged group."""
    if request.protected_attribute is not None:
        declared = schema.by_name.get(request.protected_attribute)
        value = request.privileged_value or (declared.privileged if declared else None)
        assert value is not None  # checked by the training's request checks
        return [(request.protected_attribute, value)]
    return [(c.name, c.privileged) for c in schema.protected if c.privileged is not None]


def _measures(
    request: TrainingRequest,
    schema: LoanSchema,
    labels: np.ndarray,
    probability: np.ndarray,
    test: Any,
    unassessed: list[NotAssessed],
) -> dict[str, AttributeFairness]:
    """The fair-lending measures of each protected attribute on the test split: the
    request's, else every attribute the schema declares groups for (one that cannot be
    measured is added to ``unassessed``, once)."""
    asked = request.protected_attribute
    out = {}
    for attribute in [asked] if asked is not None else protected_attributes(schema):
        try:
            groups = attribute_groups(
                schema, test, attribute, privileged=request.privileged_value if asked else None
            )
            out[attribute] = attribute_fairness(
                groups, probability, threshold=request.threshold, labels=labels
            )
        except InvalidInput as exc:
            if all(item.attribute != attribute for item in unassessed):
                unassessed.append(NotAssessed(attribute=attribute, reason=exc.message))
    return out


def _unassessed(request: TrainingRequest, schema: LoanSchema) -> list[NotAssessed]:
    """Protected columns no parity was computed for, and why (the card says so)."""
    if request.protected_attribute is not None:
        return []
    return [
        NotAssessed(
            attribute=c.name,
            reason="no privileged group declared (privileged: a value, values or a min/max range)",
        )
        for c in schema.protected
        if c.privileged is None and c.proxy is None  # a proxy's groups are its attribute's
    ]


def _fairness(
    request: TrainingRequest,
    column: str,
    group: str | PrivilegedGroup,
    labels: np.ndarray,
    test: Any,
    probability: np.ndarray,
) -> ParityReport:
    privileged = privileged_mask(test[column], group)
    return parity_report(
        labels,
        probability,
        privileged,
        attribute=column,
        privileged_value=describe_group(group),
        threshold=request.threshold,
    )
