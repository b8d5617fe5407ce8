"""Blocking work off the event loop, on the worker threads the HTTP framework uses too (anyio's
pool: one limit for every transport, no second pool to size)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` on a worker thread; the caller's context (request id) goes
    with it."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
