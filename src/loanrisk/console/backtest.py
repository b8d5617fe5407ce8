"""The console's backtest page (docs/validation.md): the served version's traffic lights per
grade and for the portfolio, and its vintage chart, over a window of its scored loans (read
from the storage, blocking: the route runs it off the event loop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loanrisk.errors import Conflict, LoanRiskError, NotFound
from loanrisk.registry.models import ModelRegistry
from loanrisk.reporting.charts import Chart, vintage_curves
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage
from loanrisk.validation.window import BacktestReport, Window, backtest_for

#: The page's windows, in days.
DAY_CHOICES = (90, 180, 365, 730)


@dataclass(frozen=True)
class BacktestPage:
    """What the page shows: the served version's backtest and vintage chart, or why not."""

    model: str
    version: int | None
    days: int
    problem: str | None
    report: BacktestReport | None
    chart: Chart | None


def backtest_page(
    storage: Storage, registry: ModelRegistry, settings: Settings, name: str, days: int
) -> BacktestPage:
    """The backtest of the version the served alias names, over the last ``days`` days."""
    until = datetime.now(UTC)
    try:
        version = registry.resolve(name, settings.model_alias)
    except (NotFound, Conflict) as exc:
        return BacktestPage(name, None, days, exc.message, None, None)
    where = Window.of(storage, settings, until - timedelta(days=days), until)
    try:
        report = backtest_for(where, registry, name, version, max_rows=settings.monitor_max_rows)
    except LoanRiskError as exc:
        return BacktestPage(name, version, days, exc.message, None, None)
    chart = vintage_curves(report.vintages) if report.vintages else None
    return BacktestPage(name, version, days, None, report, chart)
