"""A real lender's file through the whole documented journey, as a user runs it.

``../shared/data/pakdd2009_credit_card.tsv`` (40,000 credit-card applications; its README)
is tab-separated with a trailing tab, has 12 shifted rows whose label reads "N", a catch-all
profession code 999 and protected attributes (sex, age, marital status). The journey is
docs/schema.md's: draft a schema, apply a reviewer's patch, check it, process, train, serve
(one worker), score JSON with decline notices and CSV with reasons, add outcomes, report
drift and performance, and write the model card. Then docs/scorecard.md's leg: the dataset's
characteristics, a scorecard challenger compared with the XGBoost champion, its points table
exported and its SQL run in SQLite on the file's applications. Only the command line and HTTP
are used (the library only to check what they answer).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost as xgb
import yaml
from sklearn.metrics import roc_auc_score

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.fairness.groups import attribute_groups
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.backends import onedal_available
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.reporting.scorecard_sql import score_sql
from loanrisk.storage import FsspecStorage
from loanrisk.training.train import DEFAULT_PARAMS
from tests.conftest import ROOT, free_port, wait_until_serving
from tests.fairness.conftest import run_solas, solas_case
from tests.test_cli import LOANRISK, run

PAKDD = ROOT.parent / "shared" / "data" / "pakdd2009_credit_card.tsv"
REVIEW = Path(__file__).parent / "fixtures" / "pakdd_review.yaml"
LABEL = "target_label_bad=1"
ROUNDS = "60"


def reviewed(draft: dict[str, Any], patch: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The draft with the reviewer's fields set, column by column."""
    columns = [{**c, **patch.get(c["name"], {})} for c in draft["columns"]]
    assert {c["name"] for c in columns} >= set(patch), "the patch names a column not drafted"
    return {**draft, "columns": columns}


def scaling_of(store: str, version: int) -> Any:
    """The points scaling version ``version`` recorded (its ``scaling.json``)."""
    return ModelRegistry(FsspecStorage(store)).scaling("loan-default", version)


