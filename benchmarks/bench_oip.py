"""The Open Inference Protocol route against v1 for one loan, side by side on one real
``loanrisk serve`` (2 workers) under wrk: ``POST /v2/models/loan-default/infer`` (one input
per attribute, shape [1], as tritonclient and MLServer send it) and ``POST /v1/predict``
(the loan as a JSON object), interleaved --repeat times at each connection count (which goes
first alternates); medians of requests/s and p99, and OIP's throughput as a share of v1's
(the target: within 10%).

    .venv/bin/python benchmarks/bench_oip.py --duration 10 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_http import DEFAULT_CSV, EXAMPLE_LOAN, LUA, _free_port, prepare, run_wrk, start_server
from loanrisk.schema import builtin_schema

TEXT = {c.name for c in builtin_schema().features if c.type in ("categorical", "ordinal")}


def oip_body() -> str:
    return json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [1],
                    "datatype": "BYTES" if name in TEXT else "FP64",
                    "data": [value],
                }
                for name, value in EXAMPLE_LOAN.items()
            ]
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make test` installs it (Debian package wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-oip-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        routes = {
            "v1": ("/v1/predict", json.dumps(EXAMPLE_LOAN)),
            "oip": ("/v2/models/loan-default/infer", oip_body()),
        }
        scripts = {}
        for name, (_, body) in routes.items():
            scripts[name] = Path(tmp) / f"{name}.lua"
            scripts[name].write_text(LUA.format(body=body))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(root, port, args.workers)
        try:
            print(f"wrk -t1, {args.duration} s per run, {args.workers} workers, one loan a request")
            for connections in (int(c) for c in args.connections.split(",")):
                results: dict[str, list[dict[str, float]]] = {"v1": [], "oip": []}
                for run in range(1, args.repeat + 1):
                    for name in ("v1", "oip") if run % 2 else ("oip", "v1"):
                        result = run_wrk(
                            base + routes[name][0], connections, args.duration, scripts[name]
                        )
                        assert result["non_2xx"] == 0, f"{name}: {result['non_2xx']} errors"
                        results[name].append(result)
                        print(
                            f"  c{connections} run {run} {name:<4} {result['rps']:>8.0f} req/s"
                            f"  p99 {result['p99_ms']:>6.2f} ms",
                            flush=True,
                        )
                rps = {n: statistics.median(r["rps"] for r in rs) for n, rs in results.items()}
                p99 = {n: statistics.median(r["p99_ms"] for r in rs) for n, rs in results.items()}
                print(
                    f"c{connections} medians: v1 {rps['v1']:.0f} req/s (p99 {p99['v1']:.2f} ms)"
                    f", oip {rps['oip']:.0f} req/s (p99 {p99['oip']:.2f} ms): oip is "
                    f"{rps['oip'] / rps['v1']:.1%} of v1's throughput"
                )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
