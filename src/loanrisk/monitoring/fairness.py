"""Fair lending over a window of the prediction log (docs/fairness.md): the figures of
:func:`loanrisk.fairness.report.attribute_fairness` for the loans a version scored in
``[since, until)``, approvals being its logged decisions, and calibration and AUC per group
from the outcomes stored for those loans.

A loan's protected attribute is read from the loan as logged (the record as received): a
caller that sends the protected columns (or the proxy probabilities) with the loan gets them
measured; an attribute no loan carries is reported as not assessed, never guessed. Each loan
counts once, with its latest score of the window (a loan without an id, each time). Past
``max_rows`` log rows, a uniform sample (:func:`~loanrisk.monitoring.log.reader.read_window`)
is measured, and ``sampled`` says how many rows it holds. ``threshold`` is the version's
training threshold, reported for reference: approvals are the decisions logged.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.errors import InvalidInput
from loanrisk.fairness.groups import attribute_groups, declared_name, protected_attributes
from loanrisk.fairness.report import AttributeFairness, attribute_fairness
from loanrisk.monitoring.drift import Moment
from loanrisk.monitoring.log.reader import logged_features, read_window
from loanrisk.monitoring.outcomes import read_outcomes
from loanrisk.registry.models import ModelRegistry
from loanrisk.registry.policy import DEFAULT_THRESHOLD
from loanrisk.registry.report import NotAssessed
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

_COLUMNS = ["time", "loan_id", "features", "probability", "label"]


class FairnessWindowReport(BaseModel):
    """The fair-lending figures of version ``version`` of ``model`` over ``[since, until)``
    of the log: ``scored`` log rows of the version in the window, ``loans`` measured (each
    once), ``sampled`` (rows read when past the bound, else None), ``with_outcome`` loans
    with an outcome, one :class:`AttributeFairness` per attribute measured, the attributes
    ``not_assessed`` and why, and the stored files skipped (``problems``)."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    since: Moment | None = None
    until: Moment | None = None
    threshold: float
    scored: int
    loans: int
    sampled: int | None = None
    with_outcome: int
    attributes: list[AttributeFairness]
    not_assessed: list[NotAssessed] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """Each loan once, with its latest score (rows without a loan id each count)."""
    named = frame["loan_id"].notna()
    latest = frame[named].sort_values("time", kind="stable").drop_duplicates("loan_id", keep="last")
    return pd.concat([latest, frame[~named]], ignore_index=True)


def fairness_for(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    outcome_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    max_rows: int | None = None,
    attribute: str | None = None,
) -> FairnessWindowReport:
    """The fair-lending figures of version ``ref`` of model ``name`` over the window: of
    ``attribute`` (matched as :func:`~loanrisk.fairness.groups.declared_name` matches: case
    aside, when unambiguous), else of every attribute its schema declares groups for. Raises
    :class:`InvalidInput` naming ``attribute`` when the schema declares no groups for it;
    an attribute the window's loans do not carry is listed in ``not_assessed``."""
    model = registry.load(name, ref)
    schema = model.schema
    report = model.report
    # The threshold the version was trained with (the logged decisions are the served one's).
    threshold = DEFAULT_THRESHOLD if report is None else report.threshold
    declared = protected_attributes(schema)
    asked = attribute
    if asked is not None:
        attribute = declared_name(declared, asked)
    if asked is not None and attribute is None:
        raise InvalidInput(
            f"attribute {asked!r} is not a protected attribute with groups declared in "
            f"the schema of version {model.version} (declared: {', '.join(declared) or 'none'})",
            details={"field": "attribute"},
        )
    log = read_window(
        storage,
        log_directory,
        model=name,
        since=since,
        until=until,
        version=model.version,
        columns=_COLUMNS,
        max_rows=max_rows,
    )
    problems = list(log.problems)
    rows = _latest(log.frame)
    outcomes = read_outcomes(storage, outcome_directory, problems=problems)
    defaulted = rows[["loan_id"]].merge(
        outcomes[["loan_id", "defaulted"]], on="loan_id", how="left"
    )["defaulted"]
    labels = pd.to_numeric(defaulted, errors="coerce").to_numpy(dtype=np.float64)
    loans = logged_features(rows["features"]) if len(rows) else pd.DataFrame()
    probability = rows["probability"].to_numpy(dtype=np.float64)
    approved = ~rows["label"].to_numpy(dtype=bool)
    measured, not_assessed = [], []
    for name_ in [attribute] if attribute is not None else declared:
        try:
            groups = attribute_groups(schema, loans, name_)
            measured.append(
                attribute_fairness(
                    groups,
                    probability,
                    threshold=threshold,
                    approved=approved,
                    labels=labels,
                )
            )
        except InvalidInput as exc:
            not_assessed.append(NotAssessed(attribute=name_, reason=exc.message))
    return FairnessWindowReport(
        model=name,
        version=model.version,
        since=since,
        until=until,
        threshold=threshold,
        scored=log.rows,
        loans=len(rows),
        sampled=log.sampled,
        with_outcome=int((~np.isnan(labels)).sum()),
        attributes=measured,
        not_assessed=not_assessed,
        problems=problems,
    )
