"""The prediction log's cost: HTTP scored throughput with the log's write-ahead files against
the buffered log alone (or, with --baseline off, the log on against off).

    .venv/bin/python benchmarks/bench_log.py --duration 10 --repeat 3
    .venv/bin/python benchmarks/bench_log.py --duration 10 --repeat 3 --baseline off
    .venv/bin/python benchmarks/bench_log.py --in-process

(--in-process: no server, the CPU one one-loan call costs the request path and the
background writer, buffered against written ahead, medians of 5 runs of 20,000 calls.)

One real ``loanrisk serve`` (2 workers) at a time, on one storage with the reference's model
(500 rounds, depth 10; the public dataset, or the built-in sample when it is absent), under
wrk at --connections connections for --duration seconds: the two modes --repeat times
interleaved (which goes first alternates). Prints each run's requests/s and p99, the
medians and the ratio (issue 26's target for the write-ahead files: at least 95% of the
buffered log's throughput at 32 connections; issue 12's for the log: at least 90% of none),
and what the log holds after each logged run against the responses wrk counted (lost: 0 on
a clean shutdown; the requests still in flight when wrk stops are answered and logged but not
counted by wrk) and its dropped counter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

import _ab
from _ab import parse_options, side_by_side
from bench_http import one_loan_script, prepare, run_wrk_counting_cpu
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


def in_process(calls: int = 20_000, repeat: int = 5) -> None:
    """CPU per one-loan call of :meth:`PredictionLog.record` and of the background writer's
    conversion and write, buffered against written ahead (interleaved runs, medians)."""
    from loanrisk.data.process import process_dataset
    from loanrisk.data.sample import generate_sample
    from loanrisk.inference.scorer import Scorer
    from loanrisk.monitoring.log.writer import PredictionLog
    from loanrisk.registry import ModelRegistry
    from loanrisk.schema import validate_frame
    from loanrisk.storage import MemoryStorage
    from loanrisk.training.job import TrainingRequest, run_training

    storage = MemoryStorage()
    process_dataset(validate_frame(generate_sample(1_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    scorer = Scorer(ModelRegistry(storage).load("loan-default", "production"))
    loans = [{**builtin_schema().example_record(), "id": "L-1"}]
    result = scorer.score_records(loans)
    runs: dict[str, list[tuple[float, float]]] = {"buffered": [], "write-ahead": []}
    for run in range(2 * repeat):
        mode = ("buffered", "write-ahead")[run % 2]
        with tempfile.TemporaryDirectory() as wal:
            log = PredictionLog(
                MemoryStorage(),
                "log",
                flush_seconds=3600,
                flush_rows=10**9,
                max_buffered_rows=10**9,
                write_ahead=wal if mode == "write-ahead" else None,
            )
            log.convert_seconds = 3600  # converted at the flush below only
            start = time.process_time()
            for _ in range(calls):
                log.scored_records(scorer, loans, result, source="v1", request_id="r")
            recorded = time.process_time()
            log.flush()
            runs[mode].append(
                ((recorded - start) / calls * 1e6, (time.process_time() - recorded) / calls * 1e6)
            )
            log.close()
    for mode, measured in runs.items():
        request = statistics.median(m[0] for m in measured)
        background = statistics.median(m[1] for m in measured)
        print(
            f"{mode:<12} request path {request:5.1f} us CPU per call, background writer "
            f"{background:5.1f} us, total {request + background:5.1f} us"
        )


def main() -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--baseline", choices=("buffered", "off"), default="buffered")
    pre.add_argument("--in-process", action="store_true")
    known, rest = pre.parse_known_args()
    sys.argv[1:] = rest
    if known.in_process:
        in_process()
        return
    args = parse_options(__doc__.split("\n")[0])
    # the server's CPU per request leaves out each run's last write of the log, made at
    # shutdown, which favours the buffered log
    _ab.run_wrk = run_wrk_counting_cpu  # type: ignore[attr-defined]
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        script = one_loan_script(Path(tmp))
        logged_before = 0

        def after(mode: str, base: str, result: dict[str, float]) -> Callable[[], str]:
            lost_to_buffer = dropped(base)
            cpu.setdefault(mode, []).append(result["cpu_us"])

            def line() -> str:  # the server has stopped: its last rows are written
                nonlocal logged_before
                if mode == "log off":
                    return ""
                logged = len(
                    read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")
                )
                text = (
                    f"  server CPU {result['cpu_us']:,.0f} us/request,"
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
        modes = (
            {
                "log off": {"LOANRISK_PREDICTION_LOG": "false"},
                "log on": {"LOANRISK_PREDICTION_LOG": "true", "LOANRISK_LOG_WRITE_AHEAD": "false"},
            }
            if known.baseline == "off"
            else {
                "buffered": {"LOANRISK_LOG_WRITE_AHEAD": "false"},
                "write-ahead": {"LOANRISK_LOG_WRITE_AHEAD": "true"},
            }
        )
        side_by_side(root, script, modes, args, after=after)
        first, second = (statistics.median(v) for v in cpu.values())
        names = list(cpu)
        print(
            f"server CPU per request (median): {names[0]} {first:,.0f} us, {names[1]} "
            f"{second:,.0f} us: {names[1]}/{names[0]} {second / first:.1%} of the CPU, "
            f"{first / second:.1%} of the throughput when the cores are the limit"
        )


if __name__ == "__main__":
    main()
