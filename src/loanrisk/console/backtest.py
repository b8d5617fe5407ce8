"""The console's backtest page (docs/validation.md): the served version's traffic lights per
grade and for the portfolio, and its vintage charts, over a window of its scored loans (built
by :func:`loanrisk.reporting.outcomes.outcome_backtest`, as the model card's section is; read
from the storage, blocking: the route runs it off the event loop)."""

from __future__ import annotations

from dataclasses import dataclass

from loanrisk.registry.models import ModelRegistry
from loanrisk.reporting.outcomes import OutcomeBacktest, outcome_backtest
from loanrisk.settings import Settings

#: The page's windows, in days.
DAY_CHOICES = (90, 180, 365, 730)


@dataclass(frozen=True)
class BacktestPage:
    """What the page shows: the served version's backtest and vintage charts, or why not."""

    model: str
    days: int
    found: OutcomeBacktest


def backtest_page(
    registry: ModelRegistry, settings: Settings, name: str, days: int
) -> BacktestPage:
    """The backtest of the version the served alias names, over the last ``days`` days."""
    return BacktestPage(
        name, days, outcome_backtest(registry, settings, name, settings.model_alias, days=days)
    )
