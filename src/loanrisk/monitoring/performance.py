"""Realized performance: the prediction log joined to outcomes, per version; and the logged
loans of a window that have outcomes, exported as training data (closing the loop)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from loanrisk.schema import LoanSchema


def joined(log: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Logged loans that have an outcome: each loan's latest score per version."""
    named = log[log["loan_id"].notna()]
    latest = named.sort_values("time", kind="stable").drop_duplicates(
        ["version", "loan_id"], keep="last"
    )
    return latest.merge(outcomes, on="loan_id", how="inner")


def _version(rows: pd.DataFrame, scored: int) -> dict[str, Any]:
    labels = rows["defaulted"].to_numpy(dtype=np.int8)
    probability = rows["probability"].to_numpy(dtype=np.float64)
    out: dict[str, Any] = {"scored": scored, "with_outcome": len(rows)}
    if len(rows) == 0:
        return out | {"auc": None, "brier": None, "default_rate": None, "bands": []}
    both = 0 < labels.sum() < len(labels)
    out["auc"] = round(float(roc_auc_score(labels, probability)), 6) if both else None
    out["brier"] = round(float(np.mean((probability - labels) ** 2)), 6)
    out["default_rate"] = round(float(labels.mean()), 6)
    bands = []
    for band, group in rows.groupby("band", sort=False):
        bands.append(
            {
                "band": str(band),
                "loans": len(group),
                "predicted_pd": round(float(group["probability"].mean()), 6),
                "default_rate": round(float(group["defaulted"].mean()), 6),
            }
        )
    out["bands"] = sorted(bands, key=lambda b: b["predicted_pd"])
    return out


def performance_report(
    log: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    model: str,
    scored: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """Per version: loans scored (``scored``, when ``log`` is a sample of them), loans with
    an outcome, realized AUC and Brier, and the observed default rate against the mean
    predicted PD in each band."""
    matched = joined(log, outcomes)
    counts = scored or {int(v): int((log["version"] == v).sum()) for v in log["version"].unique()}
    return {
        "model": model,
        "versions": [
            {"version": v, **_version(matched[matched["version"] == v], counts[v])}
            for v in sorted(counts)
        ],
    }


def training_rows(matched: pd.DataFrame, schema: LoanSchema) -> pd.DataFrame:
    """Joined loans as the schema's training data: the loans as logged, and the label as the
    schema writes it (its first positive or negative value)."""
    loans = pd.DataFrame.from_records([json.loads(text) for text in matched["features"]])
    label = schema.label
    negative = label.negative_values or ("0",)
    loans[label.name] = np.where(
        matched["defaulted"].to_numpy(dtype=bool), str(label.positive_values[0]), str(negative[0])
    )
    if schema.id_name is not None:
        loans[schema.id_name] = matched["loan_id"].to_numpy()
    keep = [*schema.feature_names, label.name, *([schema.id_name] if schema.id_name else [])]
    return loans[[c for c in keep if c in loans.columns]]
