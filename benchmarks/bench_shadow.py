"""Shadow scoring's cost: HTTP scored throughput and p99 with a shadow alias on against off.

    .venv/bin/python benchmarks/bench_shadow.py --duration 10 --repeat 3

One real ``loanrisk serve`` (2 workers, the prediction log on as deployed) at a time, on one
storage with two models of the reference's size (500 rounds, depth 10; the public dataset,
or the built-in sample when it is absent): version 1 in ``production``, version 2 (another
seed) in ``challenger``. Under wrk at --connections connections for --duration seconds,
with one loan per request: shadow off, and shadow on (``LOANRISK_SHADOW_ALIAS=challenger``),
--repeat times interleaved. Prints each run's requests/s and p99, what the shadow scored
and dropped (its queue full) in the run, the medians and the ratios (issue 13's target: p99
grows by at most 25% at 32 connections).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from _ab import parse_options, side_by_side
from bench_http import one_loan_script, prepare
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training


def shadow_rows(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("loanrisk_shadow_rows_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> None:
    args = parse_options(__doc__.split("\n")[0])
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the champion and a challenger ({args.rounds} rounds each) ...", flush=True)
        prepare(root, args.data, args.rounds)
        storage = FsspecStorage(str(root))
        run_training(
            TrainingRequest(rounds=args.rounds, seed=1, promote=False),
            storage,
            nthread=len(os.sched_getaffinity(0)),
        )
        ModelRegistry(storage, "models").promote("loan-default", 2, "challenger")
        script = one_loan_script(Path(tmp))

        def after(mode: str, base: str, result: dict[str, float]) -> Callable[[], str]:
            rows = shadow_rows(base)
            text = (
                f"  shadow scored {rows.get('scored', 0):,.0f}, dropped "
                f"{rows.get('dropped', 0):,.0f}, failed {rows.get('failed', 0):,.0f}"
                if mode == "shadow on"
                else ""
            )
            return lambda: text

        print(
            f"\nwrk -t1 -c{args.connections}, {args.duration} s per run, "
            f"{args.workers} workers; POST /v1/predict, one loan"
        )
        modes = {"shadow off": {}, "shadow on": {"LOANRISK_SHADOW_ALIAS": "challenger"}}
        side_by_side(root, script, modes, args, after=after)


if __name__ == "__main__":
    main()
