"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


def time_calls(call: Callable[[], object], calls: int) -> list[float]:
    """Microseconds taken by each of ``calls`` calls."""
    out = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def run_child(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a fresh Python (its own peak RSS) and parse its last line as JSON."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
