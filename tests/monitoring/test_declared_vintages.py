"""Vintages of a schema that declares its loans' origination date and amount, through the
real app: the date and the amount travel in the scored loans to the prediction log, the
backtest's vintages date each loan by its declared date (by its scoring when it has none) and
give the rates by amount; the model card and the console show the charts by count and by
amount. Bad values of either column, and bad declarations, are refused naming the field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.errors import InvalidInput
from loanrisk.monitoring.log.reader import read_log
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.schema.second import SECOND, second_loans

URL = "/v1/models/loan-default/backtest"
#: Origination months of the scored loans, and how many each.
MONTHS = {"2025-01": 120, "2025-02": 80, "2025-03": 100}
DATED = {
    **SECOND,
    "name": "dated",
    "columns": [
        {**c, "origination": True} if c["name"] == "applied_on" else c for c in SECOND["columns"]
    ]
    + [{"name": "credit_limit", "role": "kept", "type": "numeric", "amount": True}],
}


@dataclass(frozen=True)
class Served:
    client: TestClient
    #: The scored loans: application_id, applied_on, credit_limit, defaulted, defaulted_at.
    loans: pd.DataFrame


def scored_loans() -> pd.DataFrame:
    """The loans to score: origination dates in three months (one loan without a date),
    amounts (one without), outcomes with the later months defaulting more."""
    rng = np.random.default_rng(3)
    frames = []
    for i, (month, n) in enumerate(MONTHS.items()):
        days = rng.integers(1, 28, n)
        frames.append(
            pd.DataFrame(
                {
                    "applied_on": [f"{month}-{d:02d}" for d in days],
                    "defaulted": rng.random(n) < 0.1 + 0.1 * i,
                }
            )
        )
    loans = pd.concat(frames, ignore_index=True)
    loans["application_id"] = [f"D{i}" for i in range(len(loans))]
    loans["credit_limit"] = rng.choice([1_000.0, 5_000.0, 20_000.0], len(loans))
    loans.loc[0, "applied_on"] = None
    loans.loc[1, "credit_limit"] = None
    lag = pd.to_timedelta(rng.integers(20, 200, len(loans)), unit="D")
    start = pd.to_datetime(loans["applied_on"]).fillna(pd.Timestamp.now())
    loans["defaulted_at"] = np.where(loans["defaulted"], (start + lag).dt.strftime("%Y-%m-%d"), "")
    return loans


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("dated") / "store"
    storage = FsspecStorage(str(root))
    schema = LoanSchema.model_validate(DATED)
    training = second_loans(1_500)
    training["credit_limit"] = np.random.default_rng(1).integers(500, 20_000, len(training))
    validated = validate_frame(training, schema=schema, mode="train")
    process_dataset(validated, storage, source="dated", schema=schema)
    run_training(TrainingRequest(rounds=10), storage, nthread=1)
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0)
    loans = scored_loans()
    features = training.drop(columns=["outcome", "applied_on", "credit_limit", "region"])
    features = features.drop(columns=["application_id"]).head(len(loans))
    records = [
        {
            **row,
            "application_id": loan.application_id,
            "applied_on": None if pd.isna(loan.applied_on) else loan.applied_on,
            "credit_limit": None if pd.isna(loan.credit_limit) else loan.credit_limit,
            **({} if loan.Index % 10 == 0 else {"region": "north" if loan.Index % 2 else "south"}),
        }
        for row, loan in zip(features.to_dict(orient="records"), loans.itertuples(), strict=True)
    ]
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/predict", json=records)
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 20
        while len(read_log(storage, "prediction-log", model="loan-default")) < len(loans):
            assert time.monotonic() < deadline, "the loans were never logged"
            time.sleep(0.2)
        outcomes = pd.DataFrame(
            {
                "loan_id": loans["application_id"],
                "defaulted": loans["defaulted"].astype(int),
                "observed_on": "2026-12-31",
                "defaulted_at": loans["defaulted_at"],
            }
        )
        stored = client.post(
            "/v1/outcomes",
            content=outcomes.to_csv(index=False),
            headers={"content-type": "text/csv"},
        )
        assert stored.status_code == 200, stored.text
        yield Served(client, loans)


def vintages(client: TestClient) -> dict[str, Any]:
    answer = client.get(URL, params={"vintages": "true", "since": "2020-01-01"})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["vintages"]
    return found


def test_loans_are_dated_by_their_declared_origination_and_weighed_by_their_amount(
    served: Served,
) -> None:
    found = vintages(served.client)
    assert found["origination"] == "applied_on" and found["dated_by_scoring"] == 1
    assert found["by_amount"] and found["amount_column"] == "credit_limit"
    assert found["unknown_amounts"] == 1
    cohorts = {c["month"]: c for c in found["cohorts"] if c["loans"]}
    loans = served.loans
    months = loans["applied_on"].str[:7]
    for month, n in MONTHS.items():
        assert cohorts[month]["loans"] == int((months == month).sum()) <= n
    assert sum(c["loans"] for c in cohorts.values()) == len(loans)  # the undated one too
    # The rate by amount at 12 months on book, by hand: every loan is observed that long, and
    # each loan dated in January defaulted within 12 months if its default is by then.
    january = loans[(months == "2025-01") & loans["credit_limit"].notna()]
    start = pd.to_datetime(january["applied_on"])
    default = pd.to_datetime(january["defaulted_at"].replace("", None))
    within = (default.notna() & (default < start + pd.DateOffset(months=13))).to_numpy()
    weights = january["credit_limit"].to_numpy()
    assert cohorts["2025-01"]["rate_by_amount"][12] == pytest.approx(
        weights[within].sum() / weights.sum(), rel=1e-12
    )
    assert cohorts["2025-01"]["amount"] == pytest.approx(weights.sum())
    # The amounts weigh the concentration too: on outcomes, and at development.
    answer = served.client.get(URL, params={"since": "2020-01-01"}).json()
    assert answer["portfolio"]["herfindahl"]["exposure_index"] is not None
    report = served.client.get("/v1/models/loan-default/versions/1/report").json()
    assert report["backtest"]["portfolio"]["herfindahl"]["exposure_index"] is not None


def test_the_card_and_the_console_draw_the_vintages_by_count_and_by_amount(
    served: Served,
) -> None:
    card = served.client.get("/v1/models/loan-default/versions/production/card")
    assert card.status_code == 200, card.text
    for text in (card.text, served.client.get("/console/backtest?days=3650").text):
        assert 'id="chart-vintages"' in text and 'id="chart-vintages-amount"' in text
        assert "their origination date <code>applied_on</code>" in text


def test_bad_dates_and_amounts_in_a_loan_are_refused_naming_the_field(served: Served) -> None:
    record = served.client.get("/v1/models/loan-default/schema").json()
    assert record["schema"]["name"] == "dated"
    good = {
        "application_id": "X1",
        "applicant_age": 40,
        "monthly_income": 3000.0,
        "bureau_score": 640,
        "product": "card",
        "risk_tier": "low",
        "has_guarantor": False,
    }
    for field, value in (("applied_on", "31/01/2025"), ("credit_limit", -5)):
        answer = served.client.post("/v1/predict", json=[{**good, field: value}])
        assert answer.status_code == 422, answer.text
        assert field in answer.text
    assert served.client.post("/v1/predict", json=[good]).status_code == 200


def test_a_bad_declaration_is_refused_naming_the_field(served: Served) -> None:
    undated = {
        **DATED,
        "name": "undated",
        "columns": [
            {**c, "role": "ignored"} if c["name"] == "applied_on" else c for c in DATED["columns"]
        ],
    }
    answer = served.client.put("/v1/schemas/undated", json=undated)
    assert answer.status_code == 422
    assert "(applied_on): origination applies to a date column of role kept" in answer.text
    training = second_loans(50)
    training["credit_limit"] = "lots"
    with pytest.raises(InvalidInput, match="credit_limit"):
        validate_frame(training, schema=LoanSchema.model_validate(DATED), mode="train")


def test_a_kept_or_protected_attribute_the_loans_carried_segments_the_backtest(
    served: Served,
) -> None:
    """``region`` is protected, never a feature: logged as the loans carried it (every tenth
    without it, in the ``(missing)`` segment)."""
    answer = served.client.get(URL, params={"since": "2020-01-01", "segment": "region"})
    assert answer.status_code == 200, answer.text
    segments = answer.json()["segments"]
    sizes = {s["value"]: s["backtest"]["rows"] for s in segments["segments"]}
    n = len(served.loans)
    assert sizes == {"(missing)": n // 10, "north": n // 2, "south": n - n // 2 - n // 10}
    refused = served.client.get(URL, params={"segment": "applied_on"})
    assert refused.status_code == 422 and "segment" in refused.text
