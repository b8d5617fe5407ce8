"""Waiting for a job without blocking the event loop (the reference's synchronous routes)."""

from __future__ import annotations

import asyncio
from typing import Any

from loanrisk.contracts import JobRecord
from loanrisk.errors import error_from_dict
from loanrisk.serving.state import Services


async def outcome(services: Services, record: JobRecord) -> dict[str, Any]:
    """The job's result once it ends; its error, raised, when it failed or was cancelled."""
    future = services.jobs.future(record.id)
    if future is not None:
        final = await asyncio.wrap_future(future)
    else:
        final = services.jobs.get(record.id)
    if final.state != "succeeded" or final.result is None:
        doc = final.error.model_dump() if final.error else {"message": f"job {final.state}"}
        error = error_from_dict(doc)
        error.details = {**error.details, "job": final.id}
        raise error
    return final.result