def applications(rows: int) -> list[dict[str, str]]:
    """The file's last ``rows`` applications as a client sends them: text as in the file."""
    with PAKDD.open(newline="") as stream:
        lines = list(csv.DictReader(stream, delimiter="\t"))[-rows:]
    return [{k.lower(): v for k, v in line.items() if k} for line in lines]


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Draft, review, check, process and train: what the rest of the journey starts from."""
    assert PAKDD.is_file(), f"the PAKDD 2009 file is expected at {PAKDD}"
    folder = tmp_path_factory.mktemp("pakdd")
    store = str(folder / "store")
    drafted = run("schema", "infer", str(PAKDD), "--output", str(folder / "draft.yaml"))
    assert drafted.returncode == 0, drafted.stderr
    draft = yaml.safe_load((folder / "draft.yaml").read_text())
    patch = yaml.safe_load(REVIEW.read_text())
    (folder / "pakdd.yaml").write_text(yaml.safe_dump(reviewed(draft, patch), sort_keys=False))
    checked = run("schema", "check", str(folder / "pakdd.yaml"))
    assert checked.returncode == 0, checked.stderr
    processed = run(
        "data",
        "process",
        str(PAKDD),
        "--schema",
        str(folder / "pakdd.yaml"),
        "--skip-bad-rows",
        "--storage",
        store,
    )
    assert processed.returncode == 0, processed.stderr
    trained = run("train", "--rounds", ROUNDS, "--storage", store, "--json")
    assert trained.returncode == 0, trained.stderr
    return {
        "folder": folder,
        "store": store,
        "draft": draft,
        "processed": processed,
        "manifest": json.loads(trained.stdout),
    }


def test_the_draft_flags_protected_attributes_special_codes_and_robust_ranges(
    journey: dict[str, Any],
) -> None:
    columns = {c["name"]: c for c in journey["draft"]["columns"]}
    assert {n for n, c in columns.items() if c.get("role") == "protected"} == {
        "sex",
        "age",
        "marital_status",
    }
    assert columns["profession_code"]["special"][0]["values"] == [999]
    income = columns["personal_net_income"]["plausible"]
    assert income["max"] < 38_529_098  # the observed maximum flags nothing
    assert columns["flag_other_card"]["role"] == "ignored"  # one value only
    assert columns[LABEL] == {
        "name": LABEL,
        "role": "label",
        "type": "integer",
        "positive": [1],
        "negative": [0],
    }
    text = (journey["folder"] / "draft.yaml").read_text()
    assert "12 rows have another label value ('N' (12))" in text


def test_processing_refuses_the_shifted_rows_and_counts_the_special_codes(
    journey: dict[str, Any],
) -> None:
    assert "dropped 12 row(s)" in " ".join(journey["processed"].stderr.split())
    catalogue = DatasetCatalogue(FsspecStorage(journey["store"]))
    dataset = catalogue.find()
    assert dataset.rows.model_dump()["input"] == 39_988
    assert dataset.quality.special["profession_code"] == 5_088
    # The shifted rows are dropped, so no warning about kept values names them.
    flagged = {r for issue in dataset.quality.flagged for r in issue.rows}
    assert len(dataset.quality.rejected_rows) == 12
    assert not flagged & set(dataset.quality.rejected_rows)
    assert not any("cod_application_booth" in w for w in dataset.quality.warnings)
    spec = catalogue.load_spec(dataset.id)
    assert not {"sex", "age", "marital_status"} & set(spec.input_columns)


def test_training_matches_plain_xgboost_on_the_same_split(journey: dict[str, Any]) -> None:
    """The AUC of loanrisk's model is plain XGBoost's on the same split (the same rounds and
    parameters, pandas categoricals instead of the FeatureSpec)."""
    catalogue = DatasetCatalogue(FsspecStorage(journey["store"]))
    dataset = catalogue.find()
    schema = catalogue.load_schema(dataset.id)
    train, test = (catalogue.load_split(dataset.id, s) for s in ("train", "test"))
    features = list(schema.feature_names)
    params = {**DEFAULT_PARAMS, "nthread": 2, "seed": 0}
    model = xgb.train(
        params, xgb.DMatrix(train[features], train[LABEL], enable_categorical=True), int(ROUNDS)
    )
    held_out = xgb.DMatrix(test[features], enable_categorical=True)
    plain = roc_auc_score(test[LABEL], model.predict(held_out))
    ours = journey["manifest"]["metrics"]["auc"]
    assert ours > 0.6
    assert abs(ours - plain) < 0.02, (ours, plain)


def test_served_scored_monitored_and_documented(journey: dict[str, Any]) -> None:
    store, folder = journey["store"], journey["folder"]
    port = free_port()
    env = {**os.environ, "LOANRISK_NTHREAD": "1", "LOANRISK_LOG_FLUSH_SECONDS": "0.2"}
    server = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", store, "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    loans = applications(400)
    try:
        wait_until_serving(server, port, "loanrisk serve", timeout=90)
        ready = httpx.get(url + "/readyz", timeout=30).json()
        assert ready["model"] is not None, ready
        if onedal_available():
            assert ready["model"]["backend"] == "onedal", ready["model"]
        records = [
            {k: v for k, v in loan.items() if k != LABEL} | {"id": f"app-{i}"}
            for i, loan in enumerate(loans[:300])
        ]
        answer = httpx.post(
            url + "/v1/predict", timeout=60, json={"records": records, "decline_reasons": True}
        )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert len(results) == 300
        scaling = scaling_of(store, 1)
        assert ready["model"]["scaling"] == scaling.model_dump()
        assert all(r["score"] == scaling.score_of(r["probability"]) for r in results)
        declined = [r for r in results if r["label"]]
        assert all(r["decline_reasons"] for r in declined)
        body = io.StringIO()
        fields = ["application_ref", *(k for k in loans[0] if k != LABEL)]
        writer = csv.DictWriter(body, fields, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            loan | {"application_ref": f"app-{i}"} for i, loan in enumerate(loans[300:], start=300)
        )
        scored = httpx.post(
            url + "/v1/predict?explain=true&id_column=application_ref",
            content=body.getvalue(),
            headers={"Content-Type": "text/csv"},
            timeout=60,
        )
        assert scored.status_code == 200, scored.text
        rows = list(csv.DictReader(io.StringIO(scored.text)))
        assert len(rows) == 100 and all(r["reason_1"] for r in rows if r["label"] == "True")
        # the CSV's probability has 8 digits: its score is the exact PD's, read within 1e-5
        assert all(
            abs(int(r["score"]) - scaling.exact_scores(np.array([float(r["probability"])]))[0])
            <= 0.5 + 1e-5
            for r in rows
        )
        assert [r["application_ref"] for r in rows[:2]] == ["app-300", "app-301"]
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output, output

    outcomes = folder / "outcomes.csv"
    today = date.today().isoformat()
    outcomes.write_text(
        "loan_id,defaulted,observed_on\n"
        + "".join(f"app-{i},{loan[LABEL]},{today}\n" for i, loan in enumerate(loans))
    )
    added = run("outcomes", "add", str(outcomes), "--storage", store)
    assert added.returncode == 0, added.stderr
    drift = run("monitor", "drift", "--json", "--storage", store)
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["probability"]["index"] >= 0
    performance = run("monitor", "performance", "--json", "--storage", store)
    assert performance.returncode == 0, performance.stderr
    (realized,) = [v for v in json.loads(performance.stdout)["versions"] if v["version"] == 1]
    assert (realized["scored"], realized["with_outcome"]) == (400, 400)  # JSON and CSV ids
    assert np.isfinite(realized["auc"]) and realized["auc"] > 0.5, realized

    card = folder / "card.html"
    written = run(
        "models", "card", "loan-default@production", "--output", str(card), "--storage", store
    )
    assert written.returncode == 0, written.stderr
    html = card.read_text()
    assert "at least 25" in html  # age's rule, reported
    assert "marital_status" in html and "not assessed" in html
    assert "Traceback" not in html


def test_the_report_s_air_and_smd_on_sex_and_age_equal_solas_ai_s(journey: dict[str, Any]) -> None:
    """docs/fairness.md on this file: sex (M the reference) and age (25 or older) measured on
    the test split, each group's AIR, SMD and p-values equal to solas-ai's within 1e-9."""
    storage = FsspecStorage(journey["store"])
    model = ModelRegistry(storage).load("loan-default", 1)
    measures = model.report.fairness_measures
    assert set(measures) == {"sex", "age"}  # marital_status declares no group
    assert measures["sex"].reference.group == "M" and measures["sex"].kind == "category"
    catalogue = DatasetCatalogue(storage)
    test = catalogue.load_split(catalogue.find().id, "test")
    features = FeatureTransformer(model.spec).transform(test, dtype=np.float32)
    raw = model.require_booster("the test").predict(xgb.DMatrix(features, nthread=1))
    probability = raw if model.calibration is None else model.calibration.apply(raw)
    approved = probability <= model.report.threshold
    attributes = ("sex", "age")
    groups = [attribute_groups(model.schema, test, name) for name in attributes]
    answers = run_solas([solas_case(g, approved, probability) for g in groups])
    for name, theirs in zip(attributes, answers, strict=True):
        assert {g.group for g in measures[name].groups} == set(theirs)
        for group in measures[name].groups:
            figures = theirs[group.group]
            assert group.air.air == pytest.approx(figures["air"], rel=1e-9), (name, group.group)
            assert group.air.p_value == pytest.approx(figures["air_p_value"], rel=1e-9)
            assert 100 * group.smd.smd == pytest.approx(figures["smd"], rel=1e-9)
            assert group.smd.p_value == pytest.approx(figures["smd_p_value"], rel=1e-9)
            assert group.air.low <= group.air.air <= group.air.high


@pytest.mark.slow
def test_a_scorecard_challenger_is_compared_exported_and_scores_in_points(
    journey: dict[str, Any],
) -> None:
    """docs/scorecard.md on this file: the IV ranking, ``train --kind scorecard``, ``models
    compare`` (AUCs with DeLong intervals), ``models export --format scorecard``, whose SQL run
    in SQLite on every application of the file scores each as ``loanrisk predict`` does, and
    points that follow the version's recorded scaling."""
    store, folder = journey["store"], journey["folder"]
    shown = run("data", "show", "latest", "--json", "--storage", store)
    assert shown.returncode == 0, shown.stderr
    ranking = json.loads(shown.stdout)["characteristics"]["ranking"]
    assert len(ranking) == 18 and ranking[0]["name"] == "months_in_the_job"
    assert [r["iv"] for r in ranking] == sorted((r["iv"] for r in ranking), reverse=True)

    trained = run("train", "--kind", "scorecard", "--storage", store, "--json")
    assert trained.returncode == 0, trained.stderr
    manifest = json.loads(trained.stdout)
    version = manifest["version"]
    assert manifest["kind"] == "scorecard" and "scorecard.json" in manifest["files"]
    compared = run(
        "models",
        "compare",
        "loan-default@1",
        f"loan-default@{version}",
        "--json",
        "--storage",
        store,
    )
    assert compared.returncode == 0, compared.stderr
    held_out = json.loads(compared.stdout)["held_out"]
    assert held_out["rows"] == 9_997
    for side, auc in (
        ("a", journey["manifest"]["metrics"]["auc"]),
        ("b", manifest["metrics"]["auc"]),
    ):
        low, high = held_out[side]["auc_ci95"]
        assert held_out[side]["auc"] == pytest.approx(auc) and low < auc < high
    assert held_out["auc_difference"]["method"] == "DeLong"

    exported = folder / "export"
    written = run(
        "models",
        "export",
        f"loan-default@{version}",
        str(exported),
        "--format",
        "scorecard",
        "--storage",
        store,
    )
    assert written.returncode == 0, written.stderr
    assert {p.name for p in exported.iterdir()} == {
        "points.csv",
        "points.html",
        "score.sql",
        "probability.sql",
    }
    with PAKDD.open(newline="") as stream:
        reader = csv.reader(stream, delimiter="\t")
        header = [h.lower() for h in next(reader)]
        kept = [i for i, h in enumerate(header) if h]
        loans = [[line[i] for i in kept] for line in reader]
    database = sqlite3.connect(":memory:")  # every column text, as the sqlite3 shell imports
    names = ", ".join('"' + header[i] + '"' for i in kept)
    database.execute(f"CREATE TABLE loans (row INTEGER, {names})")
    marks = ", ".join("?" * (len(kept) + 1))
    database.executemany(
        f"INSERT INTO loans VALUES ({marks})",  # noqa: S608 (placeholders only)
        ([n, *loan] for n, loan in enumerate(loans, start=1)),
    )
    expression = (exported / "score.sql").read_text()
    query = f"SELECT row, ({expression}) FROM loans"  # noqa: S608 (the export under test)
    in_sql = dict(database.execute(query).fetchall())

    output = folder / "scorecard.csv"
    predicted = run(
        "predict",
        str(PAKDD),
        "--model",
        f"loan-default@{version}",
        "--skip-bad-rows",
        "--output",
        str(output),
        "--storage",
        store,
        env={"LOANRISK_PREDICTION_LOG": "false"},  # the server test's log stays its own
    )
    assert predicted.returncode == 0, predicted.stderr
    with output.open(newline="") as stream:
        served = {int(r["row"]): r for r in csv.DictReader(stream)}
    assert len(in_sql) == 40_000 and len(served) == 39_988
    assert {n for n, score in in_sql.items() if score is None} == set(in_sql) - set(served)
    assert all(in_sql[n] == int(r["score"]) for n, r in served.items())
    scaling = scaling_of(store, version)
    assert all(
        int(r["score"]) == scaling.score_of(float(r["probability"])) for r in served.values()
    )


