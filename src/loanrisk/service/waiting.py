"""Waiting for a job without blocking the event loop (the reference's synchronous routes)."""

from __future__ import annotations

import asyncio
from typing import Any

from loanrisk.errors import error_from_dict
from loanrisk.service.state import Services


async def outcome(services: Services, record: dict[str, Any]) -> dict[str, Any]:
    """The job's result once it ends; its error, raised, when it failed or was cancelled."""
    future = services.jobs.future(record["id"])
    final = (
        await asyncio.wrap_future(future) if future is not None else services.jobs.get(record["id"])
    )
    if final["state"] != "succeeded":
        error = error_from_dict(final["error"] or {"message": f"job {final['state']}"})
        error.details = {**error.details, "job": final["id"]}
        raise error
    result: dict[str, Any] = final["result"]
    return result
