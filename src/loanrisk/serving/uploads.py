"""Uploaded files go to the storage, chunk by chunk, never whole into memory; an upload form
(the v1 API's multipart ``/v1/datasets``, the console's) becomes its processing job here,
whichever transport received it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import IO, Protocol, runtime_checkable

from pydantic import BaseModel, Field, ValidationError

from loanrisk.contracts import ProcessDataJob
from loanrisk.errors import InvalidInput, NotFound, StorageError
from loanrisk.requests import process_data_job
from loanrisk.schema import LoanSchema, parse_schema
from loanrisk.serving.errors import invalid_fields
from loanrisk.serving.state import Services, store_of
from loanrisk.serving.threads import off_loop
from loanrisk.storage.base import Storage

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@runtime_checkable
class Upload(Protocol):
    """A file a form carried (a framework's upload object): its client-side name and bytes."""

    filename: str | None
    file: IO[bytes]


def safe_name(filename: str | None, default: str = "upload.csv") -> str:
    """The client's file name reduced to a harmless base name (no folders, no dots first)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip("._")[:100]
    return cleaned or default


def _copy(source: IO[bytes], storage: Storage, path: str, name: str) -> None:
    """Copy ``source`` to ``path``, whole or not at all. A write the disk refuses (full,
    over a quota or a file-size limit) is the storage's failure: :class:`StorageError`
    (503), and nothing is left under ``path``."""
    written = 0
    with storage.open_write(path) as sink:
        while chunk := source.read(CHUNK):
            try:
                sink.write(chunk)
            except OSError as exc:
                raise StorageError(
                    f"the storage could not take the upload {name!r}: {exc.strerror or exc}",
                    details={"field": "file", "written_bytes": written},
                ) from None
            written += len(chunk)
    if written == 0:
        storage.delete(path)
        raise InvalidInput(f"the uploaded file {name!r} is empty", details={"field": "file"})


async def stage(upload: object, storage: Storage, directory: str) -> tuple[str, str]:
    """Copy a form's file to ``<directory>/uploads/<random>/<name>``; ``(path, name)``."""
    if not isinstance(upload, Upload):
        raise InvalidInput("'file' must be a file upload", details={"field": "file"})
    name = safe_name(upload.filename)
    path = storage.join(directory, "uploads", secrets.token_hex(8), name)
    await off_loop(_copy, upload.file, storage, path, name)
    return path, name


async def named_schema(
    services: Services, inline: LoanSchema | None, schema_name: str | None
) -> LoanSchema | None:
    """The schema a request names: ``inline``, or stored under ``schema_name`` (not both;
    neither: None, the built-in)."""
    if inline is not None and schema_name is not None:
        raise InvalidInput("send schema or schema_name, not both", details={"field": "schema"})
    if schema_name is None:
        return inline
    try:
        return await off_loop(store_of(services).get, schema_name)
    except NotFound as exc:
        raise InvalidInput(exc.message, details={"field": "schema_name"}) from None


class UploadForm(BaseModel):
    """The fields of an upload form beside its ``file`` (and its ``schema`` text)."""

    size: int | None = Field(None, ge=1)
    directory: str = "data"
    keep_columns: list[str] = Field([], max_length=32)
    schema_name: str | None = None

    model_config = {"extra": "forbid"}


async def upload_job(services: Services, form: Mapping[str, object]) -> ProcessDataJob:
    """The processing job of an upload form: its fields checked (named ``form.<field>``),
    then its ``file`` staged on the storage, chunk by chunk."""
    fields = {
        "size": form.get("size") or None,
        "directory": str(form.get("directory") or "data"),
        "keep_columns": [c for c in str(form.get("keep_columns") or "").split(",") if c],
        "schema_name": form.get("schema_name") or None,
    }
    try:
        body = UploadForm.model_validate(fields)
    except ValidationError as exc:
        raise invalid_fields(exc, "form") from None
    text = form.get("schema")
    inline = parse_schema(str(text), source="form.schema") if text else None
    schema = await named_schema(services, inline, body.schema_name)
    settings = services.settings
    directory = services.storage.resolve(body.directory)
    job = process_data_job(  # refuses a size over the ceiling before the upload is staged
        settings,
        source="upload",
        source_name="upload",
        size=body.size,
        directory=directory,
        keep_columns=body.keep_columns,
        loan_schema=schema,
        staged=True,
    )
    source, name = await stage(form.get("file"), services.storage, settings.job_directory)
    return job.model_copy(update={"source": source, "source_name": name})
