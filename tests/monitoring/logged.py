"""Prediction-log rows written as the log's writer writes them, at chosen times, for tests of
retention and erasure (no model needed: a batch's frame path of the writer)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from loanrisk.monitoring.log import SHADOW
from loanrisk.monitoring.log.reader import read_log
from loanrisk.monitoring.log.writer import PredictionLog, Scored
from loanrisk.storage import Storage
from tests.builtin import EXAMPLE_LOAN


def scored(
    at: datetime, loan_ids: Sequence[str], *, model: str = "loan-default", shadow: bool = False
) -> Scored:
    """One scoring call of ``loan_ids`` (the example loan each) at ``at``."""
    loans = pd.DataFrame([{**EXAMPLE_LOAN, "id": loan_id} for loan_id in loan_ids])
    n = len(loan_ids)
    results = pd.DataFrame(
        {
            "row": range(1, n + 1),
            "probability": [0.1 + i / (10 * n) for i in range(n)],
            "label": [False] * n,
            "band": ["low"] * n,
        }
    )
    return Scored(
        at.timestamp(),
        f"req-{at:%H%M%S}",
        model,
        2 if shadow else 1,
        "xgboost",
        "batch",
        loans,
        results,
        ("id",),
        role=SHADOW if shadow else "champion",
    )


def write_file(log: PredictionLog, *items: Scored) -> None:
    """Write ``items`` as the log's buffered writer does: one file per model and day."""
    for item in items:
        log.record(item)
    log.flush()


def wait_for_loans(
    storage: Storage, loan_ids: Sequence[str], *, model: str = "loan-default"
) -> pd.DataFrame:
    """The prediction log's rows of ``model`` once every one of ``loan_ids`` is on it (the
    log is written off the response path), or as they stand after 20 s."""
    directory = storage.resolve("prediction-log")
    deadline = time.monotonic() + 20
    rows = read_log(storage, directory, model=model)
    while time.monotonic() < deadline and rows["loan_id"].isin(loan_ids).sum() < len(loan_ids):
        time.sleep(0.1)
        rows = read_log(storage, directory, model=model)
    return rows
