"""The prediction log's cost: HTTP scored throughput with the log on against off.

    .venv/bin/python benchmarks/bench_log.py --duration 10 --repeat 3

One real ``loanrisk serve`` (2 workers) at a time, on one storage with the reference's model
(500 rounds, depth 10; the public dataset, or the built-in sample when it is absent), under
wrk at --connections connections for --duration seconds: log off and on, --repeat times
interleaved (which goes first alternates). Prints each run's requests/s and p99, the
medians and the ratio on/off (issue 12's target: at least 90% at 32 connections), and what
the log holds after each logged run
against the responses wrk counted (lost: 0 on a clean shutdown; the requests still in flight
when wrk stops are answered and logged but not counted by wrk) and its dropped counter.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from _ab import parse_options, side_by_side
from bench_http import LUA, prepare
from loanrisk.monitoring.log.reader import read_log
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage


def dropped(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    lines = [
        x
        for x in text.splitlines()
        if x.startswith('loanrisk_prediction_log_rows_total{outcome="dropped"}')
    ]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def main() -> None:
    args = parse_options(__doc__.split("\n")[0])
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        script = Path(tmp) / "predict.lua"
        script.write_text(LUA.format(body=json.dumps(builtin_schema().example_record())))
        logged_before = 0

        def after(mode: str, base: str, result: dict[str, float]) -> Callable[[], str]:
            lost_to_buffer = dropped(base)

            def line() -> str:  # the server has stopped: its last rows are written
                nonlocal logged_before
                if mode != "log on":
                    return ""
                logged = len(
                    read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")
                )
                text = (
                    f"  answered {result['requests']:,.0f}, logged "
                    f"{logged - logged_before:,}, dropped {lost_to_buffer:.0f}"
                )
                logged_before = logged
                return text

            return line

        print(
            f"\nwrk -t1 -c{args.connections}, {args.duration} s per run, "
            f"{args.workers} workers; POST /v1/predict, one loan"
        )
        modes = {
            "log off": {"LOANRISK_PREDICTION_LOG": "false"},
            "log on": {"LOANRISK_PREDICTION_LOG": "true"},
        }
        side_by_side(root, script, modes, args, after=after)


if __name__ == "__main__":
    main()
