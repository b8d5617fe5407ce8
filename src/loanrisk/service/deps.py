"""Dependency aliases for routes: each route takes the parts of the service it uses.

All are async on purpose: a sync dependency would cost a threadpool hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loanrisk.inference.cache import ModelCaches
from loanrisk.jobs.manager import JobManager
from loanrisk.serving.locations import Locations
from loanrisk.serving.metrics import Metrics
from loanrisk.serving.state import Services, services_of
from loanrisk.settings import Settings
from loanrisk.storage import Storage


async def get_services(request: Request) -> Services:
    return services_of(request.app)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_storage(services: ServicesDep) -> Storage:
    return services.storage


async def get_jobs(services: ServicesDep) -> JobManager:
    return services.jobs


async def get_models(services: ServicesDep) -> ModelCaches:
    return services.models


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


async def get_locations(services: ServicesDep) -> Locations:
    return services.locations


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
ModelsDep = Annotated[ModelCaches, Depends(get_models)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LocationsDep = Annotated[Locations, Depends(get_locations)]
