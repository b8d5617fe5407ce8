"""Outcomes and realized performance, through the real app and the CLI; outcomes in the words
of a lender's own label; and the loop closed: the logged loans of a window with outcomes
become the data of a continued training."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.monitoring.outcomes import (
    OutcomeValues,
    parse_outcomes,
    read_outcomes,
    store_outcomes,
)
from loanrisk.registry import ModelRegistry
from loanrisk.schema import Column, parse_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage
from loanrisk.storage.problems import Problem
from loanrisk.training.job import TrainingRequest, run_training
from tests.monitoring.test_drift import as_records
from tests.schema.second import second_loans, second_yaml
from tests.service.test_servers import LOANRISK


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(8_000, seed=0)), storage, source="sample")
    run_training(TrainingRequest(rounds=60), storage, nthread=1)
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def score_stream(client: TestClient, loans: pd.DataFrame) -> None:
    records = as_records(loans.drop(columns=["loan_status"]))
    for start in range(0, len(records), 500):
        body = [{**r, "id": f"L{start + i}"} for i, r in enumerate(records[start : start + 500])]
        answer = client.post("/v1/predict", json=body)
        assert answer.status_code == 200, answer.text


def outcomes_csv(loans: pd.DataFrame) -> str:
    return pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(len(loans))],
            "defaulted": loans["loan_status"].to_numpy(),
            "observed_on": "2026-11-30",
        }
    ).to_csv(index=False)


def performance(client: TestClient, *, scored: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:  # the log is written every 0.2 s
        report: dict[str, Any] = client.get("/v1/models/loan-default/performance").json()
        versions = report["versions"]
        if (versions and versions[0]["scored"] == scored) or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def test_outcomes_from_a_known_pd_give_the_offline_auc(client: TestClient, root: Path) -> None:
    loans = generate_sample(3_000, seed=5)  # labels drawn from the sample's known PD
    score_stream(client, loans)
    performance(client, scored=3_000)  # the log holds every loan (written every 0.2 s)
    stored = client.post(
        "/v1/outcomes",
        content=outcomes_csv(loans) + "X9,0,2026-11-30\n",
        headers={"content-type": "text/csv"},
    )
    assert stored.status_code == 200, stored.text
    assert stored.json() == {
        "model": "loan-default",
        "received": 3_001,
        "stored": 3_001,
        "unknown_loans": 1,
        "problems": [],
    }
    report = performance(client, scored=3_000)
    row = report["versions"][0]
    assert row["version"] == 1 and row["with_outcome"] == 3_000
    offline = ModelRegistry(FsspecStorage(str(root))).load("loan-default").report.auc
    assert abs(row["auc"] - offline) < 0.03, (row["auc"], offline)
    assert row["default_rate"] == pytest.approx(loans["loan_status"].mean())
    bands = row["bands"]
    assert [b["band"] for b in bands] == ["low", "medium", "high"]
    assert bands[0]["default_rate"] < bands[1]["default_rate"] < bands[2]["default_rate"]
    assert sum(b["loans"] for b in bands) == 3_000

    again = client.post(
        "/v1/outcomes",
        json={
            "outcomes": [
                {
                    "loan_id": "L0",
                    "defaulted": 1 - int(loans["loan_status"][0]),
                    "observed_on": "2026-12-01",
                }
            ]
        },
    )
    assert again.status_code == 200 and again.json()["unknown_loans"] == 0
    latest = read_outcomes(FsspecStorage(str(root)), "outcomes")
    assert len(latest) == 3_001  # idempotent on the loan id: the latest upload wins
    assert bool(latest.set_index("loan_id").loc["L0", "defaulted"]) != bool(loans["loan_status"][0])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "loan_id,defaulted,observed_on\nA,1,2026-11-30\nB,2,2026-11-30\nC,yes,2026-11-30\n",
            "column 'defaulted': not an outcome of model 'loan-default' version 1 (label "
            "'loan_status'): must be 1, true, yes, y, t (defaulted) or 0, false, no, n, f "
            "(repaid) at row 2 ('2')",
        ),
        (
            "loan_id,defaulted,observed_on\nA,1,2026-11-30\nB,0,30/11/2026\n",
            "column 'observed_on': not an ISO date, e.g. 2026-11-30 at row 2 ('30/11/2026')",
        ),
        (
            "loan_id,defaulted,observed_on\n,1,2026-11-30\n",
            "column 'loan_id': a loan id of 1 to 128 characters at row 1",
        ),
        ("loan_id,defaulted\nA,1\n", "missing required column(s): observed_on"),
        ("loan_id,defaulted,observed_on\n", "no outcomes: the input has a header but no rows"),
    ],
)
def test_bad_outcome_files_are_refused_with_the_row_and_column(
    client: TestClient, body: str, message: str
) -> None:
    answer = client.post("/v1/outcomes", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]["message"]
    bad_json = client.post("/v1/outcomes", json={"outcomes": [{"loan_id": "A", "defaulted": 1}]})
    assert bad_json.status_code == 422
    assert "outcomes.0.observed_on" in bad_json.json()["error"]["message"]


def test_the_loop_closes_from_the_log_to_a_continued_training(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    loans = generate_sample(2_000, seed=6)
    score_stream(client, loans)
    csv = tmp_path / "outcomes.csv"
    csv.write_text(outcomes_csv(loans))
    store = str(root)
    performance(client, scored=2_000)  # the log has every loan
    added = subprocess.run(
        [LOANRISK, "outcomes", "add", str(csv), "--storage", store],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert "2,000 outcomes stored (2,000 rows); 0 name loans" in added.stdout
    window = tmp_path / "window.parquet"
    drift = subprocess.run(
        [LOANRISK, "monitor", "drift", "--storage", store, "--export-window", str(window)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert drift.returncode == 0, drift.stderr
    assert "2,000 loans with outcomes written" in drift.stderr
    exported = pd.read_parquet(window)
    assert len(exported) == 2_000
    assert sorted(exported["loan_status"].unique()) == ["0", "1"]
    processed = subprocess.run(
        [LOANRISK, "data", "process", str(window), "--storage", store, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert processed.returncode == 0, processed.stderr
    dataset = json.loads(processed.stdout)["id"]
    trained = subprocess.run(
        [
            LOANRISK,
            "train",
            "--storage",
            store,
            "--dataset",
            dataset,
            "--continue-from",
            "production",
            "--rounds",
            "10",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr
    version = ModelRegistry(FsspecStorage(store)).load("loan-default", "latest")
    assert version.version == 2 and version.manifest.parent is not None
    assert version.manifest.parent.version == 1
    table = subprocess.run(
        [LOANRISK, "monitor", "performance", "--storage", store],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert table.returncode == 0 and "2,000" in table.stdout


@pytest.fixture(scope="module")
def second_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of the second schema, whose label is a word: positive bad, negative good."""
    path = tmp_path_factory.mktemp("second") / "store"
    storage = FsspecStorage(str(path))
    schema = parse_schema(second_yaml())
    process_dataset(
        validate_frame(second_loans(1_000), schema=schema, mode="train"),
        storage,
        source="second",
        schema=schema,
    )
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return path


