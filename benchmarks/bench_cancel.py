"""Bounded, cancellable scoring against the code before it, side by side: nothing got slower.

    git archive <before> src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/bench_cancel.py --baseline-src /tmp/before/src

Two real ``loanrisk serve`` (one worker each, in turn, interleaved over --repeat runs so a
drift of the shared machine hits both alike): "before" imports the package from
--baseline-src, "after" from this tree; both serve one model (--rounds trees, depth 10)
from one storage. Each run measures:

* one loan: the server-side time (``Server-Timing``) of --calls sequential requests
  (median), and wrk's requests/s with --connections connections for --duration seconds;
* --big loans in one JSON request (wall time, median of three), scored in chunks after;
* --explain loans with reasons in one request (wall time, median of three);
* the ``EXPLAIN_COST`` factor: the time of those loans with reasons over without.

Prints each run and the medians' ratios (after / before).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from bench_http import (
    DEFAULT_CSV,
    EXAMPLE_LOAN,
    _free_port,
    prepare,
    run_wrk,
    server_side,
    start_server,
)


def loans(n: int) -> list[dict[str, object]]:
    return [{**EXAMPLE_LOAN, "id": f"b-{i}", "person_income": 20_000 + i} for i in range(n)]


def wall(base: str, body: bytes, times: int = 3) -> float:
    spent = []
    with httpx.Client(timeout=600) as client:
        for _ in range(times):
            clock = time.perf_counter()
            answer = client.post(
                f"{base}/v1/predict", content=body, headers={"content-type": "application/json"}
            )
            spent.append(time.perf_counter() - clock)
            answer.raise_for_status()
    return statistics.median(spent)


def one_run(base: str, args: argparse.Namespace, script: Path) -> dict[str, float]:
    big = json.dumps(loans(args.big)).encode()
    plain = json.dumps(loans(args.explain)).encode()
    explained = json.dumps({"records": loans(args.explain), "explain": True}).encode()
    server_side(base, 200)  # warm
    result = {
        "one_ms": statistics.median(server_side(base, args.calls)),
        "rps": run_wrk(f"{base}/v1/predict", args.connections, args.duration, script)["rps"],
        "big_s": wall(base, big),
        "explain_s": wall(base, explained),
        "plain_s": wall(base, plain),
    }
    result["factor"] = result["explain_s"] / result["plain_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of the wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--explain", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make test` installs it (Debian package wrk)")
    modes = {"before": {"PYTHONPATH": str(args.baseline_src.resolve())}, "after": {}}
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        prepare(root, args.data, args.rounds)
        script = Path(tmp) / "one.lua"
        body = json.dumps(EXAMPLE_LOAN).replace("'", "\\'")
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{body}'\n"
        )
        for run in range(1, args.repeat + 1):
            order = list(modes) if run % 2 else list(reversed(modes))
            for mode in order:
                port = _free_port()
                server = start_server(root, port, 1, {"LOANRISK_NTHREAD": "1", **modes[mode]})
                try:
                    result = one_run(f"http://127.0.0.1:{port}", args, script)
                finally:
                    server.terminate()
                    server.wait(60)
                results[mode].append(result)
                print(
                    f"run {run} {mode:<6} one loan {result['one_ms']:.3f} ms server-side, "
                    f"{result['rps']:.0f} req/s; {args.big:,} loans {result['big_s']:.3f} s; "
                    f"{args.explain:,} with reasons {result['explain_s']:.3f} s "
                    f"(x{result['factor']:.1f} without)",
                    flush=True,
                )
    medians = {
        m: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for m, runs in results.items()
    }
    before, after = medians["before"], medians["after"]
    print("\nmedians (after / before):")
    for key, what in (
        ("one_ms", "one loan, server-side ms"),
        ("rps", f"one loan, req/s at {args.connections} connections"),
        ("big_s", f"{args.big:,} loans, s"),
        ("explain_s", f"{args.explain:,} loans with reasons, s"),
        ("factor", "reasons cost (with / without)"),
    ):
        print(
            f"  {what:<40} {before[key]:>10.3f} {after[key]:>10.3f}  {after[key] / before[key]:.3f}"
        )


if __name__ == "__main__":
    main()
