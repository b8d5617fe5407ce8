"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against a
real ``loanrisk serve``, with the network limited to 127.0.0.1 (any other request is aborted
and fails the test). Each page renders without console errors or failed requests, its charts
are drawn (a screenshot of each chart area is not blank), it fits a phone's width, and a
screenshot of it is kept in ``test-artifacts/console/``. Then the flows: log in and promote,
upload a CSV and watch its job finish, upload loans of a stored schema chosen in the form,
cancel a running job, move by keyboard, and open a model card from ``file://`` with the
network off."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage
from tests.builtin import EXAMPLE_LOAN
from tests.schema.second import SECOND, second_loans

from ..conftest import free_port, wait_until_serving
from .conftest import ADMIN_KEY, KEYS, SCORE_KEY
from .png import drawn_share

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = (
    Path(os.environ.get("LOANRISK_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
    / "console"
)
#: The flags Chromium needs here: no sandbox as root, and no calls home on a closed network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@dataclass
class Server:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, key: str = ADMIN_KEY, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def start(root: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "LOANRISK_API_KEYS": KEYS,
        "LOANRISK_NTHREAD": "1",
        "LOANRISK_LOG_FLUSH_SECONDS": "0.2",
        "LOANRISK_SHADOW_ALIAS": "challenger",
        "LOANRISK_RELOAD_INTERVAL": "0.5",
    }
    process = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(process, port, "loanrisk serve", timeout=60)
    return Server(f"http://127.0.0.1:{port}", root, process)


def stop(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()


def with_history(history: Path, target: Path) -> Path:
    """A copy of the shared history with v2 as the challenger (shadowed by the service)."""
    root = Path(shutil.copytree(history, target))
    ModelRegistry(FsspecStorage(str(root)), "models").promote("loan-default", 2, "challenger")
    return root


def plant_bad_items(root: Path, outside: Path) -> None:
    """One bad item in each listing and report: the pages must name them, and render clean."""
    (outside / "secret.json").write_text('{"version": 1}')
    (root / "models" / "evil").symlink_to(outside)
    (root / "data" / "datasets" / "evil").symlink_to(outside)
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / "job-20000101T000000Z-train-garbage.json").write_text('{"garbage": tru')
    log = sorted({p.parent for p in root.glob("prediction-log/**/*.parquet")})[0]
    (log / "garbage.parquet").write_bytes(b"PAR1 not a parquet file")


#: The pages that list or report, and the bad item each names in its notice.
NAMED = {
    "models": "models/evil",
    "datasets": "data/datasets/evil",
    "jobs": "jobs/job-20000101T000000Z-train-garbage.json",
    "monitoring": "garbage.parquet",
}


@pytest.fixture(scope="module")
def server(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service with loans scored today (so monitoring has a day of drift to draw)."""
    running = start(with_history(history, tmp_path_factory.mktemp("browser") / "store"))
    try:
        loans = [
            {**EXAMPLE_LOAN, "id": f"loan-{i}", "person_income": 20_000 + 1_000 * i}
            for i in range(60)
        ]
        answer = running.api("POST", "/v1/predict", SCORE_KEY, json={"records": loans})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while not list(running.root.glob("prediction-log/**/*.parquet")):
            assert time.monotonic() < deadline, "the prediction log was never written"
            time.sleep(0.2)
        plant_bad_items(running.root, tmp_path_factory.mktemp("outside"))
        yield running
    finally:
        stop(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make` installs requirements/debian.txt"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page with what went wrong on it: console errors, failed and foreign requests."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def clean(self) -> None:
        assert not self.problems, self.problems
        assert self.page.evaluate("window.hacked === undefined"), "injected markup ran"


def watch(context: BrowserContext, origin: str) -> Watched:
    page = context.new_page()
    watched = Watched(page)

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith((origin, "data:", "file:")):
            route.continue_()
        else:
            watched.problems.append(f"request outside 127.0.0.1: {url}")
            route.abort()

    page.route("**/*", only_loopback)
    page.on("console", lambda m: m.type == "error" and watched.problems.append(m.text))
    page.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))
    # ERR_ABORTED: the browser dropped a request itself (a favicon when the page moved on);
    # requests that leave 127.0.0.1 are aborted by the route above and recorded there.
    page.on(
        "requestfailed",
        lambda r: (
            "ERR_ABORTED" not in str(r.failure)
            and watched.problems.append(f"failed: {r.url} {r.failure}")
        ),
    )
    page.on(
        "response", lambda r: r.status >= 400 and watched.problems.append(f"{r.status}: {r.url}")
    )
    return watched


def logged_in(browser: Browser, server: Server, key: str, viewport: str = "desktop") -> Watched:
    context = browser.new_context(viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    watched = watch(context, server.url)
    watched.page.goto(server.url + "/")
    assert "/console/login" in watched.page.url
    watched.page.fill("#key", key)
    watched.page.click("form.login button[type=submit]")
    watched.page.wait_for_url(server.url + "/console/")
    return watched


def charts_are_drawn(page: Page, where: str) -> int:
    """Every chart's plot has a non-blank screenshot and a table of its numbers."""
    figures = page.locator("figure.chart")
    for i in range(figures.count()):
        figure = figures.nth(i)
        plot = figure.locator(".plot svg")
        share = drawn_share(plot.screenshot())
        assert share > 0.02, f"{where}: chart {i} looks blank ({share:.1%} drawn)"
        assert figure.locator("table.numbers tbody tr").count() > 0, f"{where}: chart {i} table"
    return figures.count()


PAGES = {
    "models": ("/console/", 0),
    "version": ("/console/models/loan-default/versions/2", 6),
    "card": ("/console/models/loan-default/versions/2/card", 6),
    "datasets": ("/console/datasets", 0),
    "jobs": ("/console/jobs", 0),
    "monitoring": ("/console/monitoring", 1),
    "docs": ("/docs", 0),
    "redoc": ("/redoc", 0),
}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_renders_offline_and_draws_its_charts(
    browser: Browser, server: Server, viewport: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = logged_in(browser, server, ADMIN_KEY, viewport)
    page = watched.page
    (dataset,) = (p.parent.name for p in server.root.glob("data/datasets/*/manifest.json"))
    pages = {**PAGES, "dataset": (f"/console/datasets/{dataset}", 0)}
    for name, (path, charts) in pages.items():
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        if name == "docs":
            page.wait_for_selector(".swagger-ui .info .title")
        elif name == "redoc":
            page.wait_for_selector("redoc h1, [role=navigation]")
        page.screenshot(path=ARTIFACTS / f"{name}-{viewport}.png", full_page=True)
        assert charts_are_drawn(page, name) == charts, name
        if name == "dataset":  # the characteristic analysis: IV ranking and bins
            assert page.locator("#iv-ranking tbody tr").count() > 0
        if name in NAMED:
            notice = page.locator("section.problems")
            assert notice.is_visible(), f"{name}: no notice of the bad items"
            assert NAMED[name] in notice.inner_text(), name
        if name not in ("docs", "redoc"):
            fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert fits, f"{name} is wider than a {viewport} screen"
        watched.clean()
    page.context.close()


def test_log_in_promote_and_see_the_alias_move(
    browser: Browser, history: Path, tmp_path: Path
) -> None:
    server = start(with_history(history, tmp_path / "store"))
    try:
        watched = logged_in(browser, server, ADMIN_KEY)
        page = watched.page
        row = page.locator("table.versions tr[data-version='2']")
        assert "production" not in row.inner_text()
        form = page.locator("form.promote")
        form.locator("select[name=version]").select_option("2")
        form.locator("input[name=reason]").fill("challenger won in the shadow")
        form.locator("button[type=submit]").click()  # unconfirmed: the browser holds it back
        assert page.url.endswith("/console/")
        form.locator("input[name=confirm]").check()
        form.locator("button[type=submit]").click()
        page.wait_for_selector("p.flash-ok")
        assert "now points at version 2" in page.locator("p.flash-ok").inner_text()
        assert "production" in page.locator("table.versions tr[data-version='2']").inner_text()
        aliases = server.api("GET", "/v1/models/loan-default").json()["aliases"]
        assert aliases["production"]["version"] == 2
        assert aliases["production"]["updated_by"] == "alice"
        assert aliases["production"]["reason"] == "challenger won in the shadow"
        watched.clean()
        viewer = logged_in(browser, server, SCORE_KEY)
        assert viewer.page.locator("form.promote").count() == 0
        assert "read-only" in viewer.page.locator("header").inner_text()
    finally:
        stop(server)


def test_upload_a_csv_and_watch_the_job_finish(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    csv = tmp_path / "new-loans.csv"
    generate_sample(2_000, seed=11).to_csv(csv, index=False)
    watched = logged_in(browser, server, ADMIN_KEY)
    page = watched.page
    page.goto(server.url + "/console/datasets")
    page.set_input_files("#file", str(csv))
    page.click("form.upload button[type=submit]")
    page.wait_for_url("**/console/jobs/job-*")
    # (the pages' policy forbids eval, so waits are selectors, not wait_for_function)
    page.locator("#job-state", has_text="succeeded").wait_for(timeout=90_000)
    page.wait_for_selector("#job-result a")  # the page reloaded with the new dataset's link
    page.screenshot(path=ARTIFACTS / "job-succeeded.png", full_page=True)
    page.click("#job-result a")
    assert "new-loans.csv" in page.locator("main").inner_text()
    watched.clean()


def test_choose_a_stored_schema_for_an_upload(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    stored = server.api("PUT", "/v1/schemas/second", json=SECOND)
    assert stored.status_code == 200, stored.text
    csv = tmp_path / "cards.csv"
    second_loans(1_000).to_csv(csv, index=False)
    watched = logged_in(browser, server, ADMIN_KEY, "phone")
    page = watched.page
    page.goto(server.url + "/console/datasets")
    assert page.input_value("#schema_name") == "credit-risk"  # the built-in by default
    page.set_input_files("#file", str(csv))
    page.select_option("#schema_name", "second")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.click("form.upload button[type=submit]")
    page.wait_for_url("**/console/jobs/job-*")
    page.locator("#job-state", has_text="succeeded").wait_for(timeout=90_000)
    page.wait_for_selector("#job-result a")
    page.click("#job-result a")
    assert "cards.csv" in page.locator("main").inner_text()
    assert page.locator("xpath=//tr[th='Schema']/td").inner_text().startswith("second ")
    page.screenshot(path=ARTIFACTS / "dataset-second-schema.png", full_page=True)
    watched.clean()


def test_cancel_a_running_job_from_its_page(browser: Browser, server: Server) -> None:
    started = server.api(
        "POST",
        "/v1/models/loan-default/versions",
        json={"rounds": 100_000, "params": {"max_depth": 8}},
    )
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    watched = logged_in(browser, server, ADMIN_KEY)
    page = watched.page
    page.goto(f"{server.url}/console/jobs/{job}")
    page.locator("#job-stage", has_text="train").wait_for(timeout=60_000)  # live progress
    page.click("#cancel button")
    page.locator("#job-state", has_text="cancelled").wait_for(timeout=60_000)
    assert server.api("GET", f"/v1/jobs/{job}").json()["state"] == "cancelled"
    watched.clean()


FOCUSED = "(e => e.tagName + ':' + (e.name || e.textContent || '').trim())(document.activeElement)"


def test_the_console_works_from_the_keyboard(browser: Browser, server: Server) -> None:
    watched = logged_in(browser, server, ADMIN_KEY)
    page = watched.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUSED))
    for wanted in (
        "A:Datasets",
        "A:Jobs",
        "A:Monitoring",
        "BUTTON:Log out",
        "SELECT:version",
        "BUTTON:Promote",
    ):
        assert any(r.startswith(wanted) for r in reached), (wanted, reached)
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused element shows no focus ring"


def test_the_model_card_shows_every_plot_from_a_file_with_the_network_off(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    card = tmp_path / "card.html"
    card.write_text(server.api("GET", "/v1/models/loan-default/versions/2/card").text)
    context = browser.new_context(viewport=VIEWPORTS["desktop"], offline=True)  # type: ignore[arg-type]
    watched = watch(context, "file://")
    watched.page.goto(card.as_uri())
    assert charts_are_drawn(watched.page, "card") == 6
    watched.page.screenshot(path=ARTIFACTS / "card-offline.png", full_page=True)
    assert json.loads(watched.page.evaluate("JSON.stringify(document.title)")).startswith(
        "Model card: loan-default version 2"
    )
    watched.clean()
    context.close()
