"""Realized performance: the prediction log joined to outcomes, per version; and the logged
loans of a window that have outcomes, exported as training data (closing the loop)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import roc_auc_score

from loanrisk.monitoring.drift import Moment
from loanrisk.monitoring.log.reader import logged_features
from loanrisk.schema import LoanSchema
from loanrisk.storage.problems import Problem


class BandPerformance(BaseModel):
    """One risk band's loans with an outcome: mean predicted PD against the observed rate."""

    model_config = ConfigDict(frozen=True)

    band: str
    loans: int
    predicted_pd: float
    default_rate: float


class VersionPerformance(BaseModel):
    """One version's loans scored and those with an outcome; realized AUC (None without
    both defaults and non-defaults), Brier and default rate (None without outcomes), and its
    bands by predicted PD."""

    model_config = ConfigDict(frozen=True)

    version: int
    scored: int
    with_outcome: int
    auc: float | None
    brier: float | None
    default_rate: float | None
    bands: list[BandPerformance]


class PerformanceReport(BaseModel):
    """Realized performance of each version of ``model`` that scored loans in ``[since,
    until)`` (from a sample of ``sampled`` rows past the bound)."""

    model_config = ConfigDict(frozen=True)

    model: str
    versions: list[VersionPerformance]
    since: Moment | None = None
    until: Moment | None = None
    sampled: int | None = None
    #: Stored items skipped (unreadable log or outcome files): the report is of the rest.
    problems: list[Problem] = []


def joined(log: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Logged loans that have an outcome: each loan's latest score per version."""
    named = log[log["loan_id"].notna()]
    latest = named.sort_values("time", kind="stable").drop_duplicates(
        ["version", "loan_id"], keep="last"
    )
    return latest.merge(outcomes, on="loan_id", how="inner")


def _version(version: int, rows: pd.DataFrame, scored: int) -> VersionPerformance:
    if len(rows) == 0:
        return VersionPerformance(
            version=version,
            scored=scored,
            with_outcome=0,
            auc=None,
            brier=None,
            default_rate=None,
            bands=[],
        )
    labels = rows["defaulted"].to_numpy(dtype=np.int8)
    probability = rows["probability"].to_numpy(dtype=np.float64)
    both = 0 < labels.sum() < len(labels)
    bands = [
        BandPerformance(
            band=str(band),
            loans=len(group),
            predicted_pd=round(float(group["probability"].mean()), 6),
            default_rate=round(float(group["defaulted"].mean()), 6),
        )
        for band, group in rows.groupby("band", sort=False)
    ]
    return VersionPerformance(
        version=version,
        scored=scored,
        with_outcome=len(rows),
        auc=round(float(roc_auc_score(labels, probability)), 6) if both else None,
        brier=round(float(np.mean((probability - labels) ** 2)), 6),
        default_rate=round(float(labels.mean()), 6),
        bands=sorted(bands, key=lambda b: b.predicted_pd),
    )


def performance_report(
    log: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    model: str,
    scored: Mapping[int, int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sampled: int | None = None,
    problems: list[Problem] | None = None,
) -> PerformanceReport:
    """Per version: loans scored (``scored``, when ``log`` is a sample of them), loans with
    an outcome, realized AUC and Brier, and the observed default rate against the mean
    predicted PD in each band; ``since``, ``until`` and ``sampled`` say what window ``log``
    is."""
    matched = joined(log, outcomes)
    counts = scored or {int(v): int((log["version"] == v).sum()) for v in log["version"].unique()}
    return PerformanceReport(
        model=model,
        versions=[_version(v, matched[matched["version"] == v], counts[v]) for v in sorted(counts)],
        since=since,
        until=until,
        sampled=sampled,
        problems=problems or [],
    )


def training_rows(matched: pd.DataFrame, schema: LoanSchema) -> pd.DataFrame:
    """Joined loans as the schema's training data: the loans as logged, and the label as the
    schema writes it (its first positive or negative value)."""
    loans = logged_features(matched["features"])
    label = schema.label
    negative = label.negative_values or ("0",)
    loans[label.name] = np.where(
        matched["defaulted"].to_numpy(dtype=bool), str(label.positive_values[0]), str(negative[0])
    )
    if schema.id_name is not None:
        loans[schema.id_name] = matched["loan_id"].to_numpy()
    keep = [*schema.feature_names, label.name, *([schema.id_name] if schema.id_name else [])]
    return loans[[c for c in keep if c in loans.columns]]
