"""HTTP benchmark: a real ``loanrisk serve`` (2 workers) under a real load generator (wrk).

    .venv/bin/python benchmarks/bench_http.py --duration 10

Needs ``wrk`` (Debian package ``wrk``; ``make test`` installs it). The server scores
with the reference's model (500 rounds, depth 10) trained on the public dataset (or the
built-in sample when that file is absent). Measured in one run, side by side:

* ``POST /v1/predict`` with one loan, and the same server's no-op route (``GET /healthz``,
  through the same middleware: the framework's ceiling here), with 1, 8 and 32 connections
  for --duration seconds each: requests/s, p50 and p99 as wrk reports them;
* the server-side time for one loan: the ``Server-Timing`` header of --calls sequential
  requests (median, p99);
* a --csv-rows CSV scored over HTTP (``text/csv`` in, CSV out) against the same CSV scored
  in-process by ``Scorer.score_csv`` (median of --repeat, interleaved).

wrk runs with one thread and shares the 2 cores with the server: the ceiling is this
machine's, not the framework's in general.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil

from _timing import p99
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.settings import CalibrationChoice
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.train import parse_param

EXAMPLE_LOAN = builtin_schema().example_record()
LABEL = builtin_schema().label_name

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
LOANRISK = Path(sys.executable).parent / "loanrisk"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


def one_loan_script(folder: Path) -> Path:
    """wrk's script in ``folder`` that posts :data:`EXAMPLE_LOAN` as JSON (``-s`` takes it)."""
    script = folder / "predict.lua"
    script.write_text(LUA.format(body=json.dumps(EXAMPLE_LOAN)))
    return script


def prepare(
    root: Path,
    source: Path,
    rounds: int,
    params: dict[str, Any] | None = None,
    calibration: CalibrationChoice = "none",
    monotone: bool = False,
) -> None:
    storage = FsspecStorage(str(root))
    loans = read_csv(str(source)) if source.is_file() else validate_frame(generate_sample(20_000))
    process_dataset(loans, storage, source=str(source))
    request = TrainingRequest(
        rounds=rounds, params=params or {}, calibration=calibration, monotone=monotone
    )
    run_training(request, storage, nthread=len(os.sched_getaffinity(0)))


