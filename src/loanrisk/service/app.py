"""``create_app(settings)``: the FastAPI application, its lifespan and its routes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from loanrisk._version import __version__
from loanrisk.console import docs as console_docs
from loanrisk.console import routes as console
from loanrisk.errors import Conflict
from loanrisk.inference.backends import limit_onedal_threads
from loanrisk.jobs.manager import JobManager
from loanrisk.monitoring.fairness import fairness_for
from loanrisk.monitoring.log import CANARY, SHADOW
from loanrisk.monitoring.reports import BACKTEST_DAYS, drift_for
from loanrisk.oip import rest as oip_rest
from loanrisk.service import errors, openapi
from loanrisk.service.middleware import BodyLimit, Observe, OneValuePerParameter
from loanrisk.service.routes import (
    admin,
    datasets,
    erasure,
    health,
    jobs,
    models,
    monitoring,
    predict,
    reference,
    schemas,
)
from loanrisk.serving.auth import ApiKeys
from loanrisk.serving.metrics import Metrics
from loanrisk.serving.state import Services, attach
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, Storage, open_storage
from loanrisk.validation.window import Window, backtest_for

log = logging.getLogger("loanrisk.service")

OPEN_WARNING = (
    "NO API KEYS CONFIGURED: the service is OPEN; anyone who reaches it can upload data, "
    "train and promote models. Set LOANRISK_API_KEYS or LOANRISK_API_KEYS_FILE."
)


def _note_serving(services: Services, metrics: Metrics) -> None:
    for cache in services.models.all():
        try:
            routing = cache.snapshot()
        except Conflict:  # nothing served yet
            continue
        scorer = routing.champion
        cause = scorer.fallback.cause if scorer.fallback else None
        metrics.serving(scorer.model.name, scorer.version, scorer.backend.name, fallback=cause)
        for role, other in ((SHADOW, routing.shadow), (CANARY, routing.canary)):
            version, backend = (other.version, other.backend.name) if other else (None, "")
            cause = other.fallback.cause if other and other.fallback else None
            metrics.serving(cache.name, version, backend, role, fallback=cause)


async def _reload_forever(services: Services, metrics: Metrics, interval: float) -> None:
    """Hot reload: follow the alias of every model in use (another replica may move it)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(services.models.refresh_all)
            _note_serving(services, metrics)
        except Exception:  # a storage hiccup must not end the reload loop
            log.exception("model reload failed; serving the current model")


async def _watch_drift(services: Services, metrics: Metrics) -> None:
    """Refresh the ``loanrisk_psi`` gauges of the served version from the prediction log,
    over the last ``drift_window_hours``, every ``drift_interval`` seconds."""
    settings = services.settings
    served = services.models.served
    while True:
        await asyncio.sleep(settings.drift_interval)
        scorer = served.serving()
        if scorer is None:
            continue
        until = datetime.now(UTC)
        since = until - timedelta(hours=settings.drift_window_hours)
        try:
            report = await run_in_threadpool(
                drift_for,
                services.storage,
                served.registry,
                services.storage.resolve(settings.log_directory),
                served.name,
                scorer.version,
                since=since,
                until=until,
                max_rows=settings.monitor_max_rows,
            )
        except Exception:  # a storage hiccup must not end the loop
            log.exception("drift refresh failed; the gauges keep their last values")
            continue
        metrics.drift(report)


async def _watch_backtest(services: Services, metrics: Metrics) -> None:
    """Refresh the ``loanrisk_backtest_light`` gauges of the served version every
    ``backtest_interval`` seconds. Each refresh runs in a worker thread (the event loop keeps
    serving) and is awaited before the next sleep begins: refreshes never overlap or pile up,
    however long one takes."""
    served = services.models.served
    while True:
        await asyncio.sleep(services.settings.backtest_interval)
        scorer = served.serving()
        if scorer is None:
            continue
        until = datetime.now(UTC)
        await _refresh_backtest(services, metrics, served.name, scorer.version, until)


async def _refresh_backtest(
    services: Services, metrics: Metrics, name: str, version: int, until: datetime
) -> None:
    """Refresh the ``loanrisk_backtest_light`` gauges of the served version: its backtest
    over the loans scored in the last ``BACKTEST_DAYS`` days that have outcomes."""
    settings, storage = services.settings, services.storage
    where = Window.of(storage, settings, until - timedelta(days=BACKTEST_DAYS), until)
    try:
        report = await run_in_threadpool(
            functools.partial(
                backtest_for,
                where,
                services.models.served.registry,
                name,
                version,
                with_vintages=False,
            )
        )
    except Exception:  # a storage hiccup must not end the loop
        log.exception("backtest refresh failed; the gauges keep their last values")
        return
    metrics.backtest(report)


