"""Running the service under uvicorn: workers, multi-process metrics, JSON logs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from loanrisk.schema import EXAMPLE_LOAN
from loanrisk.service.logs import log_config
from loanrisk.settings import Settings


def _metrics_directory() -> None:
    """Point every worker at one fresh directory for Prometheus' multi-process files."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's counters are not ours
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="loanrisk-metrics-")


def example_requests(settings: Settings) -> str:
    """Requests a person can paste once the server answers."""
    base = f"http://{settings.host}:{settings.port}"
    loan = json.dumps(EXAMPLE_LOAN)
    reference = {"model_name": settings.model_name, "model_key": settings.model_directory}
    legacy = json.dumps({**reference, "sample": [EXAMPLE_LOAN]})
    auth = "" if not (settings.api_keys or settings.api_keys_file) else (
        ' -H "Authorization: Bearer $LOANRISK_KEY"'
    )  # fmt: skip
    return "\n".join([
        f"  curl{auth} {base}/readyz",
        f"  curl{auth} -X POST {base}/v1/predict -H 'Content-Type: application/json' -d '{loan}'",
        f"  curl{auth} -X POST {base}/predict -H 'Content-Type: application/json' -d '{legacy}'",
        f"  curl{auth} {base}/v1/models",
        f"  open {base}/docs   (OpenAPI, every route with examples)",
    ])  # fmt: skip


def run_server(settings: Settings) -> None:
    """Serve until interrupted. Workers are separate processes that build their app from the
    environment, so every setting given here is passed on as ``LOANRISK_*``."""
    import uvicorn  # only the server needs it

    os.environ["LOANRISK_STORAGE"] = settings.storage
    _metrics_directory()
    uvicorn.run(
        "loanrisk.service.app:app_from_environment", factory=True, host=settings.host,
        port=settings.port, workers=settings.workers, log_config=log_config(),
        access_log=False, timeout_graceful_shutdown=30,
    )  # fmt: skip
