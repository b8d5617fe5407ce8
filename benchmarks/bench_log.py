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

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import httpx2 as httpx

from bench_http import DEFAULT_CSV, LUA, _free_port, prepare, run_wrk, start_server
from loanrisk.monitoring.log import read_log
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage


def dropped(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    lines = [x for x in text.splitlines()
             if x.startswith('loanrisk_prediction_log_rows_total{outcome="dropped"}')]  # fmt: skip
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make bench-tools` (Debian package wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        script = Path(tmp) / "predict.lua"
        script.write_text(LUA.format(body=json.dumps(builtin_schema().example_record())))
        results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        logged_before = 0
        print(f"\nwrk -t1 -c{args.connections}, {args.duration} s per run, "
              f"{args.workers} workers; POST /v1/predict, one loan")  # fmt: skip
        for run in range(1, args.repeat + 1):
            # Alternate which goes first: a drift of the shared machine hits both alike.
            for mode in ("off", "on") if run % 2 else ("on", "off"):
                port = _free_port()
                base = f"http://127.0.0.1:{port}"
                env = {"LOANRISK_PREDICTION_LOG": "true" if mode == "on" else "false"}
                server = start_server(root, port, args.workers, env)
                try:
                    result = run_wrk(f"{base}/v1/predict", args.connections, args.duration,
                                     script)  # fmt: skip
                    lost_to_buffer = dropped(base) if mode == "on" else 0.0
                finally:
                    server.terminate()
                    server.wait(60)
                line = (f"  run {run} log {mode:<3} {result['rps']:>8.0f} req/s  "
                        f"p99 {result['p99_ms']:>6.2f} ms")  # fmt: skip
                if mode == "on":
                    logged = len(read_log(FsspecStorage(str(root)), "prediction-log",
                                          model="loan-default"))  # fmt: skip
                    answered = f"{result['requests']:,.0f}"
                    line += (f"  answered {answered}, logged {logged - logged_before:,}, "
                             f"dropped {lost_to_buffer:.0f}")  # fmt: skip
                    logged_before = logged
                print(line, flush=True)
                results[mode].append(result)
        rps = {m: statistics.median(r["rps"] for r in results[m]) for m in results}
        p99s = {m: statistics.median(r["p99_ms"] for r in results[m]) for m in results}
        print(f"\nmedians: off {rps['off']:.0f} req/s (p99 {p99s['off']:.2f} ms), "
              f"on {rps['on']:.0f} req/s (p99 {p99s['on']:.2f} ms): on/off "
              f"{rps['on'] / rps['off']:.1%} of the throughput")  # fmt: skip


if __name__ == "__main__":
    main()
