"""Real ``loanrisk serve`` processes on one storage: jobs and models seen across replicas, a
server killed while training, metrics summed over workers, connections spread over workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
FAST = {
    "LOANRISK_RELOAD_INTERVAL": "0.3",
    "LOANRISK_JOB_HEARTBEAT": "0.3",
    "LOANRISK_JOB_STALE_AFTER": "2",
    "LOANRISK_NTHREAD": "1",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A storage with a dataset and version 1 in production."""
    path = tmp_path / "shared"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(3_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=10), storage, nthread=1)
    return path


Start = Callable[..., tuple[subprocess.Popen[bytes], str]]


@pytest.fixture
def start(root: Path) -> Iterator[Start]:
    servers: list[subprocess.Popen[bytes]] = []

    def launch(
        *args: str, log: Path | None = None, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        with open(log or os.devnull, "wb") as stderr:
            server = subprocess.Popen(
                [LOANRISK, "serve", "--port", str(port), "--storage", str(root), *args],
                env={**os.environ, **FAST, **(env or {})},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        servers.append(server)
        wait_until_serving(server, port, "loanrisk serve", timeout=60)
        return server, f"http://127.0.0.1:{port}"

    yield launch
    for server in servers:
        if server.poll() is None:
            server.terminate()
            server.wait(30)


def until(check: Callable[[], Any], *, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def version_served(base: str) -> int:
    response = httpx.post(f"{base}/v1/predict", json=EXAMPLE_LOAN, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.json()["model"]["version"])


def test_train_on_one_replica_and_the_other_follows(start: Start) -> None:
    _, one = start()
    _, other = start()
    assert version_served(other) == 1
    accepted = httpx.post(
        f"{one}/v1/models/loan-default/versions", json={"rounds": 10, "promote": True}, timeout=30
    )
    assert accepted.status_code == 202
    job = accepted.headers["location"]
    # The other replica answers for the job: its state is on the shared storage.
    record = until(
        lambda: (
            (r := httpx.get(f"{other}{job}", timeout=10).json())["state"] in ("succeeded", "failed")
            and r
        ),
        what="job end",
    )
    assert record["state"] == "succeeded", record["error"]
    clock = time.monotonic()
    until(lambda: version_served(other) == 2, timeout=10, what="version 2 on the other replica")
    assert time.monotonic() - clock < 5


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    children = _children(pid)
    return children + [d for c in children for d in _descendants(c)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_server_killed_while_training(start: Start, root: Path) -> None:
    server, base = start()
    accepted = httpx.post(
        f"{base}/v1/models/loan-default/versions",
        json={"rounds": 100_000, "promote": True},
        timeout=30,
    )
    job = accepted.headers["location"]
    until(
        lambda: (
            (httpx.get(f"{base}{job}", timeout=10).json().get("progress") or {}).get("done", 0) > 5
        ),
        what="training under way",
    )
    trainers = _descendants(server.pid)  # the trainer is forked by the job fork server
    assert trainers, "the training runs in a child process"
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    until(lambda: not any(_alive(p) for p in trainers), timeout=10, what="trainer gone")

    _, restarted = start()
    record = until(
        lambda: (
            (r := httpx.get(f"{restarted}{job}", timeout=10).json())["state"] != "running" and r
        ),
        timeout=15,
        what="job marked failed",
    )
    assert record["state"] == "failed"
    assert record["error"]["code"] == "worker_lost"
    assert version_served(restarted) == 1
    assert ModelRegistry(FsspecStorage(str(root))).versions("loan-default") == [1]
    # The dead job's training lock is taken over: the model can be trained again.
    again = httpx.post(
        f"{restarted}/v1/models/loan-default/versions", json={"rounds": 5}, timeout=30
    )
    assert again.status_code == 202, again.text


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_add_up_over_workers_and_logs_are_json(
    start: Start, tmp_path: Path, workers: int
) -> None:
    log = tmp_path / "server.log"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    abandoned = temporary / "loanrisk-metrics-999999999-killed"  # a killed server's, pid gone
    abandoned.mkdir()
    server, base = start("--workers", str(workers), log=log, env={"TMPDIR": str(temporary)})
    with httpx.Client(timeout=30) as client:
        for number in range(20):
            response = client.post(
                f"{base}/v1/predict", json=EXAMPLE_LOAN, headers={"X-Request-ID": f"req-{number}"}
            )
            assert response.status_code == 200
    text = httpx.get(f"{base}/metrics", timeout=10).text
    line = 'loanrisk_http_requests_total{method="POST",route="/v1/predict",status="200"}'
    (total,) = [float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(line)]
    assert total == 20
    served = 'loanrisk_model_info{backend="onedal",model="loan-default",role="champion"'
    served += ',version="1"}'
    assert f"{served} 1.0" in text
    server.terminate()
    server.wait(30)
    assert not list(temporary.iterdir())  # its own metrics files removed, the abandoned ones too
    # The CLI's greeting is for people; everything the server logs is one JSON object a line.
    text = log.read_text()
    lines = [json.loads(line) for line in text[text.index("\n{") + 1 :].splitlines()]
    access = [doc for doc in lines if doc["logger"] == "loanrisk.access"]
    assert {doc["request_id"] for doc in access} >= {f"req-{n}" for n in range(20)}
    assert all(
        doc["status"] == 200 and doc["ms"] > 0 for doc in access if doc["path"] == "/v1/predict"
    )
    assert any("NO API KEYS CONFIGURED" in doc["message"] for doc in lines)


def _tcp(port: int) -> dict[str, str]:
    """Socket inode -> TCP state (``0A`` listening, ``01`` established) on local ``port``."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found[fields[9]] = fields[3]
    return found


def _sockets(pid: int, state: str, port: int) -> set[str]:
    """The inodes of the sockets on ``port`` in ``state`` that process ``pid`` holds."""
    inodes = {inode for inode, s in _tcp(port).items() if s == state}
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held.add(target[8:-1])
    return held


def _listeners(server: subprocess.Popen[bytes], port: int) -> dict[int, set[str]]:
    """Worker pid -> its listening sockets on ``port``."""
    found = {pid: _sockets(pid, "0A", port) for pid in _children(server.pid) if _alive(pid)}
    return {pid: inodes for pid, inodes in found.items() if inodes}


def _own_sockets(server: subprocess.Popen[bytes], port: int) -> dict[int, set[str]] | None:
    """The workers' listening sockets once two workers each listen on a socket of their own."""
    found = _listeners(server, port)
    return found if len(found) == 2 and not set.intersection(*found.values()) else None


def _connect(port: int, count: int) -> list[socket.socket]:
    """``count`` keep-alive connections opened at once, each answered once (so accepted)."""
    connections = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    for sock in connections:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: loanrisk\r\n\r\n")
    for sock in connections:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return connections


def test_a_worker_killed_during_its_health_check_is_replaced_at_once(start: Start) -> None:
    """The supervisor pings each worker every half second and waits up to the health-check
    timeout (60 s) for the answer. A worker stopped (so the ping is unanswered) and then
    killed is replaced at once, and SIGTERM is obeyed at once, not after that timeout."""
    server, base = start("--workers", "2", env={"LOANRISK_WORKER_HEALTHCHECK_TIMEOUT": "60"})
    port = int(base.rsplit(":", 1)[1])
    workers = list(until(lambda: _own_sockets(server, port), what="two workers listening"))
    os.kill(workers[0], signal.SIGSTOP)
    time.sleep(1.5)  # the supervisor has sent its ping and waits for the answer
    os.kill(workers[0], signal.SIGKILL)
    clock = time.monotonic()
    until(
        lambda: (w := _own_sockets(server, port)) and workers[0] not in w,
        timeout=60,
        what="a replacement worker",
    )
    assert time.monotonic() - clock < 15  # its start; the timeout would have been ~59 s
    assert version_served(base) == 1
    clock = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(60)
    assert time.monotonic() - clock < 15


def test_workers_listen_each_and_share_the_connections(start: Start) -> None:
    server, base = start("--workers", "2")
    port = int(base.rsplit(":", 1)[1])
    workers = list(until(lambda: _own_sockets(server, port), what="two workers listening"))

    connections = _connect(port, 32)
    held = {pid: len(_sockets(pid, "01", port)) for pid in workers}
    for sock in connections:
        sock.close()
    # Spread by a hash of each connection: fewer than 4 of 32 on one worker has odds of
    # about 1 in 400,000. Sharing one socket gave splits such as 1/31 and 6/26.
    assert sum(held.values()) == 32 and min(held.values()) >= 4, held

    # Another server on the port is refused, not let into the group of sockets.
    second = subprocess.run(
        [LOANRISK, "serve", "--port", str(port), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **FAST},
    )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr

    # A worker that dies is replaced, and its replacement listens on a socket of its own.
    os.kill(workers[0], signal.SIGKILL)
    replaced = until(
        lambda: (w := _own_sockets(server, port)) and workers[0] not in w and w,
        what="a replacement worker",
    )
    assert workers[1] in replaced
    with httpx.Client(timeout=30) as client:
        assert all(
            client.post(f"{base}/v1/predict", json=EXAMPLE_LOAN).status_code == 200
            for _ in range(10)
        )

        # The dead worker's model version is not reported as served after a promotion.
        job = client.post(
            f"{base}/v1/models/loan-default/versions", json={"rounds": 5, "promote": True}
        ).headers["location"]
        until(
            lambda: client.get(f"{base}{job}").json()["state"] == "succeeded",
            what="version 2 trained",
        )

        def served() -> dict[str, float]:
            info = [
                line
                for line in client.get(f"{base}/metrics").text.splitlines()
                if line.startswith("loanrisk_model_info{")
            ]
            return {
                line.split('version="')[1].split('"')[0]: float(line.split()[-1]) for line in info
            }

        until(lambda: served() == {"1": 0.0, "2": 1.0}, timeout=15, what="only v2 served")
