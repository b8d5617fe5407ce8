"""Champion and challenger through the real app: the shadow scores every request and is
logged beside the champion, the canary answers its sticky share, a comparison matches values
computed here independently, and a guarded promotion is refused or allowed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.routing import CanaryRule, canary_bucket
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log.reader import read_log
from loanrisk.registry import ModelRegistry
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN, LABEL

ADMIN_KEY = "alice=admin:" + "a" * 24
SCORE_KEY = "score:" + "s" * 24
ADMIN = {"Authorization": "Bearer " + "a" * 24}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 (production, 10 rounds), 2 (a better challenger, 40 rounds) and 3 (a much
    worse one: 1 round of depth 1), on one dataset."""
    path = tmp_path_factory.mktemp("cc") / "store"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(4_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=10), storage, nthread=1)
    run_training(TrainingRequest(rounds=40, promote=False), storage, nthread=1)
    run_training(
        TrainingRequest(rounds=1, params={"max_depth": 1}, promote=False), storage, nthread=1
    )
    ModelRegistry(storage, "models").promote("loan-default", 2, "challenger")
    return path


@pytest.fixture
def root(stored: Path, tmp_path: Path) -> Path:
    """A fresh copy of the stored models for each test (they move aliases and log)."""
    copy = tmp_path / "store"
    subprocess.run(["cp", "-r", str(stored), str(copy)], check=True)
    return copy


def app_client(root: Path, **settings: Any) -> TestClient:
    return TestClient(
        create_app(
            Settings(
                storage=str(root),
                nthread=1,
                reload_interval=0.2,
                log_flush_seconds=0.2,
                drift_interval=0,
                api_keys=(ADMIN_KEY, SCORE_KEY),
                **settings,
            )
        )
    )


def loan(i: int, **changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_LOAN, "id": f"L-{i}", "loan_amnt": 1_000 + 37 * i, **changes}


def metric(client: TestClient, prefix: str) -> float:
    lines = [x for x in client.get("/metrics").text.splitlines() if x.startswith(prefix)]
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines)


