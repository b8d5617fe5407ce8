"""The console shows what listings and reports leave out (issue 26): a bad stored item (a
symlink leading out of the storage, a corrupt alias or job record, an unreadable log file) is
named on its page with the repair hint, and the page still shows the rest; the monitoring page
names the features whose drift is not measured (``left_out``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from loanrisk.console.views import Monitoring
from loanrisk.reporting.card import templates
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage.problems import Problem

from .conftest import ADMIN_KEY, KEYS
from .test_console import log_in

EXAMPLE_LOAN = {
    "person_age": 30,
    "person_income": 52_000,
    "person_home_ownership": "RENT",
    "person_emp_length": 4.0,
    "loan_intent": "EDUCATION",
    "loan_grade": "B",
    "loan_amnt": 9_000,
    "loan_int_rate": 11.5,
    "loan_percent_income": 0.17,
    "cb_person_default_on_file": "N",
    "cb_person_cred_hist_length": 5,
}


@pytest.fixture
def spoilt(fresh_history: Path, tmp_path: Path) -> Path:
    """The shared history with one bad item in each listing."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"version": 1}')
    (fresh_history / "models" / "evil").symlink_to(outside)
    (fresh_history / "models/loan-default/aliases/challenger.json").write_text('{"vers')
    (fresh_history / "data" / "datasets" / "evil").symlink_to(outside)
    (fresh_history / "jobs").mkdir(exist_ok=True)
    (fresh_history / "jobs" / "job-20000101T000000Z-train-bad.json").write_text("{")
    return fresh_history


@pytest.fixture
def client(spoilt: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    settings = Settings(storage=str(spoilt), nthread=1, log_flush_seconds=0.1)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        log_in(test_client, ADMIN_KEY)
        yield test_client


def notice(page: str) -> str:
    start = page.index('<section class="problems"')
    return page[start : page.index("</section>", start)]


def test_each_listing_page_names_its_bad_items_and_shows_the_rest(client: TestClient) -> None:
    models = client.get("/console/")
    assert models.status_code == 200
    named = notice(models.text)
    assert "2 bad items skipped" in named
    assert "models/evil" in named and "outside the storage root" in named
    assert "models/loan-default/aliases/challenger.json" in named
    assert "point the alias at a version again" in named  # the repair hint
    assert 'id="model-loan-default"' in models.text  # the rest is listed

    datasets = client.get("/console/datasets")
    assert datasets.status_code == 200
    assert "data/datasets/evil" in notice(datasets.text)
    assert "/console/datasets/" in datasets.text.split("</section>", 1)[1]

    jobs = client.get("/console/jobs")
    assert jobs.status_code == 200
    assert "jobs/job-20000101T000000Z-train-bad.json" in notice(jobs.text)
    assert "remove the file" in notice(jobs.text)


def test_a_page_without_bad_items_shows_no_notice(
    fresh_history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    app = create_app(Settings(storage=str(fresh_history), nthread=1))
    with TestClient(app, follow_redirects=False) as client:
        log_in(client, ADMIN_KEY)
        for path in ("/console/", "/console/datasets", "/console/jobs", "/console/monitoring"):
            assert 'class="problems"' not in client.get(path).text, path


def test_the_monitoring_page_names_an_unreadable_log_file(client: TestClient, spoilt: Path) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert client.post("/v1/predict", json=EXAMPLE_LOAN, headers=headers).status_code == 200
    client.app.state.services.log.flush()  # type: ignore[attr-defined]
    log = sorted({p.parent for p in spoilt.glob("prediction-log/**/*.parquet")})[0]
    (log / "garbage.parquet").write_bytes(b"PAR1 not parquet")
    page = client.get("/console/monitoring")
    assert page.status_code == 200
    named = notice(page.text)
    assert "garbage.parquet" in named and "(log file)" in named
    assert "<h2>Drift</h2>" in page.text  # the report of the rest


def test_the_monitoring_page_names_the_features_left_out_of_drift() -> None:
    report = Monitoring(
        "loan-default",
        3,
        14,
        None,
        None,
        None,
        None,
        [],
        problems=[Problem(kind="profile", path="models/x/profile.json", message="corrupt <b>")],
        left_out=["applicant_name", "national_id"],
    )
    html = (
        templates()
        .get_template("monitoring.html")
        .render(
            report=report,
            choices=(7, 14),
            viewer=None,
            settings=Settings(),
            path="/console/monitoring",
            csrf="x",
            csrf_field="csrf",
            now=datetime.now(UTC),
        )
    )
    assert "Not measured for drift: <code>applicant_name</code>, <code>national_id</code>" in html
    assert "models/x/profile.json" in notice(html)
    assert str(escape("corrupt <b>")) in notice(html)  # stored text is shown as text