@pytest.mark.slow
def test_the_scorecards_sql_scores_100_000_applications_as_served(
    journey: dict[str, Any],
) -> None:
    """Issue 28's done-when on this file: 100,000 applications drawn with replacement from
    it, every value text as in the file (the code 999, ``Y``/``N``, the shifted rows), the
    exported SQL's score equal to the served one on each, ``NULL`` exactly where the scorer
    refuses the application."""
    store = journey["store"]
    registry = ModelRegistry(FsspecStorage(store))
    versions = registry.versions("loan-default")
    cards = [v for v in versions if registry.manifest("loan-default", v).kind == "scorecard"]
    if not cards:  # run on its own: the journey's scorecard leg has not trained one
        trained = run("train", "--kind", "scorecard", "--storage", store, "--json")
        assert trained.returncode == 0, trained.stderr
        cards = [json.loads(trained.stdout)["version"]]
    model = registry.load("loan-default", cards[-1])
    assert model.scorecard is not None
    drawn = np.random.default_rng(28).choice(40_000, 100_000, replace=True)
    every = applications(40_000)
    records = [every[i] for i in drawn]
    served = Scorer(model).score_records(records, on_error="skip")
    columns = list(model.schema.feature_names)
    database = sqlite3.connect(":memory:")
    names = ", ".join(f'"{c}"' for c in columns)
    database.execute(f"CREATE TABLE loans (id INTEGER PRIMARY KEY, {names})")
    marks = ", ".join("?" * (len(columns) + 1))
    database.executemany(
        f"INSERT INTO loans VALUES ({marks})",  # noqa: S608 (placeholders only)
        ([i, *(r.get(c) for c in columns)] for i, r in enumerate(records)),
    )
    expression = score_sql(model.scorecard, model.schema)
    query = f"SELECT id, ({expression}) FROM loans"  # noqa: S608 (the export under test)
    in_sql = dict(database.execute(query).fetchall())
    assert len(in_sql) == 100_000 and len(served.results) > 99_900
    assert all(in_sql[r.record] == r.score for r in served.results)
    assert {r.record for r in served.rejected} == {i for i, s in in_sql.items() if s is None}
    assert sum(r["profession_code"].strip() == "999" for r in records) > 10_000