def start_server(
    root: Path,
    port: int,
    workers: int,
    env: dict[str, str] | None = None,
    *,
    under: Sequence[str] = (),
    ready_seconds: float = 120,
) -> subprocess.Popen[bytes]:
    """``loanrisk serve`` (run ``under`` a command such as valgrind, if given), once every
    worker listens and the model is ready."""
    server = subprocess.Popen(
        [
            *under,
            str(LOANRISK),
            "serve",
            "--port",
            str(port),
            "--storage",
            str(root),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["model"]
        except (httpx.HTTPError, KeyError, ValueError):
            ready = False
        if ready and listening(port) == workers:
            return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready")


def listening(port: int) -> int:
    """How many sockets listen on the loopback ``port``: one per started worker (each has
    its own), so a run does not begin while a worker is still loading (wrk would open all
    its connections to the workers already up)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(int(f[1].split(":")[1], 16) == port and f[3] == "0A" for f in map(str.split, lines))


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def run_wrk(url: str, connections: int, duration: int, script: Path | None) -> dict[str, float]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
        url,
    ]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s))$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    answered = re.search(r"(\d+) requests in", out)
    return {
        "rps": rate,
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "requests": float(answered.group(1)) if answered else 0.0,
    }


def server_cpu(port: int) -> float:
    """CPU seconds (user + system) the ``loanrisk serve`` on ``port`` and its workers used."""
    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if "serve" in line and str(port) in line:
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
    return total


def run_wrk_counting_cpu(
    url: str, connections: int, duration: int, script: Path | None
) -> dict[str, float]:
    """:func:`run_wrk`, and the server's CPU time per answered request meanwhile (``cpu_us``:
    what the work costs, which a busy machine moves less than requests/s)."""
    port = int(url.split(":")[2].split("/")[0])
    before = server_cpu(port)
    result = run_wrk(url, connections, duration, script)
    result["cpu_us"] = (server_cpu(port) - before) / max(result["requests"], 1) * 1e6
    return result


def server_side(base: str, calls: int) -> list[float]:
    spent = []
    with httpx.Client(timeout=30) as client:
        for _ in range(calls):
            response = client.post(f"{base}/v1/predict", json=EXAMPLE_LOAN)
            response.raise_for_status()
            spent.append(float(response.headers["server-timing"].split("dur=")[1]))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        help="XGBoost parameter key=value (e.g. a tuned trial's), repeatable",
    )
    parser.add_argument("--calibration", choices=("none", "isotonic", "platt"), default="none")
    parser.add_argument("--monotone", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make test` installs it (Debian package wrk)")

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        root = Path(tmp) / "store"
        params = dict(parse_param(p) for p in args.param)
        print(
            f"training the model ({args.rounds} rounds, {params or 'the reference parameters'}"
            f", calibration {args.calibration}, monotone {args.monotone}) ...",
            flush=True,
        )
        prepare(root, args.data, args.rounds, params, args.calibration, args.monotone)
        port = int(os.environ.get("BENCH_PORT", "0")) or _free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(root, port, args.workers)
        try:
            script = one_loan_script(Path(tmp))
            print(f"\nwrk -t1, {args.duration} s per run, server: {args.workers} workers")
            print(
                f"{'conns':>5}  {'route':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'non-2xx':>7}  {'vs no-op':>8} {'server CPU/req':>14}"
            )
            for connections in (int(c) for c in args.connections.split(",")):
                noop = run_wrk_counting_cpu(f"{base}/healthz", connections, args.duration, None)
                scored = run_wrk_counting_cpu(
                    f"{base}/v1/predict", connections, args.duration, script
                )
                for route, result in (("GET /healthz", noop), ("POST /v1/predict", scored)):
                    ratio = result["rps"] / noop["rps"]
                    print(
                        f"{connections:>5}  {route:<16} {result['rps']:>9.0f} "
                        f"{result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} "
                        f"{result['non_2xx']:>7.0f}  {ratio:>7.0%} {result['cpu_us']:>11.0f} us"
                    )
                cpu = noop["cpu_us"] / scored["cpu_us"]
                print(
                    f"{connections:>5}  no-op / predict server CPU per request: {cpu:.0%} (the "
                    "throughput ratio when the server's CPU is the limit)"
                )

            spent = server_side(base, args.calls)
            print(
                f"\nserver-side time for one loan (Server-Timing, {args.calls} sequential "
                f"requests): median {statistics.median(spent):.3f} ms, "
                f"p99 {p99(spent):.3f} ms"
            )

            loans = generate_sample(args.csv_rows, seed=1).drop(columns=[LABEL])
            body = loans.to_csv(index=False).encode()
            threads = len(os.sched_getaffinity(0))
            scorer = Scorer(
                ModelRegistry(FsspecStorage(str(root))).load("loan-default"), nthread=threads
            )
            over_http, in_process = [], []
            with httpx.Client(timeout=300) as client:
                for _ in range(args.repeat):
                    clock = time.perf_counter()
                    response = client.post(
                        f"{base}/v1/predict", content=body, headers={"Content-Type": "text/csv"}
                    )
                    response.raise_for_status()
                    over_http.append(time.perf_counter() - clock)
                    clock = time.perf_counter()
                    scorer.score_csv(io.BytesIO(body), io.BytesIO())
                    in_process.append(time.perf_counter() - clock)
            rows = len(response.text.splitlines()) - 1
            http_s, local_s = statistics.median(over_http), statistics.median(in_process)
            print(
                f"\nCSV of {args.csv_rows:,} loans ({len(body) / 2**20:.1f} MiB, {rows:,} "
                f"scored): over HTTP {http_s:.2f} s, in-process {local_s:.2f} s "
                f"({scorer.backend.name}, {threads} threads): {http_s / local_s:.2f}x "
                f"(median of {args.repeat})"
            )
        finally:
            server.terminate()
            server.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
