"""API keys on the v1 and reference routes: the route dependency that checks the key a
request carries against the service's :class:`~loanrisk.serving.auth.ApiKeys`, and the
name of the key that made it."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from loanrisk.serving.auth import ANONYMOUS, presented_key
from loanrisk.serving.state import services_of


def require(scope: str) -> Any:
    """A route dependency that lets through keys with ``scope`` (or any, when open); the
    key's name is kept for the route (:func:`caller`)."""

    async def check(request: Request) -> None:  # async: no threadpool hop
        request.state.caller = services_of(request.app).keys.check(
            presented_key(request.headers), scope
        )

    return Depends(check)


def caller(request: Request) -> str:
    """The name of the key that made ``request`` (after :func:`require` let it through)."""
    return str(getattr(request.state, "caller", ANONYMOUS))
