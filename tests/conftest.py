"""Shared fixtures: the public dataset, storages (memory, local, a real S3 server); how
`make test`'s pytest-xdist workers share the modules out."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.nodeid import coerce_node_id

from loanrisk.data.ingest import read_csv
from loanrisk.schema import Validated
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage

ROOT = Path(__file__).resolve().parents[1]
REAL_CSV = ROOT.parent / "shared" / "data" / "credit_risk_dataset.csv"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Modules that hold time or CPU seconds to a bound while they load the machine, or load both
#: cores themselves (replicas behind nginx, a server killed under load, reasons scored until a
#: client leaves): under ``make test``'s two workers they form one group, run one after another
#: on one worker, so that no two of them overlap.
EXCLUSIVE = frozenset(
    {
        "tests/deploy/test_local_cluster.py",
        "tests/monitoring/test_log_kill.py",
        "tests/oip/test_grpc_bounds.py",
        "tests/service/test_cancel.py",
        "tests/test_benchmarks.py",
    }
)
#: The longest modules after those (measured on 2 cores, about 30 s or more each): handed out
#: first, so that no worker starts one of them while the other has nothing left to run.
LONGEST = (
    "tests/service/test_fuzz.py",
    "tests/test_cli.py",
    "tests/fairness/test_surfaces.py",
    "tests/training/test_lda.py",
)


@pytest.hookimpl(tryfirst=True)  # the ids set before any other plugin reads them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n 2 --dist loadgroup --no-loadscope-reorder`` (``make unit``), each
    module is one unit of work, run whole on one worker (its module fixtures built once), the
    :data:`EXCLUSIVE` modules are one unit between them, and the units are handed out longest
    first. Without ``--dist loadgroup`` nothing changes."""
    # a worker's own options say ``dist = "no"`` and ``loadgroup = True`` (xdist/remote.py)
    if not getattr(config.option, "loadgroup", False):
        return

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    # pytest-xdist's scheduler tells tests apart by node id, and schemathesis gives every
    # operation's test its function's id (tests/service/test_fuzz.py): those would run once
    # between them. And xdist 3.8 writes a group into ``item._nodeid``, which pytest 9 no
    # longer reads. So the id is set here, whole: ``<module>::<name>@<group>``.
    for item in items:
        name = module(item)
        group = "exclusive" if name in EXCLUSIVE else name
        item._id = coerce_node_id(f"{item.nodeid.rsplit('::', 1)[0]}::{item.name}@{group}")
    assert len({item.nodeid for item in items}) == len(items), "two tests share a node id"
    rank = {name: k for k, name in enumerate(LONGEST)}
    items.sort(key=lambda item: (module(item) not in EXCLUSIVE, rank.get(module(item), len(rank))))


@pytest.fixture(scope="session")
def real_csv() -> Path:
    assert REAL_CSV.is_file(), f"the public dataset is expected at {REAL_CSV}"
    return REAL_CSV


@pytest.fixture(scope="session")
def real_loans(real_csv: Path) -> Validated:
    return read_csv(str(real_csv))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    process: subprocess.Popen[Any], port: int, what: str, *, timeout: float = 30
) -> None:
    """Wait until ``process`` accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto in server mode) on a loopback port, for the session."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_serving(process, port, "the S3 test server (moto)")
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def s3_settings(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at a fresh bucket on the S3 test server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return Settings(storage=f"s3://{bucket}/loanrisk", s3_endpoint_url=s3_endpoint)


AZURITE = Path(__file__).resolve().parent / "azurite" / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's published, well-known development account key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azure Blob emulator (Azurite, from npm) on a loopback port; its connection string."""
    assert AZURITE.exists(), "Azurite is not installed: run `make test` (npm ci in tests/azurite)"
    port = free_port()
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--silent",
            "--location",
            str(tmp_path_factory.mktemp("azurite")),
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(process, port, "Azurite")
    try:
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def azure_settings(azurite: str) -> Settings:
    """Settings pointing at a fresh container on Azurite."""
    from azure.storage.blob import BlobServiceClient

    container = f"test-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(azurite) as client:
        client.create_container(container)
    return Settings(storage=f"az://{container}/loanrisk", azure_connection_string=azurite)


@pytest.fixture(params=["memory", "local", "s3", "azure"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Every storage backend, each behind the same contract."""
    if request.param == "memory":
        return MemoryStorage()
    if request.param == "local":
        return FsspecStorage(str(tmp_path / "root"))
    return open_storage(request.getfixturevalue(f"{request.param}_settings"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real Dask LocalCluster: 2 worker processes of 1 thread, on 127.0.0.1."""
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        yield local
