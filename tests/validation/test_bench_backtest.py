"""The backtest benchmark still runs (tiny size; nothing here is timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_backtest.py"


@pytest.mark.slow  # six fresh interpreters and a small model trained: ~10-25 s
def test_the_backtest_benchmark_prints_both_ways_and_the_memory_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "20000", "--chunk", "7000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "loanrisk, chunks of 7,000" in done.stdout
    assert "all loans at once" in done.stdout
    assert "memory above the floor, whole / chunked:" in done.stdout
    # the window through backtest_for against the in-memory path, the same loans counted
    assert "backtest_for (compact, streamed)" in done.stdout
    assert "in memory (pandas, joined)" in done.stdout
    assert "loans counted: 20,000;" in done.stdout