async def _watch_fairness(services: Services, metrics: Metrics) -> None:
    """Refresh the ``loanrisk_air`` gauges of the served version every ``fairness_interval``
    seconds, over the loans scored in the last ``BACKTEST_DAYS`` days (a refresh at a time,
    in a worker thread)."""
    settings, storage = services.settings, services.storage
    served = services.models.served
    while True:
        await asyncio.sleep(settings.fairness_interval)
        scorer = served.serving()
        if scorer is None:
            continue
        until = datetime.now(UTC)
        try:
            report = await run_in_threadpool(
                functools.partial(
                    fairness_for,
                    storage,
                    served.registry,
                    storage.resolve(settings.log_directory),
                    storage.resolve(settings.outcome_directory),
                    served.name,
                    scorer.version,
                    since=until - timedelta(days=BACKTEST_DAYS),
                    until=until,
                    max_rows=settings.monitor_max_rows,
                )
            )
        except Exception:  # a storage hiccup must not end the loop
            log.exception("fairness refresh failed; the gauges keep their last values")
            continue
        metrics.fairness(report)


async def _collect_abandoned_writes(storage: Storage) -> None:
    """Remove what writers killed mid-write left on a local storage (off the start-up path)."""
    if not isinstance(storage, FsspecStorage):
        return
    try:
        removed = await run_in_threadpool(storage.collect_abandoned_writes)
    except OSError:
        log.exception("collecting abandoned temporary files failed")
        return
    if removed:
        log.info("removed %d abandoned temporary file(s)", removed)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; storage, jobs, keys and the model cache are built when it starts."""
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_onedal_threads(1)
        storage = open_storage(settings)
        keys = ApiKeys.from_settings(settings)
        if keys.open:
            log.warning(OPEN_WARNING)
        manager = JobManager(settings, storage, on_finish=metrics.job_ended)
        services = Services.build(settings, storage, manager, keys, metrics)
        await run_in_threadpool(services.models.served.refresh)
        _note_serving(services, metrics)
        collector = asyncio.create_task(_collect_abandoned_writes(storage))
        attach(app, services)
        reloader = asyncio.create_task(_reload_forever(services, metrics, settings.reload_interval))
        watchers = [
            asyncio.create_task(watch(services, metrics))
            for watch, interval in (
                (_watch_drift, settings.drift_interval),
                (_watch_backtest, settings.backtest_interval),
                (_watch_fairness, settings.fairness_interval),
            )
            if interval and services.log is not None
        ]
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes (which otherwise pause requests for tens of ms).
        grpc_server = None
        if settings.grpc_port:
            # Imported only when asked for: its messages (package ``inference``) would clash
            # with a client library's in the same process (tritonclient registers the same).
            from loanrisk.oip import grpc_service

            grpc_server = grpc_service.start(services, asyncio.get_running_loop())
        gc.freeze()
        log.info("loanrisk ready", extra={"storage": storage.url, "auth": not keys.open})
        try:
            yield
        finally:
            for task in (reloader, collector, *watchers):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if grpc_server is not None:
                await run_in_threadpool(lambda: grpc_server.stop(grace=5).wait())
            await run_in_threadpool(services.close)

    app = FastAPI(
        title="loanrisk",
        version=__version__,
        description=(
            "Loan default risk: process loan data, train and publish XGBoost models, score "
            "loans (oneDAL). The v1 API, plus the reference system's routes unchanged. "
            "Send `Authorization: Bearer <key>` when the service has API keys."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    openapi.install(app)
    # Scoring routes first: Starlette tries routes in order, so the hot ones match quickest.
    for module in (
        health,
        predict,
        oip_rest,
        datasets,
        models,
        schemas,
        monitoring,
        erasure,
        jobs,
        admin,
        reference,
    ):
        app.include_router(module.router)
    console_docs.install(app)
    console.install(app)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(OneValuePerParameter)
    app.add_middleware(Observe, metrics=metrics)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker reads the settings from LOANRISK_*)."""
    return create_app(Settings())
