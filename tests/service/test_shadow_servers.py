"""Shadow scoring in real ``loanrisk serve`` processes (two workers): a challenger that is
deliberately slow (twenty times the champion's trees) and one that raises on every loan leave
the champion's answers and status codes exactly as they are without a shadow, and both
roles are in the prediction log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
import xgboost as xgb

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.monitoring.log.reader import read_log
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving
from .test_servers import _alive, _children

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
pytestmark = pytest.mark.timeout(300)
REQUESTS = 120


def slower(booster: xgb.Booster, times: int) -> xgb.Booster:
    """The same trees ``times`` over: a valid model that does ``times`` the work per loan."""
    doc = json.loads(bytes(booster.save_raw("json")))
    model = doc["learner"]["gradient_booster"]["model"]
    trees = [dict(tree, id=i) for i, tree in enumerate(model["trees"] * times)]
    model.update(
        trees=trees,
        tree_info=model["tree_info"] * times,
        iteration_indptr=list(range(len(trees) + 1)),
    )
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(doc).encode()))
    return out


def raising(width: int) -> xgb.Booster:
    """A booster that expects one feature more than the spec gives: it loads (the scorer
    falls back to XGBoost) and raises on every loan it scores."""
    rng = np.random.default_rng(0)
    features = rng.random((200, width + 1))
    return xgb.train({"max_depth": 2}, xgb.DMatrix(features, label=features[:, 0] > 0.5), 3)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Version 1 in production; 2 (slow) and 3 (raising) published, no alias yet."""
    path = tmp_path / "shared"
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(3_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=50, params={"max_depth": 6}), storage, nthread=1)
    registry = ModelRegistry(storage, "models")
    champion = registry.load("loan-default", 1)
    for booster in (slower(champion.booster, 20), raising(champion.booster.num_features())):
        registry.publish(
            "loan-default",
            booster=booster,
            spec=champion.spec,
            report=champion.report,
            metadata={},
            schema=champion.schema,
        )
    return path


def serve(root: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root), "--workers", "2"],
        env={
            **os.environ,
            "LOANRISK_NTHREAD": "1",
            "LOANRISK_RELOAD_INTERVAL": "0.3",
            "LOANRISK_LOG_FLUSH_SECONDS": "0.5",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(server, port, "loanrisk serve", timeout=60)
    return server, f"http://127.0.0.1:{port}"


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)  # a clean shutdown writes the buffered log
    server.wait(60)


def requests() -> list[Any]:
    """Single loans, lists, a bad loan (422) and a malformed body (400), with ids."""
    out: list[Any] = []
    for i in range(REQUESTS):
        loan = {**EXAMPLE_LOAN, "id": f"L-{i}", "loan_amnt": 1_000 + 97 * i}
        if i % 10 == 3:
            out.append({"records": [loan, {**loan, "id": f"L-{i}b", "loan_amnt": 500}]})
        elif i % 29 == 5:
            out.append({**loan, "person_age": "old"})
        else:
            out.append(loan)
    return out


def answers(base: str) -> list[tuple[int, Any]]:
    def send(body: Any) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as client:
            response = client.post(f"{base}/v1/predict", json=body)
        doc = response.json()
        return response.status_code, doc.get("results", doc.get("error", {}).get("code"))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(send, requests()))


def metric(base: str, prefix: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix))


def settled(base: str, total: float) -> float:
    """The loans handed to the shadow, once all ``total`` are accounted for."""
    deadline = time.monotonic() + 60
    while (handed := metric(base, "loanrisk_shadow_rows_total")) < total:
        assert time.monotonic() < deadline, f"{handed} of {total} shadow loans accounted for"
        time.sleep(0.1)
    return handed


def test_a_slow_or_raising_shadow_changes_no_answer_and_both_roles_are_logged(
    root: Path,
) -> None:
    server, base = serve(root, LOANRISK_PREDICTION_LOG="false")
    expected = answers(base)
    stop(server)
    assert {status for status, _ in expected} == {200, 422}

    registry = ModelRegistry(FsspecStorage(str(root)), "models")
    registry.promote("loan-default", 2, "challenger")  # slow
    server, base = serve(root, LOANRISK_SHADOW_ALIAS="challenger")
    assert answers(base) == expected
    loans = sum(len(r) for status, r in expected if status == 200)
    # Every loan handed to the shadow is accounted for: scored or dropped (its queue full).
    assert settled(base, loans) == loans
    slow_scored = metric(base, 'loanrisk_shadow_rows_total{outcome="scored"}')
    assert slow_scored > 0
    registry.promote("loan-default", 3, "challenger")  # raises: no check on this path
    deadline = time.monotonic() + 30
    while (
        metric(
            base,
            'loanrisk_model_info{backend="xgboost",model="loan-default",role="shadow",version="3"}',
        )
        < 1
    ):
        assert time.monotonic() < deadline, "the workers follow the shadow alias"
        time.sleep(0.1)
    assert answers(base) == expected
    assert settled(base, 2 * loans) == 2 * loans
    assert metric(base, 'loanrisk_shadow_rows_total{outcome="failed"}') > 0
    stop(server)

    storage = FsspecStorage(str(root))
    log = read_log(storage, storage.resolve("prediction-log"), model="loan-default")
    champion = log[log["role"] == "champion"]
    shadow = log[log["role"] == "shadow"]
    assert len(champion) == 2 * loans and set(champion["version"]) == {1}
    assert set(shadow["version"]) == {2}  # the raising version logged nothing
    pairs = shadow.merge(champion, on=["request_id", "loan_id"], suffixes=("", "_champion"))
    assert len(pairs) == len(shadow) > 0  # each shadow row beside its champion row


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_each_worker_s_shadow_process_runs_idle_and_dies_with_its_worker(root: Path) -> None:
    ModelRegistry(FsspecStorage(str(root)), "models").promote("loan-default", 2, "challenger")
    server, base = serve(root, LOANRISK_SHADOW_ALIAS="challenger")
    try:
        deadline = time.monotonic() + 30
        while True:  # each worker (a child of the server) has its shadow process
            found = {
                w: [c for c in _children(w) if "spawn_main" in _cmdline(c)]
                for w in _children(server.pid)
                if _alive(w)
            }
            pairs = {w: shadows for w, shadows in found.items() if shadows}
            if len(pairs) == 2:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        assert all(len(shadows) == 1 for shadows in pairs.values()), pairs
        worker, (shadow,) = next(iter(pairs.items()))
        assert os.sched_getscheduler(shadow) == os.SCHED_IDLE  # the workers come first
        os.kill(worker, signal.SIGKILL)
        # The kernel's SIGKILL (PR_SET_PDEATHSIG) takes effect when the idle-class process
        # next runs, which on two busy cores can take seconds.
        deadline = time.monotonic() + 60
        while _alive(shadow):
            assert time.monotonic() < deadline, "the shadow process outlived its worker"
            time.sleep(0.1)
        assert httpx.post(f"{base}/v1/predict", json=EXAMPLE_LOAN, timeout=30).status_code == 200
    finally:
        stop(server)
