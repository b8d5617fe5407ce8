"""Model cards: every figure equals the version's report and dataset manifest, the file is
self-contained (no script, no external reference), and the CLI and route produce it."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from typer.testing import CliRunner

from loanrisk.cli import app as cli
from loanrisk.contracts import DatasetManifest
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.reporting.card import model_card
from loanrisk.schema import parse_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.schema.second import second_loans, second_yaml

from .conftest import ADMIN_KEY, HOSTILE_SOURCE, KEYS, SCORE_KEY


@pytest.fixture(scope="module")
def card(history: Path) -> str:
    registry = ModelRegistry(FsspecStorage(str(history)), "models")
    return model_card(registry, "loan-default", 2, Settings(storage=str(history)))


def report_of(root: Path, version: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (root / f"models/loan-default/versions/{version}/report.json").read_text()
    )
    return doc


def dataset_of(root: Path) -> DatasetManifest:
    (path,) = root.glob("data/datasets/*/manifest.json")
    return DatasetManifest.model_validate_json(path.read_text())


def section(card: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', card, re.DOTALL)
    assert found, f"the card has no {name} section"
    return found.group(1)


def figure(card: str, key: str) -> str:
    found = re.search(rf'<figure class="chart" id="chart-{key}".*?</figure>', card, re.DOTALL)
    assert found, f"the card has no {key} chart"
    return found.group(0)


def captioned(card: str, caption: str) -> str:
    """The table whose caption starts with ``caption``."""
    found = re.search(rf"<table[^>]*>\s*<caption>{caption}.*?</table>", card, re.DOTALL)
    assert found, f"the card has no table captioned {caption!r}"
    return found.group(0)


def rows(fragment: str) -> list[list[str]]:
    """The cells of each body row of the tables in ``fragment``, as text."""
    out = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", fragment, re.DOTALL):
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
            cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)
            out.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return out


def test_the_headline_metrics_are_the_reports(card: str, history: Path) -> None:
    report = report_of(history, 2)
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", section(card, "quantitative")))
    assert shown == {
        "AUC": f"{report['auc']:.4f}",
        "Brier": f"{report['brier']:.4f}",
        "Log loss": f"{report['log_loss']:.4f}",
        "KS": f"{report['ks']:.4f}",
        "ECE": f"{report['ece']:.4f}",
        "Accuracy": f"{report['classification_report']['accuracy'] * 100:.2f}%",
        "Test loans": f"{report['rows']:,}",
    }


def test_the_directions_of_risk_and_the_calibration_are_the_reports(
    tmp_path: Path, history: Path, card: str
) -> None:
    """An unconstrained version's card says which directions fail; a monotone, calibrated
    one shows its check and its calibration before and after, all from the report."""
    unconstrained = report_of(history, 2)["monotonicity"]
    shown = {r[0]: r[1:] for r in rows(captioned(card, "Directions of risk"))}
    for name, f in unconstrained["features"].items():
        assert shown[name] == [
            "never falls" if f["direction"] == "increasing" else "never rises",
            "yes" if f["holds"] else "no",
            f"{f['violations']:,}",
            f"{f['max_wrong_step']:.4f}",
        ]
    broken = [n for n, f in unconstrained["features"].items() if not f["holds"]]
    assert broken and all(n in section(card, "limitations") for n in broken)

    storage = FsspecStorage(str(tmp_path))
    process_dataset(validate_frame(generate_sample(3_000, seed=5)), storage, source="sample")
    run_training(
        TrainingRequest(
            rounds=30,
            params={"max_depth": 4},
            monotone=True,
            calibration="isotonic",
            calibration_fraction=0.45,
        ),
        storage,
        nthread=1,
    )
    registry = ModelRegistry(storage, "models")
    report = registry.report("loan-default", 1).to_json()
    constrained = model_card(registry, "loan-default", 1, Settings(storage=str(tmp_path)))
    shown = {r[0]: r[1:] for r in rows(captioned(constrained, "Directions of risk"))}
    assert set(shown) == set(report["monotonicity"]["features"])
    assert all(row[1] == "yes" for row in shown.values())
    assert "enforced as monotone constraints" in constrained
    step = report["calibration_step"]
    shown = {r[0]: r[1:] for r in rows(captioned(constrained, "Calibration: isotonic"))}
    for side in ("before", "after"):
        figures = step[side]
        assert shown[side] == [f"{figures[k]:.4f}" for k in ("brier", "log_loss", "ece")]
    assert "moves against the declared direction" not in section(constrained, "limitations")


def test_every_class_row_and_chart_table_is_the_reports(card: str, history: Path) -> None:
    report = report_of(history, 2)
    quantitative = section(card, "quantitative")
    classes = {r[0]: r[1:] for r in rows(quantitative.split("<figure", 1)[0])}
    for name, values in report["classification_report"].items():
        if isinstance(values, dict):
            expected = [f"{values[k]:.3f}" for k in ("precision", "recall", "f1-score")]
            assert classes[name] == [*expected, f"{int(values['support']):,}"]
    m = report["confusion_matrix"]
    assert rows(figure(card, "confusion")) == [
        ["Actual non-default", f"{m['tn']:,}", f"{m['fp']:,}"],
        ["Actual default", f"{m['fn']:,}", f"{m['tp']:,}"],
    ]
    calibration = rows(figure(card, "calibration"))
    assert [r[1] for r in calibration] == [f"{b['count']:,}" for b in report["calibration"]]
    assert [r[3] for r in calibration] == [
        "\u2013" if b["observed_rate"] is None else f"{b['observed_rate'] * 100:.1f}%"
        for b in report["calibration"]
    ]
    roc = rows(figure(card, "roc"))
    assert len(roc) == len(report["roc_curve"]["fpr"])
    assert roc[-1][1:] == [
        f"{report['roc_curve']['fpr'][-1] * 100:.1f}%",
        f"{report['roc_curve']['tpr'][-1] * 100:.1f}%",
    ]
    scores = rows(figure(card, "probabilities"))
    distribution = report["probability_distribution"]
    assert [r[1] for r in scores] == [f"{c:,}" for c in distribution["non_default"]]
    assert [r[3] for r in scores] == [f"{c:,}" for c in distribution["default"]]


def test_fairness_ratios_are_the_reports(card: str, history: Path) -> None:
    fairness = report_of(history, 2)["fairness"]
    table = {r[0]: r for r in rows(figure(card, "parity-applicant_group"))}
    for rate, ratio in fairness["parity"].items():
        assert table[rate][3] == ("\u2013" if ratio is None else f"{ratio:,.3f}")
        privileged = fairness["groups"]["privileged"][rate]
        assert table[rate][1] == ("\u2013" if privileged is None else f"{privileged:,.3f}")


def test_details_and_data_are_the_manifests(card: str, history: Path) -> None:
    manifest = json.loads((history / "models/loan-default/versions/2/manifest.json").read_text())
    data = dataset_of(history)
    details = {r[0]: r[1] for r in rows(f"<tbody>{section(card, 'details')}</tbody>")}
    assert details["Version"] == "2"
    assert details["Parent"].startswith("loan-default version 1")
    assert f"{manifest['rounds']['total_trees']} trees" in details["Algorithm"]
    assert details["Decision threshold"] == str(manifest["threshold"])
    assert manifest["feature_spec"]["fingerprint"] in details["Feature spec"]
    assert f"loanrisk {manifest['libraries']['loanrisk']}" in details["Code version"]
    for key, value in manifest["params"].items():
        assert f"{key}={value}" in details["Training parameters"]
    facts = {r[0]: r[1] for r in rows(f"<tbody>{section(card, 'data')}</tbody>")}
    assert facts["Dataset"] == data.id
    assert facts["Source"] == HOSTILE_SOURCE
    assert f"{data.rows.train:,} for training, {data.rows.test:,} held out" in facts["Loans"]
    assert facts["Default rate"] == (
        f"training {data.label_rate.train * 100:.2f}%, evaluation {data.label_rate.test * 100:.2f}%"
    )


def test_limitations_and_monitoring_plan_come_from_the_records(card: str, history: Path) -> None:
    data = dataset_of(history)
    limits = section(card, "limitations")
    assert f"Trained on {data.rows.train:,} loans of dataset {data.id}" in limits
    assert "fairness was not assessed" not in limits  # this version has a fairness report
    plan = section(card, "monitoring")
    assert "0.1 to 0.25 investigate" in plan and "&gt; 0.25 shift" in plan


def test_the_card_is_self_contained_and_escapes_what_people_typed(card: str) -> None:
    assert "<script" not in card.lower()
    assert "Content-Security-Policy" in card and "default-src 'none'" in card
    references = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', card)
    assert all(r.startswith("#") for r in references), references
    assert not re.search(r"url\((?!#)", card)  # no stylesheet fetches either
    assert HOSTILE_SOURCE not in card and str(escape(HOSTILE_SOURCE)) in card
    assert card.count("<svg") == 6  # ROC, calibration, scores, confusion, gain, parity


def test_a_version_without_a_fairness_report_says_so(fresh_history: Path) -> None:
    storage = FsspecStorage(str(fresh_history))
    registry = ModelRegistry(storage, "models")
    loaded = registry.load("loan-default", 1)
    report = {k: v for k, v in loaded.report.to_json().items() if not k.startswith("fairness")}
    report.pop("probability_distribution")  # as versions published before it was recorded
    registry.publish(
        "loan-default",
        booster=loaded.booster,
        spec=loaded.spec,
        report=report,
        metadata={"dataset": loaded.manifest.dataset},
    )
    text = model_card(registry, "loan-default", 3, Settings(storage=str(fresh_history)))
    assert "fairness was not assessed" in section(text, "limitations")
    assert "no parity ratios were computed" in section(text, "fairness")
    assert text.count("<svg") == 4


def test_the_cli_writes_the_card(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "card.html"
    result = CliRunner().invoke(
        cli, ["models", "card", "loan-default@2", "--storage", str(history), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Model card: loan-default version 2" in out.read_text()
    printed = CliRunner().invoke(cli, ["models", "card", "loan-default", "--storage", str(history)])
    assert printed.exit_code == 0 and "Model card: loan-default version 1" in printed.stdout
    missing = CliRunner().invoke(
        cli, ["models", "card", "loan-default@9", "--storage", str(history)]
    )
    assert missing.exit_code == 2 and "has no version 9" in missing.stderr
    nowhere = str(tmp_path / "no" / "c.html")
    unwritable = CliRunner().invoke(
        cli, ["models", "card", "loan-default@1", "--storage", str(history), "-o", nowhere]
    )
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.stderr


@pytest.fixture
def client(history: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    with TestClient(create_app(Settings(storage=str(history)))) as test_client:
        yield test_client


def test_the_route_serves_the_card_to_admins(client: TestClient, history: Path) -> None:
    url = "/v1/models/loan-default/versions/production/card"
    response = client.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "Model card: loan-default version 1" in response.text
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {SCORE_KEY}"}).status_code == 403
    missing = client.get(
        "/v1/models/loan-default/versions/7/card", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    spec = client.get("/openapi.json").json()["paths"]
    assert (
        "text/html"
        in spec["/v1/models/{name}/versions/{ref}/card"]["get"]["responses"]["200"]["content"]
    )


def test_the_intended_use_names_the_label_s_own_default_value(tmp_path: Path) -> None:
    """A lender's label reads ``bad``, not 1: the card says so."""
    storage = FsspecStorage(str(tmp_path))
    schema = parse_schema(second_yaml())
    loans = validate_frame(second_loans(1_500), schema=schema)
    process_dataset(loans, storage, source="second", schema=schema)
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    text = model_card(ModelRegistry(storage), "loan-default", 1, Settings(storage=str(tmp_path)))
    assert "<code>outcome</code> = <code>bad</code>" in section(text, "use")


def test_without_outcomes_the_card_says_so_instead_of_an_empty_backtest(card: str) -> None:
    outcomes = section(card, "outcomes")
    assert "has an outcome yet" in outcomes and "loanrisk outcomes add" in outcomes
    assert "backtest-grades" not in outcomes and "chart-vintages" not in outcomes
