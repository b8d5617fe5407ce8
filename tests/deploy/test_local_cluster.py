"""Three replicas behind nginx on one S3 server (SeaweedFS): driven through nginx only.

Process and train through one replica; every replica serves the new version within the reload
interval; a replica killed with SIGKILL under a scoring load loses no request (nginx retries
idempotent scoring elsewhere), the job it ran is marked failed, and it rejoins after a restart.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2 as httpx
import pytest

from loanrisk.data.sample import generate_sample
from tests.builtin import EXAMPLE_LOAN

from .conftest import DEPLOY

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]


def load_cluster_module() -> ModuleType:
    path = DEPLOY / "local-cluster" / "cluster.py"
    spec = importlib.util.spec_from_file_location("local_cluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lc = load_cluster_module()
RELOAD = 1.0


def score(client: httpx.Client) -> tuple[int, str]:
    answer = client.post("/v1/predict", json=EXAMPLE_LOAN,
                         headers={"Authorization": f"Bearer {lc.SCORE_KEY}"})  # fmt: skip
    return answer.status_code, answer.headers.get("x-upstream", "")


def test_a_cluster_behind_nginx(tmp_path: Path) -> None:
    csv = generate_sample(3_000).to_csv(index=False).encode()
    with lc.LocalCluster(tmp_path / "cluster", 3, reload_interval=RELOAD, heartbeat=0.5,
                         stale_after=3.0) as cluster:  # fmt: skip
        first = lc.seed(cluster, csv, rounds=20)
        assert first["state"] == "succeeded", first["error"]
        deadline = time.monotonic() + 2 * RELOAD + 5
        while lc.served_versions(cluster, EXAMPLE_LOAN) != [1, 1, 1]:
            assert time.monotonic() < deadline, lc.served_versions(cluster, EXAMPLE_LOAN)
            time.sleep(0.1)

        second = lc.seed(cluster, csv, rounds=10)
        assert second["result"]["manifest"]["version"] == 2
        assert lc.time_to_every_replica(cluster, EXAMPLE_LOAN, 1) <= RELOAD + 3
        assert lc.time_to_every_replica(cluster, EXAMPLE_LOAN, 2) <= RELOAD + 3

        # A long training runs on replica 2 ...
        victim = 2
        started = httpx.post(f"{cluster.replica_url(victim)}/v1/models/loan-default/versions",
                             json={"rounds": 100_000}, headers=lc.admin(), timeout=30)  # fmt: skip
        assert started.status_code == 202, started.text
        job = started.headers["location"]
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            deadline = time.monotonic() + 60
            while client.get(job, headers=lc.admin()).json()["state"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)

        # ... and is killed, with a bounded scoring load going through nginx.
        outcomes: list[tuple[int, str]] = []

        def load(worker: int) -> None:
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                for _ in range(150):
                    outcomes.append(score(client))

        with ThreadPoolExecutor(4) as pool:
            running = [pool.submit(load, w) for w in range(4)]
            while len(outcomes) < 100:
                time.sleep(0.01)
            cluster.kill_replica(victim)
            for future in running:
                future.result()
        assert len(outcomes) == 600
        assert [s for s, _ in outcomes if s != 200] == []  # nothing lost
        victim_address = f"127.0.0.1:{cluster.replica_ports[victim]}"
        assert any(victim_address in upstream for _, upstream in outcomes[:100])

        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            deadline = time.monotonic() + 15
            record: dict[str, Any] = {}
            while (record := client.get(job, headers=lc.admin()).json())["state"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert record["state"] == "failed"
            assert record["error"]["code"] == "worker_lost"
            models = client.get("/v1/models/loan-default", headers=lc.admin()).json()
            assert models["versions"] == [1, 2]  # nothing half-published

        # Restarted, the replica rejoins: nginx sends it requests again.
        cluster.start_replica(victim)
        assert lc.served_versions(cluster, EXAMPLE_LOAN) == [2, 2, 2]
        time.sleep(2.5)  # nginx's fail_timeout for the dead server
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            upstreams = [score(client) for _ in range(30)]
        assert all(status == 200 for status, _ in upstreams)
        assert any(victim_address in upstream for _, upstream in upstreams)
