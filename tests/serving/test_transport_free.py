"""The serving core is transport-free: importing every module of it loads no web or RPC
framework (they belong to the transports above it)."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("fastapi", "starlette", "grpc")

PROBE = """
import pkgutil, importlib, sys
import loanrisk.serving as serving
names = sorted(m.name for m in pkgutil.walk_packages(serving.__path__, "loanrisk.serving."))
for name in names:
    importlib.import_module(name)
print(",".join(names))
print(",".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_importing_every_serving_module_loads_no_web_or_rpc_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    names, loaded = (line.split(",") for line in done.stdout.strip().splitlines())
    assert {"loanrisk.serving.scoring", "loanrisk.serving.dataplane"} <= set(names)
    assert {"loanrisk.serving.state", "loanrisk.serving.shadow", "loanrisk.serving.metrics"} <= (
        set(names)
    )
    assert [f for f in FRAMEWORKS if f in loaded] == []


def test_the_grpc_transport_loads_no_web_framework() -> None:
    """gRPC maps the error tree to its own codes: it reaches nothing of the HTTP service."""
    probe = (
        "import sys, loanrisk.oip.grpc_service\n"
        "print(','.join(m for m in ('fastapi', 'starlette', 'loanrisk.service') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""