def wait_for(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def scorer(root: Path, version: int) -> Scorer:
    return Scorer(ModelRegistry(FsspecStorage(str(root)), "models").load("loan-default", version))


def logged(root: Path) -> pd.DataFrame:
    storage = FsspecStorage(str(root))
    return read_log(storage, storage.resolve("prediction-log"), model="loan-default")


# -- shadow ----------------------------------------------------------------------------------


def test_the_shadow_scores_every_request_off_the_answer_and_is_logged_beside_it(
    root: Path,
) -> None:
    loans = [loan(i) for i in range(6)]
    csv = pd.DataFrame([loan(i) for i in range(6, 16)]).to_csv(index=False)
    with app_client(root, prediction_log=False) as plain:
        expected_json = plain.post("/v1/predict", json={"records": loans}, headers=ADMIN).json()
    with app_client(root, shadow_alias="challenger") as client:
        single = client.post("/v1/predict", json=loans[0], headers=ADMIN)
        many = client.post("/v1/predict", json={"records": loans}, headers=ADMIN)
        body = client.post(
            "/v1/predict", content=csv, headers={**ADMIN, "Content-Type": "text/csv"}
        )
        reference = client.post(
            "/predict",
            headers=ADMIN,
            json={
                "sample": loans[:2],
                "backend": "local",
                "local_model_path": "models",
                "model_name": "loan-default",
            },
        )
        for answer in (single, many, body, reference):
            assert answer.status_code == 200, answer.text
        # The champion answered, exactly as without a shadow.
        assert many.json()["results"] == expected_json["results"]
        assert {r["version"] for r in many.json()["results"]} == {1}
        assert body.headers["x-loanrisk-model-version"] == "1"
        assert reference.json()["model"]["version"] == 1
        wait_for(
            lambda: metric(client, 'loanrisk_shadow_rows_total{outcome="scored"}') == 19,
            "the shadow scored every loan",
        )
        assert (
            metric(
                client,
                'loanrisk_predictions_total{label="default",model="loan-default",role="shadow"',
            )
            + metric(
                client,
                'loanrisk_predictions_total{label="non_default",model="loan-default",role="shadow"',
            )
            == 19
        )
        text = client.get("/metrics").text
        assert 'backend="onedal",model="loan-default",role="shadow",version="2"} 1.0' in text
    log = logged(root)
    champion, shadow = log[log["role"] == "champion"], log[log["role"] == "shadow"]
    assert len(champion) == len(shadow) == 19
    assert set(champion["version"]) == {1} and set(shadow["version"]) == {2}
    pairs = champion.merge(shadow, on=["request_id", "loan_id"], suffixes=("_c", "_s"))
    assert len(pairs) == 19  # the same request id and loan id on both roles
    expected = scorer(root, 2).score_records([loan(i) for i in range(16)]).results
    by_id = {f"L-{i}": r.probability for i, r in enumerate(expected)}
    for row in pairs.itertuples():
        assert row.probability_s == pytest.approx(by_id[row.loan_id], abs=1e-6)


def test_a_shadow_that_raises_or_refuses_never_reaches_the_caller(root: Path) -> None:
    # A challenger of another schema refuses the champion's loans (JSON: each loan; CSV:
    # the missing column fails the chunk): counted, and the caller's answers are unchanged.
    loans = [loan(i) for i in range(4)]
    with app_client(root, shadow_alias="challenger") as client:
        storage = FsspecStorage(str(root))
        registry = ModelRegistry(storage, "models")
        other = registry.load("loan-default", 2)
        doc = other.schema.model_dump(mode="json", exclude_none=True)
        for column in doc["columns"]:
            if column["name"] == "loan_amnt":
                column["name"] = "amount"
        odd = registry.publish(
            "loan-default",
            booster=other.booster,
            spec=other.spec,
            report=other.report,
            metadata={},
            schema=LoanSchema.model_validate(doc),
        )
        registry.promote("loan-default", odd.version, "challenger")
        wait_for(
            lambda: 'role="shadow",version="4"} 1.0' in client.get("/metrics").text,
            "the shadow follows its alias",
        )
        answer = client.post("/v1/predict", json={"records": loans}, headers=ADMIN)
        csv = client.post(
            "/v1/predict",
            content=pd.DataFrame(loans).to_csv(index=False),
            headers={**ADMIN, "Content-Type": "text/csv"},
        )
        assert answer.status_code == csv.status_code == 200
        assert [r["version"] for r in answer.json()["results"]] == [1] * 4
        wait_for(
            lambda: metric(client, 'loanrisk_shadow_rows_total{outcome="refused"}') == 4,
            "the JSON loans counted refused",
        )
        wait_for(
            lambda: metric(client, 'loanrisk_shadow_rows_total{outcome="failed"}') == 4,
            "the CSV chunk counted failed",
        )


def test_retiring_the_challenger_stops_the_shadow_and_a_rollback_brings_it_back(
    root: Path,
) -> None:
    with app_client(root, shadow_alias="challenger") as client:
        retired = client.post(
            "/v1/models/loan-default/aliases/challenger/retire",
            json={"reason": "worse on recent loans"},
            headers=ADMIN,
        )
        assert retired.status_code == 200, retired.text
        assert retired.json()["version"] is None
        assert retired.json()["history"][-1]["by"] == "alice"
        assert (
            client.post(
                "/v1/models/loan-default/aliases/challenger/retire", headers=ADMIN
            ).status_code
            == 409
        )
        client.post("/v1/predict", json=loan(1), headers=ADMIN)
        assert metric(client, "loanrisk_shadow_rows_total") == 0
        back = client.post("/v1/models/loan-default/aliases/challenger/rollback", headers=ADMIN)
        assert back.json()["version"] == 2
        wait_for(
            lambda: 'role="shadow",version="2"} 1.0' in client.get("/metrics").text,
            "the shadow is back",
        )


# -- canary ----------------------------------------------------------------------------------


def test_the_canary_share_is_sticky_per_loan_id_and_within_one_and_a_half_points() -> None:
    rule = CanaryRule(10.0)
    ids = [f"A-{i:06d}" for i in range(10_000)]
    chosen = [rule.takes(i) for i in ids]
    assert abs(sum(chosen) / len(ids) - 0.10) <= 0.015
    assert [rule.takes(i) for i in ids] == chosen  # one version per id, every time
    # ... and in another process (another hash seed): the same ids go the same way.
    code = (
        "import sys, json; from loanrisk.inference.routing import canary_bucket; "
        "print(json.dumps([canary_bucket(i) for i in json.load(sys.stdin)]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(ids[:500]),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert json.loads(other.stdout) == [canary_bucket(i) for i in ids[:500]]


def test_the_canary_answers_its_loans_and_every_result_names_its_version(root: Path) -> None:
    loans = [loan(i) for i in range(200)]
    expected = [2 if canary_bucket(f"L-{i}") < 30 else 1 for i in range(200)]
    with app_client(root, canary="challenger:30") as client:
        first = client.post("/v1/predict", json={"records": loans}, headers=ADMIN)
        again = client.post("/v1/predict", json={"records": loans[::-1]}, headers=ADMIN)
        assert first.status_code == 200, first.text
        assert [r["version"] for r in first.json()["results"]] == expected
        assert [r["version"] for r in again.json()["results"]] == expected[::-1]
        assert [r["record"] for r in first.json()["results"]] == list(range(200))
        assert first.json()["canary"]["version"] == 2
        assert first.headers["x-loanrisk-model-version"] == "1,2"
        reference = client.post(
            "/predict",
            headers=ADMIN,
            json={
                "sample": loans[:40],
                "backend": "local",
                "local_model_path": "models",
                "model_name": "loan-default",
            },
        )
        assert reference.status_code == 200, reference.text
        assert reference.json()["versions"] == expected[:40]
        assert len(reference.json()["Prediction Output"]) == 40
        one = scorer(root, 2).score_records([loans[expected.index(2)]]).results[0]
        assert first.json()["results"][expected.index(2)]["probability"] == pytest.approx(
            one.probability, abs=1e-6
        )
        # A bad loan is named by its place in the request, whichever version it went to.
        canary_index = expected.index(2, 50)
        bad = [*loans]
        bad[canary_index] = {**loans[canary_index], "person_age": "old"}
        refused = client.post("/v1/predict", json={"records": bad}, headers=ADMIN)
        assert refused.status_code == 422
        assert refused.json()["error"]["details"]["record"] == canary_index
        counted = sum(
            metric(
                client,
                f'loanrisk_predictions_total{{label="{label}",model="loan-default",role="canary"',
            )
            for label in ("default", "non_default")
        )
        canary_loans = 2 * expected.count(2) + expected[:40].count(2)
        assert counted == canary_loans
    log = logged(root)
    assert (log.loc[log["role"] == "canary", "version"] == 2).all()
    assert (log["role"] == "canary").sum() == canary_loans


# -- comparison and guarded promotion ----------------------------------------------------------


def psi_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    edges = np.unique(np.quantile(a, [i / 10 for i in range(1, 10)]))
    ea = np.histogram(a, bins=[-np.inf, *edges, np.inf])[0] / a.size
    eb = np.histogram(b, bins=[-np.inf, *edges, np.inf])[0] / b.size
    ea, eb = np.maximum(ea, 1e-4), np.maximum(eb, 1e-4)
    return float(np.sum((eb - ea) * np.log(eb / ea)))


def delong_by_hand(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The difference b - a and its standard error from the placement values, pair by pair."""

    def placements(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = s[y == 1], s[y == 0]
        kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return kernel.mean(axis=1), kernel.mean(axis=0)

    (va, wa), (vb, wb) = placements(a), placements(b)
    m, n = va.size, wa.size
    var = (np.var(vb - va, ddof=1) / m) + (np.var(wb - wa, ddof=1) / n)
    return float(vb.mean() - va.mean()), float(np.sqrt(var))


def test_a_comparison_matches_values_computed_independently(root: Path) -> None:
    from scipy.stats import ks_2samp

    loans = [loan(i, person_income=20_000 + 900 * i) for i in range(120)]
    with app_client(root, shadow_alias="challenger") as client:
        client.post("/v1/predict", json={"records": loans[:60]}, headers=ADMIN)
        for item in loans[60:]:
            client.post("/v1/predict", json=item, headers=ADMIN)
        wait_for(
            lambda: metric(client, 'loanrisk_shadow_rows_total{outcome="scored"}') == 120,
            "shadowed",
        )
        outcomes = [
            {"loan_id": f"L-{i}", "defaulted": int(i % 3 == 0), "observed_on": "2026-11-30"}
            for i in range(0, 120, 2)
        ]
        added = client.post("/v1/outcomes", json={"outcomes": outcomes}, headers=ADMIN)
        assert added.status_code == 200, added.text
    with app_client(root) as client:
        answer = client.get(
            "/v1/models/loan-default/compare?a=production&b=challenger", headers=ADMIN
        )
    assert answer.status_code == 200, answer.text
    report = answer.json()

    storage = FsspecStorage(str(root))
    catalogue = DatasetCatalogue(storage, "data")
    dataset = catalogue.find()
    test = catalogue.load_split(dataset.id, "test")
    y = test[LABEL].to_numpy().astype(int)
    loans_frame = test.drop(columns=[LABEL])
    pa = scorer(root, 1).score_frame(loans_frame)[0]["probability"].to_numpy()
    pb = scorer(root, 2).score_frame(loans_frame)[0]["probability"].to_numpy()
    held = report["held_out"]
    assert held["dataset"] == dataset.id and held["rows"] == len(test)
    for side, p in (("a", pa), ("b", pb)):
        assert held[side]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
        assert held[side]["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-9)
        assert held[side]["ks"] == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-9)
    difference, se = delong_by_hand(y, pa, pb)
    assert held["auc_difference"]["b_minus_a"] == pytest.approx(difference, abs=1e-9)
    assert held["auc_difference"]["se"] == pytest.approx(se, rel=1e-6)
    low, high = held["auc_difference"]["ci95"]
    assert low == pytest.approx(difference - 1.959964 * se, abs=1e-6)
    assert high == pytest.approx(difference + 1.959964 * se, abs=1e-6)

    # The live part, from the log's rows paired here by loan id (each loan was sent once).
    live = report["live"]
    log = logged(root).set_index("loan_id")
    order = [f"L-{i}" for i in range(120)]
    a_p = log[log["role"] == "champion"].loc[order, "probability"].to_numpy()
    b_p = log[log["role"] == "shadow"].loc[order, "probability"].to_numpy()
    direct = scorer(root, 2).score_records(loans).results
    assert b_p == pytest.approx([r.probability for r in direct], abs=1e-6)
    a_l, b_l = a_p > 0.5, b_p > 0.5
    assert live["loans"] == 120
    assert live["agreement"] == pytest.approx(float(np.mean(a_l == b_l)))
    assert live["flips"] == {
        "a_approves_b_declines": int(np.sum(~a_l & b_l)),
        "a_declines_b_approves": int(np.sum(a_l & ~b_l)),
    }
    assert live["probability_psi"] == pytest.approx(psi_by_hand(a_p, b_p), abs=1e-6)
    assert live["abs_difference"]["mean"] == pytest.approx(np.mean(np.abs(a_p - b_p)), abs=1e-6)
    assert live["abs_difference"]["max"] == pytest.approx(np.max(np.abs(a_p - b_p)), abs=1e-6)
    known = np.arange(0, 120, 2)
    truth = (known % 3 == 0).astype(int)
    assert live["outcomes"]["loans"] == 60
    assert live["outcomes"]["a_auc"] == pytest.approx(roc_auc_score(truth, a_p[known]), abs=1e-6)
    assert live["outcomes"]["b_auc"] == pytest.approx(roc_auc_score(truth, b_p[known]), abs=1e-6)


def test_a_guarded_promotion_is_refused_when_worse_and_allowed_when_not(root: Path) -> None:
    with app_client(root) as client:
        worse = client.put(
            "/v1/models/loan-default/aliases/production",
            headers=ADMIN,
            json={"version": 3, "if_not_worse": True},
        )
        assert worse.status_code == 409, worse.text
        error = worse.json()["error"]
        assert "version 3 is worse than version 1 (production)" in error["message"]
        comparison = error["details"]["comparison"]
        assert comparison["b"]["auc"] < comparison["a"]["auc"] - 0.002
        low, high = comparison["auc_difference"]["ci95"]
        assert high < -0.002  # refused on the interval, not on the point estimate
        assert (
            f"[{low:+.4f}, {high:+.4f}] lies below -0.002, the drop allowed" in (error["message"])
        )
        assert (
            f"AUC {comparison['b']['auc']:.4f} against {comparison['a']['auc']:.4f}"
            in (error["message"])
        )
        assert (
            client.get("/v1/models/loan-default", headers=ADMIN).json()["aliases"]["production"][
                "version"
            ]
            == 1
        )

        better = client.put(
            "/v1/models/loan-default/aliases/production",
            headers=ADMIN,
            json={"version": 2, "if_not_worse": True, "reason": "better on the held-out loans"},
        )
        assert better.status_code == 200, better.text
        move = better.json()["history"][-1]
        assert move == {
            **move,
            "version": 2,
            "by": "alice",
            "reason": "better on the held-out loans",
        }
        # A plain promote still works, worse or not, and says who did it.
        plain = client.put(
            "/v1/models/loan-default/aliases/production",
            headers=ADMIN,
            json={"version": 3, "reason": "an experiment"},
        )
        assert plain.status_code == 200
        assert plain.json()["history"][-1]["by"] == "alice"
        score_only = {"Authorization": "Bearer " + "s" * 24}
        assert (
            client.put(
                "/v1/models/loan-default/aliases/production",
                headers=score_only,
                json={"version": 1},
            ).status_code
            == 403
        )
        for bad in (
            {"version": 2, "max_auc_drop": 2},
            {"version": 2, "dataset": "../x"},
            {"version": 2, "reason": "x" * 501},
        ):
            refused = client.put(
                "/v1/models/loan-default/aliases/production", json=bad, headers=ADMIN
            )
            assert refused.status_code == 422, bad


def test_the_cli_compares_and_guards_a_promotion(root: Path) -> None:
    from typer.testing import CliRunner

    from loanrisk.cli import app

    runner = CliRunner()
    shown = runner.invoke(
        app,
        [
            "models",
            "compare",
            "loan-default@production",
            "loan-default@challenger",
            "--storage",
            str(root),
            "--json",
        ],
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert (report["a"], report["b"]) == (1, 2)
    text = runner.invoke(
        app, ["models", "compare", "loan-default@1", "loan-default@2", "--storage", str(root)]
    )
    assert f"{report['held_out']['a']['auc']:.4f}" in text.output
    assert "AUC difference (b - a)" in text.output

    refused = runner.invoke(
        app, ["models", "promote", "loan-default", "3", "--if-not-worse", "--storage", str(root)]
    )
    assert refused.exit_code == 1
    assert "version 3 is worse than version 1" in refused.output
    allowed = runner.invoke(
        app,
        [
            "models",
            "promote",
            "loan-default",
            "2",
            "--if-not-worse",
            "--reason",
            "a day in the shadow",
            "--storage",
            str(root),
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert "95% interval of the difference" in allowed.output
    assert "not below -0.002: not worse" in " ".join(allowed.output.split())
    alias = json.loads(
        (root / "models" / "loan-default" / "aliases" / "production.json").read_text()
    )
    assert alias["version"] == 2
    assert alias["history"][-1]["reason"] == "a day in the shadow"
    assert alias["history"][-1]["by"].endswith("(cli)")
    other = runner.invoke(
        app, ["models", "compare", "loan-default@1", "other@2", "--storage", str(root)]
    )
    assert other.exit_code == 2


def test_a_comparison_without_a_held_out_split_still_compares_the_log(root: Path) -> None:
    storage = FsspecStorage(str(root))
    catalogue = DatasetCatalogue(storage, "data")
    storage.delete(catalogue.path(catalogue.find().id, "test.parquet"))
    with app_client(root) as client:
        answer = client.get("/v1/models/loan-default/compare?a=1&b=2", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert answer.json()["held_out"] is None
        assert "test.parquet" in answer.json()["held_out_problem"]
        guarded = client.put(
            "/v1/models/loan-default/aliases/production",
            headers=ADMIN,
            json={"version": 2, "if_not_worse": True},
        )
        assert guarded.status_code == 404
        bad = client.get("/v1/models/loan-default/compare?a=1&b=nope", headers=ADMIN)
        assert bad.status_code == 404
