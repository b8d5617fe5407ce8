"""Instructions a request costs the server's event-loop thread, in this tree against a
baseline tree: ``GET /healthz`` (the no-op) and a one-loan ``POST /v1/predict`` (issue 25).

    .venv/bin/python benchmarks/bench_instructions.py --baseline-src /path/to/other/tree/src

Counted by valgrind's callgrind, which a busy machine does not disturb: the same requests give
the same counts within about 1%, where requests/s on this shared machine move by a third. Each
tree and route runs in its own process under callgrind, the tree's sources first on
``PYTHONPATH``: the app (``create_app``, its lifespan started, no keys) on one storage with the
reference's model (500 rounds, depth 10), driven in-process through ASGI by --concurrency
clients (as the event loop sees concurrent connections, so small requests are batched as under
load), warmed up, then --requests requests counted with instrumentation switched on
(``callgrind_control``) around them alone. The loop thread is the request path; the other
threads (the prediction log's conversion to Arrow, every 0.1 s) are printed beside it. The log
writes no file while counting (``LOANRISK_LOG_FLUSH_SECONDS``), whose timing would vary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from bench_http import DEFAULT_CSV, EXAMPLE_LOAN, prepare

THIS = str(Path(__file__).resolve().parents[1] / "src")
ROUTES = {"noop": ("GET", "/healthz"), "predict": ("POST", "/v1/predict")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", help="the other tree's src (default: this tree only)")
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--child", choices=sorted(ROUTES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(count(args.child, args.requests, args.concurrency))
        return
    if shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: `make test` installs it (Debian package)")
    trees = {"this": THIS} | ({"baseline": args.baseline_src} if args.baseline_src else {})
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        root = Path(tmp) / "store"
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        counts = {
            (tree, route): measure(root, src, route, args, Path(tmp) / f"{tree}.{route}")
            for tree, src in trees.items()
            for route in ROUTES
        }
    print(
        f"\ninstructions a request, {args.requests} requests by {args.concurrency} clients "
        "(loop thread; all threads in brackets)"
    )
    for tree in trees:
        noop, predict = counts[(tree, "noop")], counts[(tree, "predict")]
        print(
            f"  {tree:<9} no-op {noop[0]:>9,} ({noop[1]:,})  predict {predict[0]:>9,} "
            f"({predict[1]:,})  predict / no-op {predict[0] / noop[0]:.2f} "
            f"({predict[1] / noop[1]:.2f})"
        )


def measure(
    root: Path, src: str, route: str, args: argparse.Namespace, out: Path
) -> tuple[int, int]:
    """(loop thread, all threads) instructions a request of ``route`` with the tree at
    ``src``."""
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "PYTHONHASHSEED": "0",
        "OMP_WAIT_POLICY": "PASSIVE",
        "LOANRISK_STORAGE": str(root),
        "LOANRISK_LOG_FLUSH_SECONDS": "3600",
    }
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--child",
        route,
        "--requests",
        str(args.requests),
        "--concurrency",
        str(args.concurrency),
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=3600)
    totals = {p.name: _total(p) for p in out.parent.glob(f"{out.name}-*")}
    loop = totals[f"{out.name}-01"]
    return loop // args.requests, sum(totals.values()) // args.requests


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


async def count(route: str, requests: int, concurrency: int) -> None:
    """In the child, under callgrind: the app, started; warm-up; then ``requests`` requests
    of ``route`` counted."""
    from loanrisk.service.app import create_app

    method, path = ROUTES[route]
    payload = json.dumps(EXAMPLE_LOAN).encode() if method == "POST" else b""
    app = create_app()
    startup: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    life = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, replies.put)
    )
    started = await replies.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started}")

    async def clients(total: int) -> None:
        async def client(calls: int) -> None:
            for _ in range(calls):
                await _request(app, method, path, payload)

        await asyncio.gather(*(client(total // concurrency) for _ in range(concurrency)))

    await clients(500)  # warm: caches, the batching's first calls, lazy imports
    await _instrument(True)
    await clients(requests)
    await _instrument(False)
    await startup.put({"type": "lifespan.shutdown"})
    await replies.get()
    await life


async def _instrument(on: bool) -> None:
    """Switch callgrind's instrumentation: ``callgrind_control`` from a thread (valgrind
    answers it only while this process runs), the loop idle meanwhile."""
    done = threading.Event()
    command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]

    def switch() -> None:
        subprocess.run(command, capture_output=True, check=True, timeout=600)
        done.set()

    threading.Thread(target=switch, daemon=True).start()
    while not done.is_set():
        await asyncio.sleep(0.005)


async def _request(app: Any, method: str, path: str, body: bytes) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 5000),
    }
    sent = False
    status: list[int] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the answer is sent first
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"{method} {path} answered {status}")


if __name__ == "__main__":
    main()
