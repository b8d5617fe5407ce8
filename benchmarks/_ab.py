"""Two configurations of one real ``loanrisk serve`` side by side under wrk: ``--repeat``
interleaved runs of each (which goes first alternates, so a drift of the shared machine
hits both alike), each run's requests/s and p99, and the medians with the ratio."""

from __future__ import annotations

import argparse
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path

from bench_http import DEFAULT_CSV, _free_port, run_wrk, start_server


def parse_options(
    description: str, more: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    """The options every side-by-side benchmark takes (``more`` adds a benchmark's own);
    exits when wrk is missing."""
    parser = argparse.ArgumentParser(description=description)
    if more is not None:
        more(parser)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make test` installs it (Debian package wrk)")
    return args


def side_by_side(
    root: Path,
    script: Path,
    modes: dict[str, dict[str, str]],
    args: argparse.Namespace,
    *,
    after: Callable[[str, str, dict[str, float]], Callable[[], str]] | None = None,
) -> dict[str, dict[str, float]]:
    """Run each of the two ``modes`` (name -> server environment) ``args.repeat`` times.
    ``after(mode, base_url, result)`` is called while a run's server still runs (to read its
    metrics); what it returns is called once the server has stopped cleanly and adds to the
    run's line. Returns each mode's medians (``rps``, ``p99_ms``)."""
    first, second = modes
    results: dict[str, list[dict[str, float]]] = {first: [], second: []}
    for run in range(1, args.repeat + 1):
        for mode in (first, second) if run % 2 else (second, first):
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_server(root, port, args.workers, modes[mode])
            try:
                result = run_wrk(f"{base}/v1/predict", args.connections, args.duration, script)
                report = after(mode, base, result) if after is not None else str
            finally:
                server.terminate()
                server.wait(60)
            extra = report()
            print(
                f"  run {run} {mode:<12} {result['rps']:>8.0f} req/s  "
                f"p99 {result['p99_ms']:>6.2f} ms{extra}",
                flush=True,
            )
            results[mode].append(result)
    medians = {
        m: {
            "rps": statistics.median(r["rps"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        }
        for m, runs in results.items()
    }
    a, b = medians[first], medians[second]
    print(
        f"\nmedians: {first} {a['rps']:.0f} req/s (p99 {a['p99_ms']:.2f} ms), {second} "
        f"{b['rps']:.0f} req/s (p99 {b['p99_ms']:.2f} ms): {second}/{first} "
        f"{b['rps'] / a['rps']:.1%} of the throughput, "
        f"p99 x{b['p99_ms'] / a['p99_ms']:.2f}"
    )
    return medians
