"""The reference system's routes, answered in its shapes (more to come: /data, /train ...)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reference-compatible"])


@router.get("/ping")
async def ping() -> dict[str, str]:
    """The reference's health check; both flavours' keys (Azure ``Message``, AWS ``message``)."""
    return {"Message": "Server is Running", "message": "Server is Running"}
