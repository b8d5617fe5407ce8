"""``create_app(settings)``: the FastAPI application, its lifespan and its routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import loanrisk
from loanrisk.service import errors
from loanrisk.service.routes import health, legacy, predict
from loanrisk.service.state import Services
from loanrisk.settings import Settings
from loanrisk.storage import open_storage

log = logging.getLogger("loanrisk.service")


async def _reload_forever(services: Services, interval: float) -> None:
    """Hot reload: follow the alias of every model in use (another replica may move it)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(services.refresh_all)
        except Exception:  # a storage hiccup must not end the reload loop
            log.exception("model reload failed; serving the current model")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; storage, registry and model cache are built when it starts."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services(settings, open_storage(settings))
        await run_in_threadpool(services.cache().refresh)
        app.state.services = services
        reloader = asyncio.create_task(_reload_forever(services, settings.reload_interval))
        try:
            yield
        finally:
            reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloader

    app = FastAPI(
        title="loanrisk",
        version=loanrisk.__version__,
        description="Loan default risk: probabilities of default from loan applications.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(predict.router)
    app.include_router(legacy.router)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker reads the settings from LOANRISK_*)."""
    return create_app(Settings())