def stored_flags(root: Path) -> dict[str, bool]:
    latest = read_outcomes(FsspecStorage(str(root)), "outcomes")
    return {str(k): bool(v) for k, v in zip(latest["loan_id"], latest["defaulted"], strict=True)}


def test_outcomes_are_read_in_the_words_of_the_model_s_label(
    second_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    subprocess.run(["cp", "-r", str(second_root), str(root)], check=True)
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0)
    sent = {
        "A1": "bad",
        "A2": "good",
        "A3": " Bad ",
        "A4": "GOOD",
        "A5": 1,
        "A6": 0,
        "A7": True,
        "A8": False,
        "A9": "1",
        "A10": "false",
        "A11": 1.0,
    }
    expected = {
        "A1": True,
        "A2": False,
        "A3": True,
        "A4": False,
        "A5": True,
        "A6": False,
        "A7": True,
        "A8": False,
        "A9": True,
        "A10": False,
        "A11": True,
    }
    with TestClient(create_app(settings)) as client:
        stored = client.post(
            "/v1/outcomes",
            json={
                "outcomes": [
                    {"loan_id": k, "defaulted": v, "observed_on": "2026-11-30"}
                    for k, v in sent.items()
                ]
            },
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["stored"] == 11
        assert stored_flags(root) == expected

        csv = (
            "loan_id,defaulted,observed_on\nC1,bad,2026-11-30\nC2,good,2026-11-30\n"
            "C3,0,2026-11-30\nC4,TRUE,2026-11-30\n"
        )
        from_csv = client.post("/v1/outcomes", content=csv, headers={"content-type": "text/csv"})
        assert from_csv.status_code == 200, from_csv.text
        assert {k: v for k, v in stored_flags(root).items() if k.startswith("C")} == {
            "C1": True,
            "C2": False,
            "C3": False,
            "C4": True,
        }

        accepted = (
            "must be bad, 1, true, yes, y, t (defaulted) or good, 0, false, no, n, f (repaid)"
        )
        words = "loan_id,defaulted,observed_on\nD1,bad,2026-11-30\nD2,default,2026-11-30\n"
        refused = client.post("/v1/outcomes", content=words, headers={"content-type": "text/csv"})
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert (
            "column 'defaulted': not an outcome of model 'loan-default' version 1 (label "
            f"'outcome'): {accepted} at row 2 ('default')"
        ) in message
        as_json = client.post(
            "/v1/outcomes",
            json={
                "outcomes": [
                    {"loan_id": "D1", "defaulted": "good", "observed_on": "2026-11-30"},
                    {"loan_id": "D2", "defaulted": 2, "observed_on": "2026-11-30"},
                ]
            },
        )
        assert as_json.status_code == 422, as_json.text
        assert f"{accepted} at row 2 ('2')" in as_json.json()["error"]["message"]
        assert as_json.json()["error"]["details"]["issues"][0]["column"] == "defaulted"
        assert "D1" not in stored_flags(root)  # a refused upload stores nothing

    csv_file = tmp_path / "outcomes.csv"
    csv_file.write_text("loan_id,defaulted,observed_on\nE1,good,2026-11-30\nE2,bad,2026-11-30\n")
    added = subprocess.run(
        [LOANRISK, "outcomes", "add", str(csv_file), "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert "2 outcomes stored (2 rows)" in added.stdout
    assert {"E1": False, "E2": True}.items() <= stored_flags(root).items()
    csv_file.write_text("loan_id,defaulted,observed_on\nF1,good,2026-11-30\nF2,paid,2026-11-30\n")
    bad = subprocess.run(
        [LOANRISK, "outcomes", "add", str(csv_file), "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2, bad.stderr
    assert f"{accepted} at row 2 ('paid')" in " ".join(bad.stderr.split())
    assert "F1" not in stored_flags(root)


def test_a_label_without_negative_values_reads_any_other_value_as_repaid() -> None:
    only_positive = Column(name="status", role="label", type="categorical", positive=("bad",))
    values = OutcomeValues.of_label(only_positive, source="model 'm' version 1 (label 'status')")
    frame = pd.DataFrame(
        {
            "loan_id": ["A", "B", "C", "D"],
            "defaulted": ["BAD", "current", "1", "0"],
            "observed_on": "2026-11-30",
        }
    )
    read = parse_outcomes(frame, max_rows=10, values=values)
    assert read["defaulted"].tolist() == [True, False, True, False]  # as its training data reads
    with pytest.raises(InvalidInput, match=r"or any other value \(repaid\) at row 1$"):
        missing = pd.Series([None, "bad", "bad", "bad"], dtype=object)
        parse_outcomes(frame.assign(defaulted=missing), max_rows=10, values=values)
    # A model with no version yet: 1/0 and true/false only.
    with pytest.raises(
        InvalidInput,
        match=r"^2 invalid values: column 'defaulted': must be 1, "
        r".* at rows 1 \('BAD'\), 2 \('current'\)$",
    ):
        parse_outcomes(frame, max_rows=10)


def test_an_unreadable_outcomes_file_is_skipped_and_named() -> None:
    storage = MemoryStorage()
    good = pd.DataFrame(
        {"loan_id": ["a", "b"], "defaulted": [True, False], "observed_on": [date(2026, 12, 1)] * 2}
    )
    store_outcomes(storage, "outcomes", good)
    storage.write_bytes("outcomes/0-broken.parquet", b"PAR1 truncated")
    problems: list[Problem] = []
    latest = read_outcomes(storage, "outcomes", problems=problems)
    assert sorted(latest["loan_id"]) == ["a", "b"]
    assert [(p.kind, p.path) for p in problems] == [("outcome_file", "outcomes/0-broken.parquet")]
    assert len(read_outcomes(storage, "outcomes")) == 2
