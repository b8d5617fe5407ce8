"""The scorecard over the service and the command line: trained through the v1 API and
``loanrisk train --kind scorecard`` (a bad kind refused naming the field), served as the
champion, the canary or the shadow of an XGBoost version, compared with ``loanrisk models
compare``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loanrisk.cli import app as cli
from loanrisk.inference.scorer import Scorer, servable_check
from loanrisk.monitoring.log.reader import read_log
from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage

NAME = "loan-default"


@pytest.fixture(scope="module")
def served(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scorecard storage whose aliases these tests move: ``challenger`` names
    the scorecard (2), ``trees`` the XGBoost version (1)."""
    path = tmp_path_factory.mktemp("served") / "store"
    shutil.copytree(root, path)
    registry = ModelRegistry(FsspecStorage(str(path)), "models")
    check = servable_check(Settings(storage=str(path)))
    registry.promote(NAME, 2, "challenger", check=check)
    registry.promote(NAME, 1, "trees", check=check)
    return path


def client_of(path: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            Settings(
                storage=str(path),
                nthread=1,
                reload_interval=0.2,
                log_flush_seconds=0.2,
                drift_interval=0,
                job_heartbeat=0.2,
                **settings,
            )
        )
    )


@pytest.fixture(scope="module")
def loans(raw_loans: pd.DataFrame) -> list[dict[str, Any]]:
    frame = raw_loans.drop(columns=["loan_status"]).tail(12)
    records: list[dict[str, Any]] = (
        frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    )
    return [{**r, "id": f"S-{i}"} for i, r in enumerate(records)]


def expected_scores(path: Path, loans: list[dict[str, Any]]) -> list[int]:
    scorer = Scorer(ModelRegistry(FsspecStorage(str(path)), "models").load(NAME, 2))
    return [r.score for r in scorer.score_records(loans).results]


def shadow_rows(path: Path) -> pd.DataFrame:
    """The prediction log's rows the scorecard (version 2) scored as the shadow."""
    storage = FsspecStorage(str(path))
    log = read_log(storage, storage.resolve("prediction-log"), model=NAME)
    return log[(log["role"] == "shadow") & (log["version"] == 2)]


def wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout} s")


@pytest.mark.slow
def test_the_scorecard_serves_as_champion_and_canary_and_shadow(
    served: Path, loans: list[dict[str, Any]]
) -> None:
    expected = expected_scores(served, loans)
    # The canary: every loan (100%) answered by the scorecard, the champion being XGBoost.
    with client_of(served, canary="challenger:100") as client:
        answer = client.post("/v1/predict", json={"records": loans, "explain": True})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert {r["version"] for r in results} == {2}
        assert [r["score"] for r in results] == expected
        assert all(r["reasons"] and "points" in r["reasons"][0] for r in results)
    # The shadow: XGBoost answers, the scorecard scores the same loans off the answer.
    with client_of(served, shadow_alias="challenger") as client:
        answer = client.post("/v1/predict", json={"records": loans})
        assert {r["version"] for r in answer.json()["results"]} == {1}
        wait_for(lambda: len(shadow_rows(served)) == len(loans), "shadow rows on the log")
    # The champion: production moved to the scorecard, over HTTP, and one loan scored.
    with client_of(served) as client:
        moved = client.put(f"/v1/models/{NAME}/aliases/production", json={"version": 2})
        assert moved.status_code == 200, moved.text
        one = client.post("/v1/predict", json=loans[0])
        assert one.status_code == 200, one.text
        body = one.json()["results"][0]
        assert (body["version"], body["score"]) == (2, expected[0])
        assert set(body) >= {"probability", "label", "band", "grade", "warnings", "score"}
        many = client.post("/v1/predict", json={"records": loans}).json()
        assert many["model"] == {"name": NAME, "version": 2, "backend": "scorecard"}
        assert [r["score"] for r in many["results"]] == expected
    assert sorted(shadow_rows(served)["score"].astype(int)) == sorted(expected)


@pytest.mark.slow
def test_the_api_trains_a_scorecard_and_refuses_a_bad_kind_naming_the_field(
    served: Path,
) -> None:
    with client_of(served) as client:
        refused = client.post(f"/v1/models/{NAME}/versions", json={"kind": "forest"})
        assert refused.status_code == 422, refused.text
        assert "kind" in str(refused.json()["error"]["details"])
        refused = client.post(
            f"/v1/models/{NAME}/versions", json={"kind": "scorecard", "calibration": "platt"}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"]["field"] == "calibration"
        accepted = client.post(
            f"/v1/models/{NAME}/versions", json={"kind": "scorecard", "promote": False}
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["location"]
        wait_for(
            lambda: client.get(location).json()["state"] in ("succeeded", "failed"), "job", 120
        )
        job = client.get(location).json()
        assert job["state"] == "succeeded", job
        assert job["result"]["manifest"]["kind"] == "scorecard"
    cli_refusal = CliRunner().invoke(cli, ["train", "--kind", "forest", "--storage", str(served)])
    assert cli_refusal.exit_code == 2 and "--kind" in cli_refusal.output


def test_models_compare_sets_the_scorecard_beside_the_trees(root: Path) -> None:
    shown = CliRunner().invoke(
        cli,
        ["models", "compare", f"{NAME}@1", f"{NAME}@2", "--storage", str(root)],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert "AUC 95% (DeLong)" in shown.output and "AUC difference (b - a)" in shown.output


@pytest.fixture(scope="module")
def cli_trained(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store"
    shutil.copytree(root, path)
    return path


def test_loanrisk_train_kind_scorecard_publishes_a_scorecard(cli_trained: Path) -> None:
    shown = CliRunner().invoke(
        cli,
        ["train", "--kind", "scorecard", "--pdo", "40", "--storage", str(cli_trained)],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert "scorecard" in shown.output and "base points" in shown.output
    loaded = ModelRegistry(FsspecStorage(str(cli_trained)), "models").load(NAME, 3)
    assert loaded.kind == "scorecard" and loaded.scorecard is not None
    assert loaded.scorecard.scaling.pdo == 40 == loaded.scaling.pdo
