"""The backtest of a window of the prediction log, through the real app (issue 27's "Done
when"): a small model trained and served, loans scored through ``/v1/predict`` and logged,
outcomes posted to ``/v1/outcomes``, the backtest read from ``/v1/models/{name}/backtest``.
Outcomes drawn from the model's own PDs light no grade red; one grade's default rate tripled
lights that grade red and no other; the p-values the API reports are scipy's from the N, D
and mean PD it reports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from loanrisk.data.process import process_dataset
from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log.reader import read_log
from loanrisk.schema.validate import Validated
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import LABEL
from tests.monitoring.test_drift import as_records

LOANS = 4_000
URL = "/v1/models/loan-default/backtest"


@dataclass(frozen=True)
class Served:
    client: TestClient
    #: The logged loans: loan_id, probability, grade, time.
    log: pd.DataFrame
    root: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_loans: Validated) -> Iterator[Served]:
    """A model trained on the public dataset, served; LOANS of its loans scored and logged."""
    root = tmp_path_factory.mktemp("backtest") / "store"
    storage = FsspecStorage(str(root))
    process_dataset(real_loans, storage, source="public")
    run_training(TrainingRequest(rounds=40), storage, nthread=1)
    run_training(TrainingRequest(rounds=5, promote=False), storage, nthread=1)  # version 2
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0)
    loans = real_loans.frame.sample(LOANS, random_state=9).drop(columns=[LABEL])
    records = as_records(loans)
    with TestClient(create_app(settings)) as client:
        for start in range(0, LOANS, 1_000):
            body = [
                {**r, "id": f"L{start + i}"} for i, r in enumerate(records[start : start + 1_000])
            ]
            answer = client.post("/v1/predict", json=body)
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 20
        while True:  # the log is written every 0.2 s
            log = read_log(storage, "prediction-log", model="loan-default")
            if len(log) == LOANS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(log) == LOANS
        yield Served(client, log[["loan_id", "probability", "grade", "time"]], root)


def post_outcomes(client: TestClient, log: pd.DataFrame, defaulted: np.ndarray) -> None:
    """Outcomes of every logged loan, observed 200 days after scoring; a default dated."""
    scored = pd.to_datetime(log["time"], utc=True)
    seen = scored + timedelta(days=200)
    rng = np.random.default_rng(1)
    when = scored + pd.to_timedelta(rng.integers(1, 200, len(log)), unit="D")
    frame = pd.DataFrame(
        {
            "loan_id": log["loan_id"],
            "defaulted": defaulted.astype(int),
            "observed_on": seen.dt.strftime("%Y-%m-%d"),
            "defaulted_at": np.where(defaulted, when.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), ""),
        }
    )
    answer = client.post(
        "/v1/outcomes", content=frame.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text


def backtest(client: TestClient, **params: str) -> dict[str, Any]:
    answer = client.get(URL, params={"vintages": "true", **params})
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


def lights(report: dict[str, Any]) -> dict[str, str]:
    return {g["grade"]: g["light"] for g in report["grades"] if g["loans"]}


def test_outcomes_drawn_from_the_model_s_pds_light_no_grade_red(served: Served) -> None:
    rng = np.random.default_rng(2)
    drawn = rng.random(LOANS) < served.log["probability"].to_numpy()
    post_outcomes(served.client, served.log, drawn)
    report = backtest(served.client)
    assert report["rows"] == report["scored"] == LOANS
    assert report["model"] == "loan-default" and report["version"] == 1
    assert set(lights(report).values()) <= {"green", "yellow"}, lights(report)
    assert len(lights(report)) >= 4  # the loans spread over grades
    assert sum(g["loans"] for g in report["grades"]) == LOANS
    assert sum(g["defaults"] for g in report["grades"]) == int(drawn.sum())
    assert report["grade_mismatches"] == 0  # the logged grade is the scale's
    assert report["problems"] == []
    cohorts = report["vintages"]["cohorts"]
    assert sum(c["loans"] for c in cohorts) == LOANS
    assert report["vintages"]["undated_defaults"] == 0


def test_one_grade_s_default_rate_tripled_lights_that_grade_red_and_no_other(
    served: Served,
) -> None:
    log = served.log
    counts = log.groupby("grade")["probability"].agg(["size", "mean"])
    target = counts[counts["mean"] < 0.25]["size"].idxmax()
    p = log["probability"].to_numpy()
    p = np.where(log["grade"] == target, np.minimum(3 * p, 1.0), p)
    rng = np.random.default_rng(3)
    post_outcomes(served.client, log, rng.random(LOANS) < p)
    found = lights(backtest(served.client))
    assert found[target] == "red", found
    assert [g for g, light in found.items() if light == "red"] == [target]


def test_the_p_values_reported_are_scipy_s_from_the_reported_counts(served: Served) -> None:
    rng = np.random.default_rng(4)
    post_outcomes(served.client, served.log, rng.random(LOANS) < served.log["probability"])
    report = backtest(served.client)
    statistic = 0.0
    for g in report["grades"]:
        n, d, pd_ = g["loans"], g["defaults"], g["mean_pd"]
        if not n:
            assert g["jeffreys_p"] is None
            continue
        assert g["jeffreys_p"] == pytest.approx(stats.beta.cdf(pd_, d + 0.5, n - d + 0.5), abs=1e-9)
        assert g["binomial_p"] == pytest.approx(stats.binom.sf(d - 1, n, pd_), abs=1e-9)
        statistic += (d - n * pd_) ** 2 / (n * pd_ * (1 - pd_))
    found = report["portfolio"]["hosmer_lemeshow"]
    assert found["statistic"] == pytest.approx(statistic, rel=1e-9)
    assert found["p"] == pytest.approx(stats.chi2.sf(statistic, found["df"]), abs=1e-9)


def test_a_segment_is_a_categorical_attribute_and_is_adjusted(served: Served) -> None:
    rng = np.random.default_rng(5)
    post_outcomes(served.client, served.log, rng.random(LOANS) < served.log["probability"])
    report = backtest(served.client, segment="loan_intent", vintages="false")
    segments = report["segments"]
    assert segments["attribute"] == "loan_intent"
    assert segments["adjustment"] == "benjamini-hochberg"
    assert sum(s["backtest"]["rows"] for s in segments["segments"]) == LOANS
    assert report["vintages"] is None
    for params in ({"segment": "loan_amnt"}, {"segment": "nothing"}, {"vintages": "yes"}):
        answer = served.client.get(URL, params=params)
        assert answer.status_code == 422, answer.text
        assert next(iter(params)) in answer.text


def test_a_migration_between_windows_pairs_the_loans_scored_in_both(served: Served) -> None:
    moments = pd.to_datetime(served.log["time"], utc=True)
    middle = moments.min() + (moments.max() - moments.min()) / 2
    report = backtest(
        served.client,
        previous_since=(moments.min() - timedelta(seconds=1)).isoformat(),
        previous_until=middle.isoformat(),
        since=middle.isoformat(),
        vintages="false",
    )
    moved = report["migration"]
    assert moved["kind"] == "windows"
    assert sum(moved["loans"]) == 0  # each loan was scored once: none is in both windows
    answer = served.client.get(URL, params={"previous_since": middle.isoformat()})
    assert answer.status_code == 422 and "previous_until" in answer.text


def test_outcome_dates_that_cannot_be_read_are_refused_naming_the_column(
    served: Served,
) -> None:
    body = "loan_id,defaulted,observed_on,defaulted_at\nL0,1,2026-11-30,30/11/2026\n"
    answer = served.client.post("/v1/outcomes", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 422 and "defaulted_at" in answer.text
    body = "loan_id,defaulted,observed_on,defaulted_at\nL0,0,2026-11-30,2026-11-01\n"
    answer = served.client.post("/v1/outcomes", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 422 and "did not default" in answer.text
    now = datetime.now(UTC)
    assert now.year >= 2026


def test_the_cli_prints_the_lights_and_saves_the_report(served: Served) -> None:
    from typer.testing import CliRunner

    from loanrisk.cli import app

    rng = np.random.default_rng(6)
    post_outcomes(served.client, served.log, rng.random(LOANS) < served.log["probability"])
    storage = ["--storage", str(served.root)]
    shown = CliRunner().invoke(
        app,
        ["monitor", "backtest", "--model", "loan-default@production", *storage],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert "Jeffreys p" in shown.output and "portfolio" in shown.output
    assert "Hosmer-Lemeshow" in shown.output
    assert "dated by the time scored, by count" in shown.output
    saved = CliRunner().invoke(app, ["monitor", "backtest", "--json", "--save", *storage])
    assert saved.exit_code == 0, saved.output
    (stored,) = (served.root / "prediction-log" / "reports").glob("backtest-loan-default-v1-*")
    report = json.loads(stored.read_text())
    assert report["rows"] == LOANS and {"grades", "portfolio"} <= set(report)
    bad = CliRunner().invoke(app, ["monitor", "backtest", "--segment", "loan_amnt", *storage])
    assert bad.exit_code == 2 and "segment" in bad.output


def test_the_gauge_holds_each_grade_s_light(served: Served) -> None:
    from loanrisk.serving.metrics import Metrics
    from loanrisk.validation.window import BacktestReport

    log = served.log
    p = np.where(
        log["grade"] == log["grade"].mode()[0],
        np.minimum(3 * log["probability"], 1),
        log["probability"],
    )
    post_outcomes(served.client, log, np.random.default_rng(7).random(LOANS) < p)
    report = BacktestReport.model_validate(backtest(served.client, vintages="false"))
    metrics = Metrics()
    metrics.backtest(report)
    text = metrics.exposition().decode()
    for grade in report.grades:
        line = f'loanrisk_backtest_light{{grade="{grade.grade}",model="loan-default",version="1"}}'
        if grade.light is None:
            assert line not in text
        else:
            value = {"green": 0, "yellow": 1, "red": 2}[grade.light]
            assert f"{line} {value:.1f}" in text


def test_the_console_page_shows_the_lights_and_the_vintages(served: Served) -> None:
    rng = np.random.default_rng(8)
    post_outcomes(served.client, served.log, rng.random(LOANS) < served.log["probability"])
    page = served.client.get("/console/backtest")
    assert page.status_code == 200, page.text
    assert 'id="chart-vintages"' in page.text
    assert page.text.count('class="text light-') == 13  # twelve grades and the portfolio
    assert served.client.get("/console/backtest?days=0").status_code == 422
    card = served.client.get("/v1/models/loan-default/versions/1/card").text
    outcomes = card[card.index('<section id="outcomes">') :]
    assert 'id="chart-vintages"' in outcomes and "chart-vintages-amount" not in outcomes
    assert "the time they were scored (the schema declares no origination" in outcomes


def write_log(root: Path, day: datetime, pds: dict[str, float], *, version: int = 1) -> None:
    """Rows of ``version`` scored on ``day`` (outside the other tests' windows)."""
    rows = [
        {
            "time": day,
            "request_id": f"r-{day:%m}",
            "loan_id": loan,
            "model": "loan-default",
            "version": version,
            "backend": "xgboost",
            "source": "test",
            "features": "{}",
            "probability": pd_,
            "label": False,
            "band": "low",
            "role": "champion",
        }
        for loan, pd_ in pds.items()
    ]
    folder = root / "prediction-log" / "model=loan-default" / f"day={day:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=COLUMNS)
    pq.write_table(table, folder / f"hand-v{version}.parquet")


def test_a_migration_between_windows_counts_the_loans_scored_in_both(served: Served) -> None:
    january, february = datetime(2020, 1, 10, tzinfo=UTC), datetime(2020, 2, 10, tzinfo=UTC)
    # Grade 10 is [0.10, 0.20), 11 [0.20, 0.30) on the default scale.
    write_log(served.root, january, {"M1": 0.15, "M2": 0.15, "M3": 0.25, "M4": 0.15})
    write_log(served.root, february, {"M1": 0.15, "M2": 0.25, "M3": 0.25, "M5": 0.15})
    report = backtest(
        served.client,
        since="2020-02-01T00:00:00Z",
        until="2020-03-01T00:00:00Z",
        previous_since="2020-01-01T00:00:00Z",
        previous_until="2020-02-01T00:00:00Z",
        vintages="false",
    )
    moved = report["migration"]
    assert moved["kind"] == "windows" and not moved["sampled"]
    grades = moved["grades"]
    ten, eleven = grades.index("10"), grades.index("11")
    assert moved["counts"][ten][ten] == 1 and moved["counts"][ten][eleven] == 1
    assert moved["counts"][eleven][eleven] == 1 and sum(moved["loans"]) == 3
    assert report["scored"] == 4 and report["rows"] == 0  # no outcomes for these loans


def test_a_migration_between_versions_counts_the_loans_both_scored(served: Served) -> None:
    march = datetime(2020, 3, 10, tzinfo=UTC)
    write_log(served.root, march, {"V1": 0.15, "V2": 0.15, "V3": 0.25})
    write_log(served.root, march, {"V1": 0.25, "V2": 0.15, "V4": 0.15}, version=2)
    window = {"since": "2020-03-01T00:00:00Z", "until": "2020-04-01T00:00:00Z"}
    report = backtest(served.client, against="2", vintages="false", **window)
    moved = report["migration"]
    assert (moved["kind"], moved["initial"], moved["final"]) == (
        "versions",
        "version 1",
        "version 2",
    )
    ten, eleven = moved["grades"].index("10"), moved["grades"].index("11")
    assert moved["counts"][ten][eleven] == 1 and moved["counts"][ten][ten] == 1
    assert sum(moved["loans"]) == 2 and moved["upper_mwb"] is not None
    both = {"against": "2", "previous_since": "2020-01-01", "previous_until": "2020-02-01"}
    answer = served.client.get(URL, params=both)
    assert answer.status_code == 422 and "against" in answer.text


def test_the_gauges_refresh_on_their_own_interval_not_the_drift_one(served: Served) -> None:
    """``backtest_interval`` alone drives the light gauges (``drift_interval`` 0 here): the
    refresh runs in a worker thread while /metrics keeps answering."""
    post_outcomes(served.client, served.log, np.zeros(LOANS, dtype=bool))
    settings = Settings(
        storage=str(served.root), nthread=1, drift_interval=0, backtest_interval=0.2
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while "loanrisk_backtest_light{" not in (text := client.get("/metrics").text):
            assert time.monotonic() < deadline, "the backtest gauges were never set"
            time.sleep(0.1)
        assert "loanrisk_psi{" not in text
    off = Settings(storage=str(served.root), nthread=1, drift_interval=0, backtest_interval=0)
    with TestClient(create_app(off)) as client:
        time.sleep(0.5)
        assert "loanrisk_backtest_light{" not in client.get("/metrics").text
