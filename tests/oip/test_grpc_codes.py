"""gRPC answers loanrisk's errors with codes of its own (no HTTP status in between)."""

from __future__ import annotations

import subprocess
import sys

#: In a fresh interpreter: the service's messages would clash with a client library's
#: registered in this process (see ``service/app.py``).
PROBE = """
import grpc
from loanrisk import errors
from loanrisk.interop.oip_tensors import BadTensor
from loanrisk.oip.grpc_service import code_of
cases = [
    (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
    (errors.Forbidden("x"), grpc.StatusCode.PERMISSION_DENIED),
    (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
    (errors.Conflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.TooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.InvalidInput("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (BadTensor("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.StorageError("x"), grpc.StatusCode.UNAVAILABLE),
    (errors.NotInstalled("x"), grpc.StatusCode.UNIMPLEMENTED),
    (errors.LoanRiskError("x"), grpc.StatusCode.INTERNAL),
]
print([type(e).__name__ for e, code in cases if code_of(e) is not code])
"""


def test_each_error_of_the_tree_has_its_grpc_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
