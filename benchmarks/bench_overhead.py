"""What a one-loan ``POST /v1/predict`` costs the server beyond the no-op route, in this tree
against a baseline tree, side by side (issue 25's target: >= 70% of the no-op's throughput).

    .venv/bin/python benchmarks/bench_overhead.py --baseline-src /path/to/other/tree/src

One model (the reference's: 500 rounds, depth 10, the public dataset or the built-in sample)
on one storage; for each of --repeat rounds, a ``loanrisk serve`` (2 workers) of each tree in
turn (which goes first alternates), the tree's sources first on ``PYTHONPATH``. Each server
gets wrk at --connections connections for --duration seconds on ``GET /healthz``, then on
``POST /v1/predict``. Per run: requests/s, the predict/no-op ratio, predict's p50 and p99,
and the server's CPU time per answered request of each route (its processes' user + system
time over the run, from /proc), and the mean batch the workers scored predict's loans in
(``loanrisk_scoring_batch_loans``). On a busy machine requests/s move with the neighbours; the
CPU per request moves less, and the no-op/predict ratio of CPU per request, both measured in
one run, is what the throughput ratio becomes when the server's CPU is the limit.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import tempfile
from pathlib import Path

import httpx2 as httpx

from _ab import parse_options
from bench_http import (
    _free_port,
    one_loan_script,
    prepare,
    run_wrk_counting_cpu,
    start_server,
)

THIS = str(Path(__file__).resolve().parents[1] / "src")


def one_run(root: Path, src: str, args: argparse.Namespace, script: Path) -> dict[str, float]:
    """Both routes against one fresh server of the tree at ``src``."""
    port = _free_port()
    server = start_server(root, port, args.workers, {"PYTHONPATH": src})
    try:
        base = f"http://127.0.0.1:{port}"
        noop = run_wrk_counting_cpu(f"{base}/healthz", args.connections, args.duration, None)
        scored = run_wrk_counting_cpu(f"{base}/v1/predict", args.connections, args.duration, script)
        batch = mean_batch(base)
    finally:
        server.terminate()
        server.wait(60)
    return {
        "noop_rps": noop["rps"],
        "rps": scored["rps"],
        "ratio": scored["rps"] / noop["rps"],
        "p50_ms": scored["p50_ms"],
        "p99_ms": scored["p99_ms"],
        "noop_cpu_us": noop["cpu_us"],
        "cpu_us": scored["cpu_us"],
        "cpu_ratio": noop["cpu_us"] / scored["cpu_us"],
        "non_2xx": scored["non_2xx"] + noop["non_2xx"],
        "batch": batch,
    }


def mean_batch(base: str) -> float:
    """The mean of ``loanrisk_scoring_batch_loans`` over the workers (NaN: a tree without
    it)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = dict(re.findall(r"^loanrisk_scoring_batch_loans_(sum|count) (\S+)$", text, re.M))
    if "count" not in found or not float(found["count"]):
        return math.nan
    return float(found["sum"]) / float(found["count"])


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"{name:<8} no-op {r['noop_rps']:>6.0f} req/s, predict {r['rps']:>6.0f} req/s "
        f"({r['ratio']:.1%}), p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; server CPU "
        f"no-op {r['noop_cpu_us']:.0f} us, predict {r['cpu_us']:.0f} us a request "
        f"(no-op/predict {r['cpu_ratio']:.1%}); {r['batch']:.1f} loans a batch; "
        f"non-2xx {r['non_2xx']:.0f}"
    )


def main() -> None:
    args = parse_options(
        __doc__.split("\n")[0],
        lambda parser: parser.add_argument(
            "--baseline-src", required=True, help="the baseline tree's src folder"
        ),
    )
    trees = {"before": str(Path(args.baseline_src).resolve()), "after": THIS}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        script = one_loan_script(Path(tmp))
        print(
            f"\nwrk -t1 -c{args.connections}, {args.duration} s per route, {args.workers} "
            f"workers, load average {os.getloadavg()[0]:.1f} at the start"
        )
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for round_ in range(args.repeat):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
            for name in order:
                result = one_run(root, trees[name], args, script)
                runs[name].append(result)
                print(f"  run {round_ + 1} " + line(name, result), flush=True)
        print(f"\nmedians of {args.repeat} (load average {os.getloadavg()[0]:.1f} at the end):")
        for name, results in runs.items():
            medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print("  " + line(name, medians))


if __name__ == "__main__":
    main()
