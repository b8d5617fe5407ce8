"""Drift: PSI/CSI held to an independent computation, a stable stream against a shifted one,
and the report through the CLI, the real app and its Prometheus gauges."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.drift import EPSILON, psi
from loanrisk.monitoring.log.writer import PredictionLog
from loanrisk.monitoring.profile import SCORE_SAMPLE_ROWS, Profile, numeric_bins
from loanrisk.monitoring.reports import drift_by_day, drift_for, version_profile, window
from loanrisk.registry import ModelRegistry
from loanrisk.registry.models import PROFILE_FILE
from loanrisk.reporting.charts import drift_over_time
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, Storage
from loanrisk.training.job import TrainingRequest, run_training
from tests.service.test_servers import LOANRISK


def independent_psi(expected: list[int], actual: list[int]) -> float:
    """The textbook formula, written out again: shares floored at the epsilon."""
    total_e, total_a = sum(expected), sum(actual)
    out = 0.0
    for e, a in zip(expected, actual, strict=True):
        pe, pa = max(e / total_e, EPSILON), max(a / total_a, EPSILON)
        out += (pa - pe) * math.log(pa / pe)
    return out


def test_psi_matches_an_independent_computation_on_the_same_bins() -> None:
    rng = np.random.default_rng(0)
    bins = numeric_bins(rng.normal(0, 1, 10_000))
    assert len(bins.edges) == 9 and sum(bins.counts) == 10_000
    shifted = bins.count(np.append(rng.normal(0.5, 1.2, 5_000), [np.nan] * 50))
    assert shifted[-1] == 50  # missing values: their own bin
    assert psi(bins.counts, shifted) == pytest.approx(independent_psi(bins.counts, list(shifted)))
    assert psi([10, 0, 5], [0, 10, 5]) == pytest.approx(independent_psi([10, 0, 5], [0, 10, 5]))
    assert psi(bins.counts, bins.counts) == 0.0


def shifted(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Income scaled by 0.6 and half the grades moved to E, F or G."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["person_income"] = (out["person_income"] * 0.6).round()
    move = rng.random(len(out)) < 0.5
    out.loc[move, "loan_grade"] = rng.choice(["E", "F", "G"], int(move.sum()))
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(6_000, seed=0)), storage, source="sample")
    run_training(TrainingRequest(rounds=30), storage, nthread=1)
    return path


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON loans: a missing value is null."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def log_stream(storage: Storage, frame: pd.DataFrame) -> None:
    scorer = Scorer(ModelRegistry(storage).load("loan-default", "production"))
    log = PredictionLog(storage, "prediction-log", flush_seconds=60)
    records = as_records(frame.drop(columns=["loan_status"]))
    log.scored_records(scorer, records, scorer.score_records(records), source="test")
    log.close()


def test_a_stable_stream_is_stable_and_a_shifted_one_shows_where(root: Path) -> None:
    storage = FsspecStorage(str(root))
    registry = ModelRegistry(storage)
    log_stream(storage, generate_sample(4_000, seed=1))
    stable = drift_for(storage, registry, "prediction-log", "loan-default", "production")
    assert stable.rows == 4_000 and stable.rejected == 0
    assert stable.probability is not None and stable.probability.index < 0.1
    assert max(f.index for f in stable.features) < 0.1, [(f.name, f.index) for f in stable.features]

    later = datetime.now(UTC)
    time.sleep(0.01)
    log_stream(storage, shifted(generate_sample(4_000, seed=2)))
    moved = drift_for(
        storage,
        registry,
        "prediction-log",
        "loan-default",
        "production",
        since=later,
        until=datetime.now(UTC) + timedelta(seconds=1),
    )
    assert moved.rows == 4_000
    over = {f.name for f in moved.features if f.index > 0.25}
    assert over == {"person_income", "loan_grade"}, [(f.name, f.index) for f in moved.features]
    assert [f.name for f in moved.features[:2]] == sorted(
        over, key=lambda n: -next(f.index for f in moved.features if f.name == n)
    )
    assert moved.probability is not None and moved.probability.index > 0.1
    doc = moved.model_dump(mode="json")
    grade = next(f for f in doc["features"] if f["name"] == "loan_grade")
    assert grade["band"] == "shift"
    assert [b["bin"] for b in grade["bins"]][-2:] == ["(other)", "(missing)"]
    assert sum(b["actual"] for b in grade["bins"]) == pytest.approx(1.0)


def test_past_monitor_max_rows_drift_comes_from_a_sample_and_still_counts_every_loan(
    root: Path,
) -> None:
    storage = FsspecStorage(str(root))
    registry = ModelRegistry(storage)
    log_stream(storage, shifted(generate_sample(4_000, seed=5)))
    full = drift_for(storage, registry, "prediction-log", "loan-default", "production")
    part = drift_for(
        storage, registry, "prediction-log", "loan-default", "production", max_rows=1_000
    )
    assert full.sampled is None and full.rows == part.rows == 4_000
    assert part.sampled is not None and 500 <= part.sampled <= 1_000
    assert part.model_dump(mode="json")["sampled"] == part.sampled
    indices = {f.name: f.index for f in full.features}
    assert {f.name for f in part.features if f.index > 0.25} == {
        f for f, index in indices.items() if index > 0.25
    }  # the same shifts found, from a quarter of the loans
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = drift_by_day(
        storage,
        registry,
        "prediction-log",
        "loan-default",
        "production",
        since=today,
        until=today + timedelta(days=1),
        max_rows=1_000,
    )
    assert days[-1].rows == 4_000 and days[-1].sampled == part.sampled


def test_a_window_ending_at_the_start_of_time_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidInput, match="until must be after") as refused:
        window(None, datetime(1, 1, 1, tzinfo=UTC))  # found by the API fuzzer: it was a 500
    assert refused.value.details == {"field": "until"}
    start, end = window(None, datetime(1, 3, 1, tzinfo=UTC))
    assert (end - start).days == 30


def test_drift_by_day_splits_the_window_into_utc_days(root: Path) -> None:
    storage = FsspecStorage(str(root))
    registry = ModelRegistry(storage)
    log_stream(storage, shifted(generate_sample(2_000, seed=4)))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"since": today - timedelta(days=2), "until": today + timedelta(days=1)}
    days = drift_by_day(storage, registry, "prediction-log", "loan-default", "production", **window)
    assert [d.model_dump(mode="json")["since"][:10] for d in days] == [
        (today - timedelta(days=n)).date().isoformat() for n in (2, 1, 0)
    ]
    assert [d.rows for d in days] == [0, 0, 2_000]
    alone = drift_for(
        storage,
        registry,
        "prediction-log",
        "loan-default",
        "production",
        since=today,
        until=today + timedelta(days=1),
    ).model_dump(mode="json")
    last = days[-1].model_dump(mode="json")
    assert last["features"] == alone["features"] and last["probability"] == alone["probability"]
    chart = drift_over_time(days)
    assert chart is not None and [row[:2] for row in chart.rows] == [
        (today.date().isoformat(), "2,000")
    ]
    assert chart.columns[:3] == ("Day", "Loans", "probability")
    worst = max(alone["features"], key=lambda f: f["index"])
    assert chart.columns[3] == worst["name"] and chart.rows[0][3] == f"{worst['index']:,.3f}"
    assert drift_over_time(days[:2]) is None  # no loans: nothing to draw


def test_a_profile_written_when_score_meant_the_probability_still_reads(root: Path) -> None:
    """Profiles stored before "score" meant points name the probability's bins ``score``."""
    registry = ModelRegistry(FsspecStorage(str(root)))
    stored = json.loads(registry.file("loan-default", 1, PROFILE_FILE) or b"")
    old = {k: v for k, v in stored.items() if k not in ("probability", "probability_rows")}
    old |= {"score": stored["probability"], "score_rows": stored["probability_rows"]}
    assert Profile.model_validate(old) == Profile.model_validate(stored)
    assert "score" not in Profile.model_validate(old).model_dump()


