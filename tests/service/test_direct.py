"""A direct route: described by FastAPI like any route, its endpoint called with the request
alone; an endpoint that declares what FastAPI would resolve is refused as the app is built."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

from loanrisk.service.direct import DirectRoute, direct_post


async def needs_nothing() -> None:
    return None


class Body(BaseModel):
    amount: int


def test_a_direct_route_is_described_and_called_with_the_request() -> None:
    router = APIRouter()

    @direct_post(router, "/echo", summary="Echo", responses={409: {"description": "busy"}})
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"query": request.url.query, "bytes": len(body)})

    app = FastAPI()
    app.include_router(router)
    operation = app.openapi()["paths"]["/echo"]["post"]
    assert operation["summary"] == "Echo"
    assert "409" in operation["responses"]
    assert "parameters" not in operation and "requestBody" not in operation
    with TestClient(app) as client:
        answer = client.post("/echo?top_k=x", content=b"12345")
        assert answer.json() == {"query": "top_k=x", "bytes": 5}
        assert client.get("/echo").status_code == 405


async def with_parameter(request: Request, top_k: int = 4) -> Response:
    return Response()


async def with_dependency(request: Request, _: Annotated[None, Depends(needs_nothing)]) -> Response:
    return Response()


async def with_body(request: Request, body: Body) -> Response:
    return Response()


async def without_request() -> Response:
    return Response()


@pytest.mark.parametrize("endpoint", [with_parameter, with_dependency, with_body, without_request])
def test_an_endpoint_that_declares_more_than_the_request_is_refused(endpoint: object) -> None:
    with pytest.raises(TypeError, match="takes the request alone"):
        DirectRoute("/x", endpoint, methods=["POST"])  # type: ignore[arg-type]


def test_dependencies_given_to_the_route_are_refused() -> None:
    async def plain(request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="takes the request alone"):
        DirectRoute("/x", plain, methods=["POST"], dependencies=[Depends(needs_nothing)])
