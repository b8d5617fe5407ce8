"""Dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loanrisk.service.state import Services


async def get_services(request: Request) -> Services:
    """Async on purpose: a sync dependency would cost a threadpool hop per request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
