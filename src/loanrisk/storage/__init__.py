"""Storage backends: local directories and S3 through fsspec, and memory for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loanrisk.settings import Settings
from loanrisk.storage.base import Storage, normalise_relative
from loanrisk.storage.fs import FsspecStorage
from loanrisk.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from pydantic import JsonValue

__all__ = ["FsspecStorage", "MemoryStorage", "Storage", "normalise_relative", "open_storage"]


def storage_options(settings: Settings, url: str) -> dict[str, JsonValue]:
    """fsspec options for ``url`` from settings (S3 endpoint and region, Azure account)."""
    if url.startswith(("az://", "abfs://")):
        if settings.azure_connection_string is not None:
            return {"connection_string": settings.azure_connection_string.get_secret_value()}
        if settings.azure_account_name:
            return {"account_name": settings.azure_account_name, "anon": False}
        return {}
    if not url.startswith("s3://"):
        return {}
    client: dict[str, JsonValue] = {}
    if settings.s3_endpoint_url:
        client["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        client["region_name"] = settings.s3_region
    return {"client_kwargs": client} if client else {}


def open_storage(settings: Settings, url: str | None = None) -> Storage:
    """The storage at ``url`` (default: ``settings.storage``)."""
    target = url or settings.storage
    if target.startswith("memory://"):
        return MemoryStorage(target.removeprefix("memory://"))
    return FsspecStorage(target, storage_options=storage_options(settings, target))
