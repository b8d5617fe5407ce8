"""A version's backtest on its outcomes, as the console's Backtest page and the model card
show it (docs/validation.md): the traffic lights per grade and for the portfolio over a window
of the loans it scored, and the vintage charts (by count, and by amount when the schema
declares an amount column). One builder for both, so the page and the card show the same
figures drawn by the same code. Reads the storage (blocking: callers run it off the event
loop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loanrisk.errors import LoanRiskError
from loanrisk.registry.models import ModelRegistry
from loanrisk.reporting.charts import Chart, vintage_curves
from loanrisk.settings import Settings
from loanrisk.validation.window import BacktestReport, VintageReport, Window, backtest_for


@dataclass(frozen=True)
class OutcomeBacktest:
    """A version's backtest over ``days`` days up to ``until``, its vintage ``charts``, or
    the ``problem`` that stopped it (a message for people)."""

    version: int | None
    days: int
    until: datetime
    problem: str | None
    report: BacktestReport | None
    charts: list[Chart]


def vintage_charts(found: VintageReport | None) -> list[Chart]:
    """The vintage curves by count and, when the vintages are by amount, by amount."""
    if found is None:
        return []
    charts = [vintage_curves(found)]
    if found.by_amount:
        charts.append(vintage_curves(found, by_amount=True))
    return [c for c in charts if c is not None]


def outcome_backtest(
    registry: ModelRegistry,
    settings: Settings,
    name: str,
    ref: str | int,
    *,
    days: int,
    until: datetime | None = None,
) -> OutcomeBacktest:
    """The backtest of version ``ref`` of ``name`` over the ``days`` days before ``until``
    (default: now), from the log and outcomes on the registry's storage (the directories
    ``settings`` name); a stored item that cannot be read is the result's ``problem``, never
    an exception."""
    end = until or datetime.now(UTC)
    storage = registry.storage
    where = Window.of(storage, settings, end - timedelta(days=days), end)
    try:
        version = registry.resolve(name, ref)
        report = backtest_for(where, registry, name, version, max_rows=settings.monitor_max_rows)
    except LoanRiskError as exc:
        return OutcomeBacktest(None, days, end, exc.message, None, [])
    return OutcomeBacktest(version, days, end, None, report, vintage_charts(report.vintages))
