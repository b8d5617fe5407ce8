"""Charts stay legible on a lender's own data: a model of 32 attributes named in 40
characters, 60 of its inputs one-hot (tests/reporting/long_names.py), served by a real
``loanrisk serve`` and shown in headless Chromium on its version page, its model card and the
monitoring page, on a desktop and a phone.

Measured in the browser, for every chart: no two texts overlap (each text's box, rotated as
drawn, against every other), no text leaves the picture, and the plot area keeps a fair share
of it. The importance chart has one bar per attribute up to 15 and one for the others, each
label titled with the attribute's whole title. Screenshots go to ``test-artifacts/console/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from loanrisk.data.process import process_dataset
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.reporting.long_names import PROTECTED, long_loans, long_schema

from .conftest import ADMIN_KEY, SCORE_KEY
from .test_browser import ARTIFACTS, CHROMIUM, FLAGS, Server, logged_in, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: A plot keeps at least this share of its picture's width and height.
PLOT_SHARE = 0.4
#: Texts may touch: boxes overlapping by less than this (CSS px) do not count.
TOUCH = 0.5

#: For every chart of the page: its key, the picture's box (the chart as drawn, not the svg
#: element, which CSS may make wider than its picture), the plot area's box, its bars, and
#: every drawn text with the four corners of its box as drawn (rotation included), in CSS
#: pixels.
GEOMETRY = """() => [...document.querySelectorAll("figure.chart")].map(figure => {
  const svg = figure.querySelector(".plot svg");
  const rect = e => { const r = e.getBoundingClientRect();
                      return {x: r.x, y: r.y, width: r.width, height: r.height}; };
  const texts = [...svg.querySelectorAll("text")].filter(t => {
    const style = getComputedStyle(t);
    return t.textContent.trim() && style.display !== "none" && style.visibility !== "hidden"
      && style.opacity !== "0" && t.getBoundingClientRect().width > 0;
  }).map(t => {
    const b = t.getBBox(), m = t.getScreenCTM();
    const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height],
                     [b.x, b.y + b.height]]
      .map(([x, y]) => { const p = new DOMPoint(x, y).matrixTransform(m); return [p.x, p.y]; });
    const lines = [...t.querySelectorAll("tspan")].map(s => s.textContent);
    const title = t.nextElementSibling && t.nextElementSibling.tagName === "title"
      ? t.nextElementSibling.textContent : null;
    return {text: t.textContent, lines, title, corners,
            px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b)};
  });
  const bars = [...svg.querySelectorAll(".series .bar rect")].map(rect);
  return {key: figure.id.replace("chart-", ""), svg: rect(svg.querySelector(".graph > rect")),
          plot: rect(svg.querySelector(".plot > rect.background")), texts, bars};
})"""


def build_lender(root: Path) -> Path:
    storage = FsspecStorage(str(root))
    schema = long_schema()
    loans = validate_frame(long_loans(), schema=schema)
    process_dataset(loans, storage, source="lender-loans.csv", schema=schema)
    run_training(TrainingRequest(rounds=30, params={"max_depth": 4}), storage, nthread=1)
    return root


@pytest.fixture(scope="module")
def lender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service over the long-names model, with loans of its schema scored today."""
    running = start(build_lender(tmp_path_factory.mktemp("lender") / "store"))
    try:
        loans = long_loans(60, seed=9).drop(columns=["defaulted", PROTECTED])
        records = loans.to_dict("records")
        answer = running.api("POST", "/v1/predict", SCORE_KEY, json={"records": records})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while not list(running.root.glob("prediction-log/**/*.parquet")):
            assert time.monotonic() < deadline, "the prediction log was never written"
            time.sleep(0.2)
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


Point = tuple[float, float]


def overlap(a: list[Point], b: list[Point]) -> float:
    """How far two convex quadrilaterals overlap: the smallest overlap of their projections
    on the normals of their edges (separating axes); 0 or less when apart."""
    depth = float("inf")
    for quad in (a, b):
        for (x1, y1), (x2, y2) in zip(quad, quad[1:] + quad[:1], strict=True):
            nx, ny = y1 - y2, x2 - x1
            norm = (nx * nx + ny * ny) ** 0.5
            if norm == 0:
                continue
            pa = [(x * nx + y * ny) / norm for x, y in a]
            pb = [(x * nx + y * ny) / norm for x, y in b]
            depth = min(depth, min(max(pa), max(pb)) - max(min(pa), min(pb)))
    return depth


