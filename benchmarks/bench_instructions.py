"""Instructions a request costs the server, in this tree against a baseline tree: ``GET
/healthz`` (the no-op) and a one-loan ``POST /v1/predict`` (issue 25).

    .venv/bin/python benchmarks/bench_instructions.py --baseline-src /path/to/other/tree/src

Counted by valgrind's callgrind, which a busy machine does not disturb: the same requests give
the same counts within about 1%, where requests/s on this shared machine move by a third. Each
tree and route runs in its own ``loanrisk serve`` (one worker: uvicorn with its HTTP parser
and event loop, as deployed) under callgrind, the tree's sources first on ``PYTHONPATH``, on
one storage with the reference's model (500 rounds, depth 10). A client outside valgrind
keeps --concurrency keep-alive connections busy (so small requests are batched as under
load): a warm-up, then --requests requests counted with instrumentation switched on
(``callgrind_control``) around them alone. The event loop's thread is the request path; the
other threads (the prediction log's conversion to Arrow, every 0.1 s of wall time, which
valgrind's slowness makes about fifty times as frequent per request as in a real server) are
printed beside it. The log writes no file while counting (``LOANRISK_LOG_FLUSH_SECONDS``).
The kernel's share (the sockets) is not counted; it is about the same for both routes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench_http import DEFAULT_CSV, EXAMPLE_LOAN, _free_port, prepare, start_server

THIS = str(Path(__file__).resolve().parents[1] / "src")
ROUTES = {"noop": ("GET", "/healthz"), "predict": ("POST", "/v1/predict")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", help="the other tree's src (default: this tree only)")
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warm-up", type=int, default=512, help="requests before counting")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
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
        f"\ninstructions a request through uvicorn, {args.requests} requests on "
        f"{args.concurrency} connections (event loop's thread; all threads in brackets)"
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
    """(event loop's thread, all threads) instructions a request of ``route`` costs a
    server of the tree at ``src``."""
    env = {
        "PYTHONPATH": src,
        "PYTHONHASHSEED": "0",
        "OMP_WAIT_POLICY": "PASSIVE",
        "LOANRISK_LOG_FLUSH_SECONDS": "3600",
    }
    port = _free_port()
    callgrind = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
    ]
    # under valgrind a start (imports, the model's load) takes a minute or more
    server = start_server(root, port, 1, env, under=callgrind, ready_seconds=1200)
    try:
        asyncio.run(_drive(server.pid, port, route, args))
    finally:
        server.terminate()
        server.wait(600)
    totals = {p.name: _total(p) for p in out.parent.glob(f"{out.name}-*")}
    loop = totals[f"{out.name}-01"]
    return loop // args.requests, sum(totals.values()) // args.requests


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


async def _drive(pid: int, port: int, route: str, args: argparse.Namespace) -> None:
    """Warm the server up; then ``args.requests`` requests counted."""
    method, path = ROUTES[route]
    body = json.dumps(EXAMPLE_LOAN).encode() if method == "POST" else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    request = (head + "\r\n").encode() + body

    async def clients(total: int) -> None:
        async def client(calls: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(calls):
                writer.write(request)
                if (status := await _answer(reader)) != 200:
                    raise SystemExit(f"{method} {path} answered {status}")
            writer.close()

        await asyncio.gather(*(client(total // args.concurrency) for _ in range(args.concurrency)))

    await clients(args.warm_up)  # caches, the batching's first calls, lazy imports
    _instrument(pid, True)
    await clients(args.requests)
    _instrument(pid, False)


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one answer (its head and its Content-Length of body); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    length = next(int(value) for name, _, value in fields if name.lower() == "content-length")
    await reader.readexactly(length)
    return int(lines[0].split()[1])


def _instrument(pid: int, on: bool) -> None:
    """Switch callgrind's instrumentation in the server (the client waits meanwhile)."""
    command = ["callgrind_control", "-i", "on" if on else "off", str(pid)]
    subprocess.run(command, capture_output=True, check=True, timeout=600)


if __name__ == "__main__":
    main()
