"""Three replicas behind nginx on one S3 server (SeaweedFS): driven through nginx only.

Process and train through one replica; every replica serves the new version within the reload
interval; a replica killed with SIGKILL under a scoring load loses no request (nginx retries
idempotent scoring elsewhere), the job it ran is marked failed, and it rejoins after a restart.

A response the victim had begun writing when it died cannot be retried by nginx (its headers
have gone to the client): the client sees the connection cut and retries, as docs/scaling.md
tells clients of idempotent scoring to do. At most one request per connection can be cut so.
"""

from __future__ import annotations

import importlib.util
import re
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
    answer = client.post(
        "/v1/predict", json=EXAMPLE_LOAN, headers={"Authorization": f"Bearer {lc.SCORE_KEY}"}
    )
    return answer.status_code, answer.headers.get("x-upstream", "")


def test_a_cluster_behind_nginx(tmp_path: Path) -> None:
    csv = generate_sample(3_000).to_csv(index=False).encode()
    with lc.LocalCluster(
        tmp_path / "cluster", 3, reload_interval=RELOAD, heartbeat=0.5, stale_after=3.0
    ) as cluster:
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
        started = httpx.post(
            f"{cluster.replica_url(victim)}/v1/models/loan-default/versions",
            json={"rounds": 100_000},
            headers=lc.admin(),
            timeout=30,
        )
        assert started.status_code == 202, started.text
        job = started.headers["location"]
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            deadline = time.monotonic() + 60
            while client.get(job, headers=lc.admin()).json()["state"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)

        # ... and is killed, with a bounded scoring load going through nginx.
        outcomes: list[tuple[int, str]] = []
        cut: list[int] = []

        def load(worker: int) -> None:
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                for _ in range(150):
                    try:
                        outcomes.append(score(client))
                    except httpx.RemoteProtocolError:
                        cut.append(worker)
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
        assert len(cut) == len(set(cut))  # only a response in flight at the kill was cut
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

        # The console through nginx: one login holds on every replica (its cookies carry all
        # there is), and a promotion from it reaches every replica.
        with httpx.Client(base_url=cluster.url, timeout=30) as browser:
            form = re.search(r'name="csrf" value="([^"]+)"', browser.get("/console/login").text)
            assert form is not None
            login = browser.post(
                "/console/login",
                data={"key": lc.ADMIN_KEY, "csrf": form.group(1), "next": "/console/"},
            )
            assert login.status_code == 303, login.text
            pages = [browser.get("/console/") for _ in range(12)]
            assert all(p.status_code == 200 and "Log out" in p.text for p in pages)
            assert len({p.headers["x-upstream"] for p in pages}) == 3
            moved = browser.post(
                "/console/models/loan-default/aliases",
                data={
                    "csrf": form.group(1),
                    "action": "promote",
                    "version": "1",
                    "alias": "production",
                    "reason": "back to v1",
                    "confirm": "yes",
                },
            )
            assert moved.status_code == 303, moved.text
        assert lc.time_to_every_replica(cluster, EXAMPLE_LOAN, 1) <= RELOAD + 3


def shadow_scored(cluster: Any, index: int) -> float:
    text = httpx.get(f"{cluster.replica_url(index)}/metrics", timeout=10).text
    prefix = 'loanrisk_shadow_rows_total{outcome="scored"}'
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix))


def test_moving_the_shadow_alias_under_load_fails_no_request(tmp_path: Path) -> None:
    """Two replicas shadow-scoring with 'challenger'; the alias is moved, retired and rolled
    back while a bounded load goes through nginx: every request answered 200 by the
    champion, and both replicas scored shadow loans."""
    csv = generate_sample(3_000).to_csv(index=False).encode()
    cluster = lc.LocalCluster(
        tmp_path / "cluster", 2, reload_interval=0.3, heartbeat=0.5, stale_after=3.0
    )
    cluster.settings["LOANRISK_SHADOW_ALIAS"] = "challenger"
    with cluster:
        assert lc.seed(cluster, csv, rounds=20)["state"] == "succeeded"
        with httpx.Client(base_url=cluster.url, timeout=120) as client:
            for rounds in (10, 30):  # versions 2 and 3
                trained = client.post(
                    "/v1/models/loan-default/versions",
                    headers=lc.admin(),
                    json={"rounds": rounds, "promote": False},
                )
                assert trained.status_code == 202, trained.text
                assert lc.follow(client, trained.headers["location"])["state"] == "succeeded"
            moved = client.put(
                "/v1/models/loan-default/aliases/challenger",
                json={"version": 2},
                headers=lc.admin(),
            )
            assert moved.status_code == 200, moved.text

        outcomes: list[tuple[int, Any]] = []

        def load(worker: int) -> None:
            with httpx.Client(base_url=cluster.url, timeout=30) as client:
                for i in range(150):
                    loan = {**EXAMPLE_LOAN, "id": f"W{worker}-{i}"}
                    answer = client.post(
                        "/v1/predict",
                        json=loan,
                        headers={"Authorization": f"Bearer {lc.SCORE_KEY}"},
                    )
                    version = answer.json()["model"]["version"] if answer.is_success else None
                    outcomes.append((answer.status_code, version))

        with ThreadPoolExecutor(4) as pool, httpx.Client(base_url=cluster.url, timeout=30) as c:
            running = [pool.submit(load, w) for w in range(4)]
            path = "/v1/models/loan-default/aliases/challenger"
            for move in ({"version": 3}, "retire", "rollback", {"version": 2}):
                while len(outcomes) < 100 * (1 + len([f for f in running if f.done()])):
                    time.sleep(0.01)
                time.sleep(0.5)
                answer = (
                    c.put(path, json=move, headers=lc.admin())
                    if isinstance(move, dict)
                    else c.post(f"{path}/{move}", headers=lc.admin())
                )
                assert answer.status_code == 200, answer.text
            for future in running:
                future.result()
        assert len(outcomes) == 600
        assert [o for o in outcomes if o != (200, 1)] == []  # the champion answered them all
        # The shadow runs on idle time only: what it was handed under load is scored once the
        # load ends (each worker reports it back; wait for the reports, not for a number). On a
        # loaded machine a replica may see the last move only after the load ended, and what
        # the retired shadow was handed is dropped: a loan sent to it now is shadowed too.
        for index in range(2):
            deadline = time.monotonic() + 60
            with httpx.Client(base_url=cluster.replica_url(index), timeout=30) as replica:
                while (scored := shadow_scored(cluster, index)) == 0:
                    assert time.monotonic() < deadline, f"replica {index} shadow-scored nothing"
                    answer = replica.post(
                        "/v1/predict",
                        json={**EXAMPLE_LOAN, "id": f"after-{index}"},
                        headers={"Authorization": f"Bearer {lc.SCORE_KEY}"},
                    )
                    assert (answer.status_code, answer.json()["model"]["version"]) == (200, 1)
                    time.sleep(0.5)
            assert scored > 0
