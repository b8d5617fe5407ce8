"""The gRPC bound and cancellation checks of test_grpc_bounds.py, run in a process of their
own (tritonclient.grpc registers the protocol's messages; see grpc_checks.py).

    python -m tests.oip.grpc_bounds ROOT GRPC_ADDRESS SERVER_PID MAX_LOANS"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from loanrisk.monitoring.log.reader import read_log
from loanrisk.storage import FsspecStorage
from tests.builtin import EXAMPLE_LOAN
from tests.oip.test_rest import columnar
from tests.service.test_cancel import cpu_seconds

REASONS = [triton.InferRequestedOutput("reasons")]


def loans(n: int) -> list[dict[str, Any]]:
    return [{**EXAMPLE_LOAN, "person_income": 20_000 + i} for i in range(n)]


def logged_rows(root: Path) -> int:
    return len(read_log(FsspecStorage(str(root)), "prediction-log", model="loan-default"))


def check_work_bound(client: triton.InferenceServerClient, most: int) -> None:
    """One loan with reasons over ``max_request_work``: RESOURCE_EXHAUSTED naming the bound,
    before anything is scored."""
    with pytest.raises(InferenceServerException, match=r"RESOURCE_EXHAUSTED.*max_request_work"):
        client.infer("loan-default", columnar(loans(most + 1), client=triton), outputs=REASONS)
    # the same loans without reasons cost 150 times less: answered
    answered = client.infer("loan-default", columnar(loans(most + 1), client=triton))
    assert len(answered.as_numpy("probability")) == most + 1


def check_cancel(client: triton.InferenceServerClient, root: Path, pid: int, most: int) -> None:
    """A call whose deadline passes stops scoring within a chunk and logs nothing of it."""
    clock = time.perf_counter()
    client.infer("loan-default", columnar(loans(500), client=triton), outputs=REASONS)
    per_loan = (time.perf_counter() - clock) / 500
    n = min(max(10_000, int(20 / per_loan)), most)
    assert per_loan * n > 8.0, f"{n:,} loans' reasons take {per_loan * n:.1f} s"
    time.sleep(1.5)  # the log's flush interval is 0.5 s
    before = logged_rows(root)

    with pytest.raises(InferenceServerException, match=r"(?i)deadline"):
        client.infer(
            "loan-default", columnar(loans(n), client=triton), outputs=REASONS, client_timeout=2.0
        )
    time.sleep(2.0)  # the chunk under way ends
    start = cpu_seconds(pid)
    time.sleep(2.0)
    burned = cpu_seconds(pid) - start
    assert burned < 0.5, f"the server burned {burned:.2f} CPU-s in 2 s after the call ended"

    clock = time.perf_counter()
    client.infer("loan-default", columnar(loans(1), client=triton))
    assert time.perf_counter() - clock < 1.0
    time.sleep(1.5)
    assert logged_rows(root) == before + 1, "only the small call's loan is logged"


def main() -> None:
    root, address, pid, most = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = triton.InferenceServerClient(address)
    check_work_bound(client, most)
    print("ok check_work_bound", flush=True)
    check_cancel(client, Path(root), pid, most)
    print("ok check_cancel", flush=True)


if __name__ == "__main__":
    main()
