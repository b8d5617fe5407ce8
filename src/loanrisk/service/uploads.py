"""Uploaded files go to the storage, chunk by chunk, never whole into memory."""

from __future__ import annotations

import re
import secrets
from typing import IO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from loanrisk.errors import InvalidInput
from loanrisk.storage.base import Storage

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str | None, default: str = "upload.csv") -> str:
    """The client's file name reduced to a harmless base name (no folders, no dots first)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip("._")[:100]
    return cleaned or default


def _copy(source: IO[bytes], storage: Storage, path: str, name: str) -> None:
    written = 0
    with storage.open_write(path) as sink:
        while chunk := source.read(CHUNK):
            sink.write(chunk)
            written += len(chunk)
    if written == 0:
        storage.delete(path)
        raise InvalidInput(f"the uploaded file {name!r} is empty", details={"field": "file"})


async def stage(upload: object, storage: Storage, directory: str) -> tuple[str, str]:
    """Copy a form's file to ``<directory>/uploads/<random>/<name>``; ``(path, name)``."""
    if not isinstance(upload, UploadFile):
        raise InvalidInput("'file' must be a file upload", details={"field": "file"})
    name = safe_name(upload.filename)
    path = storage.join(directory, "uploads", secrets.token_hex(8), name)
    await run_in_threadpool(_copy, upload.file, storage, path, name)
    return path, name