def test_a_version_without_a_profile_gets_one_from_its_dataset(root: Path) -> None:
    storage = FsspecStorage(str(root))
    registry = ModelRegistry(storage)
    model = registry.load("loan-default", "production")
    stored = Profile.model_validate_json(registry.file("loan-default", 1, PROFILE_FILE) or b"")
    bare = registry.publish(
        "bare",
        booster=model.booster,
        spec=model.spec,
        report={},
        metadata={"dataset": model.manifest.dataset},
    )
    assert PROFILE_FILE not in bare.files
    made = version_profile(registry, registry.load("bare", bare.version))
    assert made == stored


def test_a_version_without_a_profile_reads_only_the_sample_of_a_large_dataset(
    tmp_path: Path,
) -> None:
    """Past SCORE_SAMPLE_ROWS training rows, the profile made on demand reads only the
    sampled rows, and equals the one the training stored."""
    storage = FsspecStorage(str(tmp_path))
    loans = validate_frame(generate_sample(3_000, seed=0))
    process_dataset(loans, storage, source="sample", size=140_000)
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    registry = ModelRegistry(storage)
    model = registry.load("loan-default", 1)
    bare = registry.publish(
        "bare",
        booster=model.booster,
        spec=model.spec,
        report={},
        metadata={"dataset": model.manifest.dataset},
    )

    def whole(*args: object) -> None:
        raise AssertionError("the whole training split was read")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatasetCatalogue, "load_split", whole)
        made = version_profile(registry, registry.load("bare", bare.version))
    assert made == Profile.model_validate_json(
        registry.file("loan-default", 1, PROFILE_FILE) or b""
    )
    assert made.rows == SCORE_SAMPLE_ROWS


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2, drift_interval=0.3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_service_reports_drift_and_sets_the_gauges(client: TestClient, root: Path) -> None:
    loans = shifted(generate_sample(500, seed=3)).drop(columns=["loan_status"])
    answer = client.post("/v1/predict", json=as_records(loans))
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 20
    while 'loanrisk_psi{feature="loan_grade"' not in (metrics := client.get("/metrics").text):
        assert time.monotonic() < deadline, "the gauges were never set"
        time.sleep(0.2)
    line = next(
        x for x in metrics.splitlines() if x.startswith('loanrisk_psi{feature="loan_grade"')
    )
    assert float(line.rsplit(" ", 1)[1]) > 0.25
    # the PD's entry is "probability": "score" means points (docs/scorecard.md)
    assert 'loanrisk_psi{feature="probability"' in metrics
    assert 'loanrisk_psi{feature="score"' not in metrics
    report = client.get("/v1/models/loan-default/drift").json()
    assert report["rows"] == 500 and report["version"] == 1
    assert report["probability"]["name"] == "probability" and "score" not in report
    assert report["features"][0]["name"] in ("person_income", "loan_grade")
    assert client.get("/v1/models/loan-default/drift?since=tomorrow").status_code == 422
    empty = client.get("/v1/models/loan-default/drift?until=2020-01-01T00:00:00").json()
    assert empty["rows"] == 0 and empty["probability"] is None
    assert client.get("/v1/models/nope/drift").status_code == 404


def test_the_cli_prints_the_worst_features_first(root: Path) -> None:
    storage = FsspecStorage(str(root))
    log_stream(storage, shifted(generate_sample(2_000, seed=4)))
    table = subprocess.run(
        [LOANRISK, "monitor", "drift", "--storage", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert table.returncode == 0, table.stderr
    lines = [x for x in table.stdout.splitlines() if "│" in x]
    assert "probability (PSI)" in lines[0]
    assert any(name in lines[1] for name in ("person_income", "loan_grade"))
    done = subprocess.run(
        [LOANRISK, "monitor", "drift", "--storage", str(root), "--json", "--save"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["rows"] == 2_000 and doc["epsilon"] == EPSILON
    (stored,) = (root / "prediction-log" / "reports").glob("drift-loan-default-v1-*.json")
    assert json.loads(stored.read_text()) == doc  # what the daily CronJob keeps
    bad = subprocess.run(
        [LOANRISK, "monitor", "drift", "--storage", str(root), "--since", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "--since: 'x' is not an ISO date" in bad.stderr
