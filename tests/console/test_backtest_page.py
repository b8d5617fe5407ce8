"""The console's backtest page in headless Chromium against a real ``loanrisk serve``: loans
scored and logged, dated outcomes posted, and the page shows the traffic light of every grade
with loans and draws the vintage chart, with no console error and no request leaving
127.0.0.1."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser

from loanrisk.data.sample import generate_sample
from tests.monitoring.test_drift import as_records

from .conftest import ADMIN_KEY, SCORE_KEY
from .test_browser import (  # noqa: F401  (browser: the module's Chromium fixture)
    ARTIFACTS,
    Server,
    browser,
    charts_are_drawn,
    drawn_share,
    logged_in,
    start,
    stop,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
LOANS = 600


@pytest.fixture(scope="module")
def scored(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service whose loans have outcomes: defaults dated over the months after scoring."""
    root = Path(shutil.copytree(history, tmp_path_factory.mktemp("backtest") / "store"))
    running = start(root)
    try:
        loans = generate_sample(LOANS, seed=11).drop(columns=["loan_status"])
        records = [{**r, "id": f"B{i}"} for i, r in enumerate(as_records(loans))]
        answer = running.api("POST", "/v1/predict", SCORE_KEY, json={"records": records})
        assert answer.status_code == 200, answer.text
        pds = np.array([r["probability"] for r in answer.json()["results"]])
        deadline = time.monotonic() + 60
        while not list(root.glob("prediction-log/**/*.parquet")):
            assert time.monotonic() < deadline, "the prediction log was never written"
            time.sleep(0.2)
        now = datetime.now(UTC)
        rng = np.random.default_rng(0)
        defaulted = rng.random(LOANS) < pds
        when = [now + timedelta(days=int(d)) for d in rng.integers(1, 300, LOANS)]
        outcomes = pd.DataFrame(
            {
                "loan_id": [f"B{i}" for i in range(LOANS)],
                "defaulted": defaulted.astype(int),
                "observed_on": (now + timedelta(days=330)).date().isoformat(),
                "defaulted_at": [
                    w.isoformat() if d else "" for w, d in zip(when, defaulted, strict=True)
                ],
            }
        )
        stored = httpx.post(
            running.url + "/v1/outcomes",
            content=outcomes.to_csv(index=False),
            headers={"content-type": "text/csv", "Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        assert stored.status_code == 200, stored.text
        yield running
    finally:
        stop(running)


def test_the_backtest_page_shows_the_lights_and_draws_the_vintages(
    browser: Browser,  # noqa: F811  (the fixture imported above)
    scored: Server,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = logged_in(browser, scored, ADMIN_KEY)
    page = watched.page
    page.goto(scored.url + "/console/backtest")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=ARTIFACTS / "backtest-desktop.png", full_page=True)
    assert charts_are_drawn(page, "backtest") == 1
    rows = page.locator("#backtest-grades tbody tr")
    assert rows.count() == 13  # twelve grades and the portfolio
    lights = page.locator("#backtest-grades td.light-green, #backtest-grades td.light-yellow")
    lights_red = page.locator("#backtest-grades td.light-red")
    assert lights.count() + lights_red.count() >= 2
    assert page.locator("nav a[aria-current=page]").inner_text() == "Backtest"
    watched.clean()
    page.context.close()
    phone = logged_in(browser, scored, ADMIN_KEY, "phone")
    phone.page.goto(scored.url + "/console/backtest")
    phone.page.wait_for_load_state("networkidle")
    phone.page.screenshot(path=ARTIFACTS / "backtest-phone.png", full_page=True)
    fits = phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert fits, "the backtest page is wider than a phone's screen"
    phone.clean()
    phone.page.context.close()


def test_the_model_card_shows_the_backtest_on_outcomes_and_draws_the_vintages(
    browser: Browser,  # noqa: F811  (the fixture imported above)
    scored: Server,
) -> None:
    """The served version's card, as the console serves it (under the card's
    Content-Security-Policy): the lights of the loans it scored and the vintage chart, drawn
    by the page's code."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = logged_in(browser, scored, ADMIN_KEY)
    page = watched.page
    page.goto(scored.url + "/console/models/loan-default/versions/production/card")
    page.wait_for_load_state("networkidle")
    outcomes = page.locator("section#outcomes")
    outcomes.screenshot(path=ARTIFACTS / "card-backtest.png")
    plot = outcomes.locator("figure.chart#chart-vintages .plot svg")
    assert plot.count() == 1 and drawn_share(plot.screenshot()) > 0.02
    assert outcomes.locator("figure.chart#chart-vintages table.numbers tbody tr").count() > 0
    assert outcomes.locator("#backtest-grades tbody tr").count() == 13
    lights = outcomes.locator("td.light-green, td.light-yellow, td.light-red")
    assert lights.count() >= 2
    assert "dated by the time they were scored" in outcomes.inner_text()
    watched.clean()
    page.context.close()
