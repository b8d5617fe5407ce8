"""Memory ceilings, measured on a real ``loanrisk serve`` (one worker): the peak resident
memory of the server (``VmHWM``) may grow only by a stated amount, whatever a request sends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

from ..conftest import free_port, wait_until_serving

pytestmark = pytest.mark.slow

LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
MIB = 2**20
BODY_MIB = 300
MOUNT = "/loan_app/azure-fileshare"


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    root = tmp_path_factory.mktemp("memory")
    storage = FsspecStorage(str(root / "share"))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=20), storage, nthread=1)
    port = free_port()
    process = subprocess.Popen(
        [LOANRISK, "serve", "--port", str(port), "--storage", str(root / "share")],
        env={**os.environ, "LOANRISK_NTHREAD": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port, "loanrisk serve", timeout=60)
        base = f"http://127.0.0.1:{port}"
        for _ in range(20):  # warm: every lazy import and cache of the scoring path
            httpx.post(f"{base}/v1/predict", json=[EXAMPLE_LOAN] * 100, timeout=30)
        yield process.pid, base, root
    finally:
        process.terminate()
        process.wait(30)


def stream(first: bytes, filler: bytes, total: int) -> Iterator[bytes]:
    """``first``, then ``filler`` repeated up to ``total`` bytes, 1 MiB at a time (the
    client never holds the body)."""
    yield first
    chunk = filler * (MIB // len(filler))
    sent = len(first)
    while sent < total:
        piece = chunk[: total - sent]
        yield piece
        sent += len(piece)


@pytest.mark.parametrize(
    ("path", "content_type", "first", "filler"),
    [
        ("/v1/predict", "application/json", b'{"records": [', b'{"person_age": 30},'),
        ("/v1/predict", "application/octet-stream", b'{"records": [', b'{"person_age": 30},'),
        ("/v1/predict", "TEXT/CSV", b"person_age,person_income\n", b"30,50000\n"),
        ("/v1/predict", "text/csv; charset=utf-8", b"garbage\n", b"\x00\x01" * 8),
        ("/predict", "application/json", b'{"sample": [', b'{"person_age": 30},'),
        ("/v1/datasets", "application/json", b'{"source": "', b"x" * 64),
        ("/v1/datasets", "multipart/form-data; boundary=b", b"--b\r\n", b"z" * 64),
    ],
)
def test_a_300_mib_body_of_any_kind_leaves_memory_flat(
    server: tuple[int, str, Path], path: str, content_type: str, first: bytes, filler: bytes
) -> None:
    pid, base, _ = server
    before = peak_rss(pid)
    body = stream(first, filler, BODY_MIB * MIB)
    for length in (None, BODY_MIB * MIB):  # chunked, and with a Content-Length
        headers = {"content-type": content_type}
        if length is not None:
            headers["content-length"] = str(length)
            body = stream(first, filler, BODY_MIB * MIB)
        try:
            response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=120)
        except httpx.TransportError:
            continue  # refused mid-upload and the connection closed: that is a refusal too
        assert 400 <= response.status_code < 500, response.text[:300]
        assert "error" in response.json()
    growth = peak_rss(pid) - before
    assert growth < 64 * MIB, f"peak memory grew by {growth / MIB:.0f} MiB"


def test_a_size_bomb_is_refused_without_memory(server: tuple[int, str, Path]) -> None:
    pid, base, root = server
    (root / "share" / "raw.csv").write_bytes(generate_sample(100).to_csv(index=False).encode())
    before = peak_rss(pid)
    for body in (
        {"source": "raw.csv", "size": 2_800_000_000_000_000_000_000},
        {"source": "raw.csv", "size": "inf"},
    ):
        response = httpx.post(f"{base}/v1/datasets", json=body, timeout=30)
        assert response.status_code == 422, response.text
    response = httpx.post(
        f"{base}/data",
        json={"bucket": "loan-default", "key": "raw.csv", "size": 2.8e21},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert peak_rss(pid) - before < 16 * MIB


def test_the_reference_predict_scores_a_million_rows_in_bounded_memory(
    server: tuple[int, str, Path], tmp_path: Path
) -> None:
    pid, base, root = server
    loans = tmp_path / "million.csv"
    block = generate_sample(100_000, seed=1).drop(columns=["loan_status"])
    block.to_csv(loans, index=False)
    rows = block.to_csv(index=False, header=False).encode()
    with loans.open("ab") as out:
        for _ in range(9):
            out.write(rows)
    before = peak_rss(pid)
    with loans.open("rb") as upload:
        response = httpx.post(
            f"{base}/predict",
            data={
                "az_file_path": MOUNT,
                "model_directory": "models",
                "model_name": "loan-default",
                "sample_directory": "samples",
            },
            files={"file": ("million.csv", upload, "text/csv")},
            timeout=600,
        )
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert (body["rows"], body["truncated"]) == (1_000_000, True)
    assert len(body["Prediction Output"]["Probability"]) == 10_000
    stored = root / "share" / body["results_path"]
    with stored.open("rb") as results:
        assert sum(1 for _ in results) == 1_000_001
    growth = peak_rss(pid) - before
    assert growth < 128 * MIB, f"peak memory grew by {growth / MIB:.0f} MiB"