def inside(corners: list[Point], box: dict[str, float], slack: float = 1.0) -> bool:
    return all(
        box["x"] - slack <= x <= box["x"] + box["width"] + slack
        and box["y"] - slack <= y <= box["y"] + box["height"] + slack
        for x, y in corners
    )


def problems_of(chart: dict[str, Any], *, min_px: float) -> list[str]:
    """What makes ``chart`` (one entry of :data:`GEOMETRY`) hard to read."""
    out = []
    key, svg, plot, texts = chart["key"], chart["svg"], chart["plot"], chart["texts"]
    for a, b in combinations(texts, 2):
        if overlap(a["corners"], b["corners"]) > TOUCH:
            out.append(f"{key}: {a['text']!r} overlaps {b['text']!r}")
    out += [
        f"{key}: {t['text']!r} leaves the picture" for t in texts if not inside(t["corners"], svg)
    ]
    out += [f"{key}: {t['text']!r} is drawn at {t['px']:.1f} px" for t in texts if t["px"] < min_px]
    for side in ("width", "height"):
        if plot[side] < PLOT_SHARE * svg[side]:
            out.append(f"{key}: the plot's {side} is {plot[side]:.0f} of {svg[side]:.0f} px")
    return out


def importance_is_per_attribute(page: Page, chart: dict[str, Any]) -> None:
    """16 bars (15 attributes and the others), each as tall as a line of text, and each
    label's title the attribute's title in the table beside it."""
    table = page.locator("#chart-importance table.numbers tbody tr th")
    attributes = [(table.nth(i).text_content() or "").strip() for i in range(table.count())]
    assert set(attributes) <= {c.label_text for c in long_schema().features}, attributes
    assert len(chart["bars"]) == 16 < len(attributes)
    labels = [t for t in chart["texts"] if t["lines"]][::-1]  # drawn from the bottom up
    assert [t["title"] for t in labels][:15] == attributes[:15]
    assert labels[15]["title"].startswith(f"{len(attributes) - 15} other attributes: ")
    line = max(t["px"] for t in labels)
    assert min(bar["height"] for bar in chart["bars"]) > line, "bars thinner than their labels"


PAGES = {
    "version": "/console/models/loan-default/versions/1",
    "card": "/console/models/loan-default/versions/1/card",
    "monitoring": "/console/monitoring",
}


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_charts_of_a_model_with_long_names_are_legible(
    browser: Browser, lender: Server, viewport: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = logged_in(browser, lender, ADMIN_KEY, viewport)
    page = watched.page
    found = []
    for name, path in PAGES.items():
        page.goto(lender.url + path)
        page.wait_for_load_state("networkidle")
        shot = ARTIFACTS / f"long-names-{name}-{viewport}.png"
        page.screenshot(path=shot, full_page=True)
        charts: list[dict[str, Any]] = page.evaluate(GEOMETRY)
        assert charts, f"{name}: no chart"
        # a phone shrinks every chart to its width: legible when zoomed, not at a glance
        min_px = 9.0 if viewport == "desktop" else 5.0
        for chart in charts:
            found += problems_of(chart, min_px=min_px)
        if name != "monitoring":
            keys = [c["key"] for c in charts]
            assert keys == [
                "roc",
                "calibration",
                "probabilities",
                "confusion",
                "importance",
                f"parity-{PROTECTED}",
            ], keys
            importance_is_per_attribute(page, charts[4])
        else:
            assert [c["key"] for c in charts] == ["drift"]
        for chart in charts:  # the charts that name attributes, for a person to look at
            if chart["key"] in ("importance", "drift", f"parity-{PROTECTED}"):
                figure = page.locator(f"figure.chart#chart-{chart['key']}")
                figure.screenshot(
                    path=ARTIFACTS / f"long-names-{name}-{viewport}-"
                    f"{chart['key'].split('-')[0]}.png"
                )
    assert not found, "\n".join(found)
    watched.clean()
    page.context.close()
