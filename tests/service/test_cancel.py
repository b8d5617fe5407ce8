"""Abandoned work stops, and parsing stays within its memory budget, on a real
``loanrisk serve`` (issue 26: "two 10,000-loan explain requests whose clients left after
3 s ran on for 123 s, and logged 20,000 predictions nobody received"; "four 29 MiB JSON
bodies took a worker to 2.6 GiB")."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.monitoring.log.reader import read_log
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving
from .test_memory import peak_rss

pytestmark = pytest.mark.slow

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
MIB = 2**20
#: The JSON body limit and parse budget of the memory server: one body at a time.
BODY_BYTES = 4 * MIB
#: Python objects a parsed JSON body may take per byte, at worst: ``{},`` (3 bytes) is a
#: 64-byte dict and an 8-byte list slot, 24 times its size.
AMPLIFICATION = 25
#: The most loans the disconnecting client sends (its server's max_records).
MOST_LOANS = 60_000


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cancel") / "share"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    # deep enough that 10,000 loans' reasons take several seconds
    run_training(TrainingRequest(rounds=150), storage, nthread=1)
    return root


def serve(root: Path, **settings: str) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "LOANRISK_NTHREAD": "1", **settings}
    process = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port, "loanrisk serve", timeout=90)
        server = Server(process, port, root)
        for _ in range(5):  # warm: every lazy import and cache of the scoring path
            httpx.post(f"{server.base}/v1/predict", json=[EXAMPLE_LOAN] * 100, timeout=60)
        yield server
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def logged(store: Path) -> Iterator[Server]:
    """A server that logs every answered loan, written within half a second."""
    # work unbounded: this server shows what a client that leaves stops
    yield from serve(
        store,
        LOANRISK_LOG_FLUSH_SECONDS="0.5",
        LOANRISK_MAX_REQUEST_WORK=str(10**9),
        LOANRISK_MAX_RECORDS=str(MOST_LOANS),
    )


@pytest.fixture(scope="module")
def parsing(store: Path) -> Iterator[Server]:
    """A server whose JSON bodies are parsed one at a time (no log: it would keep them)."""
    yield from serve(
        store,
        LOANRISK_PREDICTION_LOG="false",
        LOANRISK_MAX_REQUEST_BYTES=str(BODY_BYTES),
        LOANRISK_MAX_PARSING_BYTES=str(BODY_BYTES),
        LOANRISK_PARSE_WAIT_SECONDS="300",
    )


def loans(n: int, prefix: str) -> list[dict[str, Any]]:
    return [{**EXAMPLE_LOAN, "id": f"{prefix}-{i}", "person_income": 20_000 + i} for i in range(n)]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its children, alive ones, so far."""
    total, pending = 0.0, [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        pending += map(int, children)
    return total


def raw_post(port: int, body: bytes) -> socket.socket:
    """A ``POST /v1/predict`` sent whole on a socket the caller may close unanswered."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def logged_ids(root: Path, prefix: str) -> set[str]:
    frame = read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default")
    if frame.empty:
        return set()
    return {str(i) for i in frame["loan_id"] if str(i).startswith(prefix)}


def test_an_abandoned_explain_request_stops_within_a_chunk_and_logs_nothing(
    logged: Server,
) -> None:
    # what an answered request of reasons costs here, and that its loans are logged
    clock = time.perf_counter()
    answered = httpx.post(
        f"{logged.base}/v1/predict",
        json={"records": loans(500, "kept"), "explain": True},
        timeout=120,
    )
    per_loan = (time.perf_counter() - clock) / 500
    assert answered.status_code == 200, answered.text[:300]
    # 10,000 loans (as the probe), or enough to keep a fast machine busy for 20 s:
    # the abandoned request would run well past the 5 s this test watches it for
    n = min(max(10_000, int(20 / per_loan)), MOST_LOANS)
    assert per_loan * n > 8.0, f"{n:,} loans' reasons take {per_loan * n:.1f} s"

    body = json.dumps({"records": loans(n, "gone"), "explain": True}).encode()
    sock = raw_post(logged.port, body)
    time.sleep(1.0)
    sock.close()
    time.sleep(2.0)  # the chunk under way ends: 100 loans with reasons, about a second
    start = cpu_seconds(logged.process.pid)
    time.sleep(2.0)
    burned = cpu_seconds(logged.process.pid) - start
    assert burned < 0.5, f"the server burned {burned:.2f} CPU-s in 2 s after the client left"

    clock = time.perf_counter()
    small = httpx.post(f"{logged.base}/v1/predict", json=EXAMPLE_LOAN, timeout=30)
    assert small.status_code == 200
    assert time.perf_counter() - clock < 1.0

    time.sleep(1.5)  # the log's flush interval is 0.5 s
    assert len(logged_ids(logged.root, "kept-")) == 500
    assert logged_ids(logged.root, "gone-") == set()


def test_concurrent_max_size_bodies_are_parsed_within_the_budget(parsing: Server) -> None:
    # 500 loans with reasons, each with an ignored field of empty objects: a 4 MiB body
    # that parses to about 100 MiB and is held while its reasons are scored
    def body_of(pad: int) -> bytes:
        records = [{**loan, "pad": [{}] * pad} for loan in loans(500, "m")]
        return json.dumps({"records": records, "explain": True}, separators=(",", ":")).encode()

    body = body_of((BODY_BYTES - len(body_of(0)) - 4096) // 1_500)
    assert BODY_BYTES - 64 * 1024 < len(body) <= BODY_BYTES
    clients = 6
    before = peak_rss(parsing.process.pid)
    statuses: list[int] = []

    def send() -> None:
        answer = httpx.post(
            f"{parsing.base}/v1/predict",
            content=body,
            headers={"content-type": "application/json"},
            timeout=300,
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * clients
    growth = peak_rss(parsing.process.pid) - before
    # one body parsed at a time, every body read: the budget's objects, the bodies' bytes
    bound = AMPLIFICATION * BODY_BYTES + clients * BODY_BYTES + 64 * MIB
    assert growth < bound, f"peak grew {growth / MIB:.0f} MiB; bound {bound / MIB:.0f} MiB"
