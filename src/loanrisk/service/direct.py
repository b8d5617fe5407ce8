"""A route that FastAPI describes but does not drive, for the hot scoring path.

FastAPI's request handler does per-request work for every route, whatever the route declares:
it solves the dependency graph (even for ``Request`` alone), extracts the endpoint's context
for error messages, opens telemetry scopes and checks how the endpoint's answer should be
serialised. For ``/v1/predict`` that was about a fifth of the framework's share of a request.
A :class:`DirectRoute` keeps everything FastAPI does once (the OpenAPI description, the
matching, the exception handlers, the request's ``route`` in its scope) and calls its
endpoint with the request alone; the endpoint reads its own inputs (the services, the key,
the body), as the Open Inference Protocol's routes already do.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]
E = TypeVar("E", bound=Endpoint)


class DirectRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose endpoint, an ``async def`` taking only the
    request and returning a :class:`Response`, is called as it is. Refuses (``TypeError``, as
    the app is built) an endpoint that declares anything FastAPI would have to resolve:
    dependencies, parameters or a body; they would be silently ignored otherwise."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        declared = (
            d.dependencies or d.path_params or d.query_params or d.header_params,
            d.cookie_params or d.body_params,
        )
        if any(declared) or d.request_param_name is None:
            raise TypeError(
                f"{path}: a DirectRoute's endpoint takes the request alone (no dependencies, "
                "parameters or body)"
            )

    def get_route_handler(self) -> Endpoint:
        endpoint: Endpoint = self.endpoint
        return endpoint


def direct_post(router: APIRouter, path: str, **options: Any) -> Callable[[E], E]:
    """``@router.post(path, **options)`` as a :class:`DirectRoute` (FastAPI's ``post`` takes
    no route class of its own)."""

    def add(endpoint: E) -> E:
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=DirectRoute, **options
        )
        return endpoint

    return add
