"""Running the service under uvicorn: workers, multi-process metrics, JSON logs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from loanrisk.errors import Conflict
from loanrisk.schema import LoanSchema
from loanrisk.serving.logs import log_config
from loanrisk.serving.metrics import process_alive
from loanrisk.settings import Settings

METRICS_PREFIX = "loanrisk-metrics-"


def _collect_abandoned_metrics(parent: Path) -> None:
    """Remove the metrics directories of servers that are gone (killed before cleaning up).
    Each is named after the pid of the server that made it."""
    for directory in parent.glob(f"{METRICS_PREFIX}*"):
        pid = directory.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """With several workers, point them all at one directory for Prometheus' multi-process
    files (one given in ``PROMETHEUS_MULTIPROC_DIR``, emptied; else a fresh one, removed when
    the server stops). One worker keeps its metrics in memory: no directory at all."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's counters are not ours
            stale.unlink()
        yield
        return
    parent = Path(tempfile.gettempdir())
    _collect_abandoned_metrics(parent)
    if workers == 1:
        yield
        return
    made = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-", dir=parent)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(made, ignore_errors=True)


def served_schema(settings: Settings) -> LoanSchema:
    """The declared schema of the version a service of ``settings`` serves: the model
    ``model_name`` at ``model_alias``, in ``model_directory`` of the storage.

    Raises :class:`~loanrisk.errors.NotFound` when there is no such model, alias or version
    yet, and any other :class:`~loanrisk.errors.LoanRiskError` when it cannot be read."""
    from loanrisk.registry.models import ModelRegistry  # xgboost: only when asked
    from loanrisk.storage import open_storage

    registry = ModelRegistry(open_storage(settings), settings.model_directory)
    return registry.schema(settings.model_name, settings.model_alias)


def example_requests(
    settings: Settings, schema: LoanSchema | None, *, problem: str | None = None
) -> str:
    """Requests a person can paste once the server answers, under a first line that says
    what they are. The loans are of ``schema``, the served model's; ``None`` (no model
    served yet, ``problem`` says why) leaves them out, since the service would answer them
    409, and says how to get a model."""
    base = f"http://{settings.host}:{settings.port}"
    auth = (
        ""
        if not (settings.api_keys or settings.api_keys_file)
        else (' -H "Authorization: Bearer $LOANRISK_KEY"')
    )
    post, json_body = f"curl{auth} -X POST", "-H 'Content-Type: application/json' -d"
    if schema is None:
        heading = (
            f"No model is served yet ({settings.model_name}@{settings.model_alias}: "
            f"{problem or 'not found'}). Process loans and train one (loanrisk data process, "
            f"loanrisk train; or POST /v1/datasets and /v1/models/{settings.model_name}/"
            f"versions), promote it to {settings.model_alias!r}, then score loans of its "
            "schema. Until then, try:"
        )
        scoring = []
    else:
        heading = f"Try (loans of the served model's schema {schema.name!r}):"
        example = schema.example_record()
        reference = {
            "model_name": settings.model_name,
            "model_key": settings.model_directory,
            "sample": [example],
        }
        # quoted for a POSIX shell, whatever the schema's values hold
        loan, legacy = (shlex.quote(json.dumps(doc)) for doc in (example, reference))
        scoring = [
            f"  {post} {base}/v1/predict {json_body} {loan}",
            f"  {post} {base}/predict {json_body} {legacy}",
        ]
    return "\n".join(
        [
            heading,
            f"  curl{auth} {base}/readyz",
            *scoring,
            f"  curl{auth} {base}/v1/models",
            f"  open {base}/docs   (OpenAPI, every route with examples)",
            f"  open {base}/       (the console: models, reports, datasets, jobs, monitoring)",
        ]
    )


APP = "loanrisk.service.app:app_from_environment"
#: uvicorn's exit code for a worker that cannot start (its supervisor then stops).
STARTUP_FAILURE = 3


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_shared_port(host: str, port: int) -> socket.socket:
    """A socket of this process's own, bound to a port that other workers bind too
    (``SO_REUSEPORT``). The kernel gives each new connection to one of those listening on
    it: uvicorn listens once the app has started, so a worker that is starting (or
    restarting) gets no connections until it can answer them."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logging.getLogger("loanrisk.service").error("cannot bind %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    return sock


class WorkerListener:
    """Stands in uvicorn's list of sockets for a socket each worker opens for itself.

    uvicorn binds one socket and shares it: the workers race to accept, and keep-alive
    clients stay on whichever worker won (32 connections split 6/26 on a 2-core machine, and
    the busy worker's queue sets the p99). Pickled into each spawned worker (a restarted one
    too), this becomes that worker's own socket on the port (:func:`bind_shared_port`), and
    the kernel spreads connections over the workers by a hash of each connection.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind_shared_port, self.address


def _refuse_taken_port(host: str, port: int) -> None:
    """Fail at once when something listens on the port already. A plain bind fails on a
    listening socket; without this check a second ``loanrisk serve`` would join the first
    one's ``SO_REUSEPORT`` group and silently take half its connections."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise Conflict(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run_server(settings: Settings, announce: Callable[[], None] | None = None) -> None:
    """Serve until interrupted; ``announce`` runs once the port is known to be free.

    Workers are separate processes that build their app from the environment, so every
    setting given here is passed on as ``LOANRISK_*``. With several workers, each listens on
    the port itself (:class:`WorkerListener`); uvicorn's supervisor (:class:`Supervisor`)
    starts, watches and restarts them."""
    import uvicorn  # only the server needs it

    from loanrisk.service.supervisor import Supervisor

    os.environ["LOANRISK_STORAGE"] = settings.storage
    _refuse_taken_port(settings.host, settings.port)
    if announce is not None:
        announce()
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_config": log_config(),
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "timeout_worker_healthcheck": settings.worker_healthcheck_timeout,
    }
    with _metrics_directory(settings.workers):
        if settings.workers == 1:
            uvicorn.run(APP, **options)
            return
        listener = WorkerListener(settings.host, settings.port)
        Supervisor(uvicorn.Config(APP, **options), sockets=[cast(socket.socket, listener)]).run()
