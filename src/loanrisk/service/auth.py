"""API keys on the v1 and reference routes: the route dependency that checks the key a
request carries against the service's :class:`~loanrisk.serving.auth.ApiKeys`, and the
name of the key that made it."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from loanrisk.serving.auth import ANONYMOUS, presented_key
from loanrisk.serving.state import services_of


def authorize(request: Request, scope: str) -> None:
    """Let ``request`` through if its key has ``scope`` (or any, when open), keeping the
    key's name for the route (:func:`caller`); raises what :meth:`ApiKeys.check` raises."""
    keys = services_of(request.app).keys
    if keys.open:  # anyone may: the caller is the anonymous one caller() names by default
        return
    request.state.caller = keys.check(presented_key(request.headers), scope)


def require(scope: str) -> Any:
    """A route dependency that runs :func:`authorize` with ``scope``."""

    async def check(request: Request) -> None:  # async: no threadpool hop
        authorize(request, scope)

    return Depends(check)


def caller(request: Request) -> str:
    """The name of the key that made ``request`` (after :func:`require` let it through)."""
    return str(getattr(request.state, "caller", ANONYMOUS))
