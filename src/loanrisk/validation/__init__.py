"""PD model validation (docs/validation.md): backtests per grade and for the portfolio,
migration between two gradings, the backtest per segment and vintages. Transport-free: plain
arrays in, typed results out; every statistic names its source and is held to meliora or scipy
in tests/validation/."""

from __future__ import annotations

from loanrisk.validation.backtest import Backtest, BacktestAccumulator, backtest
from loanrisk.validation.migration import Migration, migration, migration_from_counts
from loanrisk.validation.segments import SegmentAccumulator, Segments, backtest_segments
from loanrisk.validation.vintages import Vintages, vintages

__all__ = [
    "Backtest",
    "BacktestAccumulator",
    "Migration",
    "SegmentAccumulator",
    "Segments",
    "Vintages",
    "backtest",
    "backtest_segments",
    "migration",
    "migration_from_counts",
    "vintages",
]
