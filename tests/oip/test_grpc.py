"""OIP v2 over gRPC (``LOANRISK_GRPC_PORT``) against a real ``loanrisk serve``, with
tritonclient.grpc as its users run it: raw tensors (its default), the same scores as the
model, a named version, keys in metadata, and bad requests refused with the right code.
The checks (tests/oip/grpc_checks.py) run in a process of their own (see there why)."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import ROOT
from .conftest import Served


def test_tritonclient_grpc_against_the_grpc_port(served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.oip.grpc_checks", str(served.root), served.http, served.grpc],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok check_") == 3, done.stdout
