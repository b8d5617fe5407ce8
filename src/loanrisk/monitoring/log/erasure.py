"""Erasure of one applicant from the prediction log and the outcomes, by loan id (GDPR Art. 17).

:func:`erase_loan` removes every row whose ``loan_id`` is the one given: from each file of a
model's log (champion, canary and shadow rows alike) and from every outcomes file. A file is
rewritten with the storage's atomic write (a reader, or a process killed meanwhile, sees the
old file whole or the new one, never a part; a file left with no rows is deleted); files that
do not hold the id are not touched. Rows of other loans keep their content exactly.

Each erasure leaves an audit record (:class:`Erasure`), under
``<log directory>/erasures/<model>/``: when, by whom, how many rows and files, and the loan
id's hash (HMAC-SHA256 with ``log_pii_key`` when it is set, else SHA-256), never the id. An
erasure that was interrupted is completed by running it again: it is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from loanrisk.errors import NotFound
from loanrisk.monitoring.log._files import day_files, read_file
from loanrisk.monitoring.log._lock import erasing_outcomes, maintaining
from loanrisk.storage.base import Storage
from loanrisk.storage.parquet import read_parquet
from loanrisk.storage.problems import Problem, ProblemKind

log = logging.getLogger("loanrisk.monitoring")

#: Longest loan id an erasure takes (the outcomes' limit).
MAX_LOAN_ID_CHARS = 128
#: Folder of the audit records, under the log directory.
AUDIT_FOLDER = "erasures"


#: Text with no control character (C0, DEL, C1) and not only white space.
_LOAN_ID_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


class ErasureRequest(BaseModel):
    """The loan whose rows are erased: its id as the log holds it (1 to 128 characters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loan_id: str = Field(
        min_length=1,
        max_length=MAX_LOAN_ID_CHARS,
        description="The loan id, exactly as scored (the log's loan_id).",
        examples=["L-1"],
        # What _storable accepts, for the OpenAPI document: not blank, no control character.
        json_schema_extra={"pattern": _LOAN_ID_TEXT},
    )

    @field_validator("loan_id")
    @classmethod
    def _storable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a loan id is not blank")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            raise ValueError("a loan id holds no control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a loan id is text UTF-8 can encode") from None
        return value


class Erasure(BaseModel):
    """What an erasure removed, as its audit record keeps it: the model, the loan id's hash
    (``sha256:<hex>`` or ``hmac-sha256:<hex>``), when and by whom, the log's rows and files
    (rewritten or deleted), the outcomes' rows and files, and the files that could not be
    read (``problems``: they may still hold the loan; repair them and erase again)."""

    model_config = ConfigDict(frozen=True)

    model: str
    loan_id_hash: str
    at: datetime
    by: str
    rows: int
    files: int
    outcome_rows: int
    outcome_files: int
    problems: list[Problem] = []
    record: str = Field(description="The audit record's path inside the storage.")


def loan_id_hash(loan_id: str, key: bytes | None) -> str:
    """The hash an audit record keeps of a loan id: keyed when there is a key."""
    if key:
        return "hmac-sha256:" + hmac.new(key, loan_id.encode(), hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(loan_id.encode()).hexdigest()


def _log_files(storage: Storage, directory: str, model: str) -> Iterator[str]:
    for _day, folder, names in day_files(storage, directory, model):
        for name in names:
            yield storage.join(folder, name)


def _outcome_files(storage: Storage, directory: str) -> Iterator[str]:
    try:
        names = storage.list(directory)
    except NotFound:
        return
    for name in names:
        if name.endswith(".parquet"):
            yield storage.join(directory, name)


def _without(table: pa.Table, loan_id: str) -> tuple[pa.Table, int]:
    """``table`` without the rows of ``loan_id``, and how many there were."""
    match = pc.fill_null(pc.equal(table["loan_id"], pa.scalar(loan_id, pa.string())), False)
    found = int(pc.sum(match).as_py() or 0)
    return (table.filter(pc.invert(match)) if found else table), found


def _rewrite(storage: Storage, path: str, table: pa.Table) -> None:
    """Replace ``path`` by ``table`` atomically (delete it when no row is left)."""
    if table.num_rows == 0:
        storage.delete(path)
        return
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    storage.write_bytes(path, buffer.getvalue())


def _erase_in(
    storage: Storage,
    paths: Iterator[str],
    loan_id: str,
    *,
    kind: ProblemKind,
    problems: list[Problem],
    log_format: bool,
    refresh: Callable[[], None],
) -> tuple[int, int]:
    """Erase ``loan_id``'s rows from each of ``paths``: (rows, files changed). A file's ids
    are read first; only a file that holds the id is read whole and rewritten."""
    rows = files = 0
    for path in paths:
        refresh()
        try:
            if log_format:
                ids = read_file(storage, path, ["loan_id"])
            else:
                ids = read_parquet(storage, path, columns=["loan_id"])
        except Exception as exc:  # one bad file never stops the erasure (reported)
            log.warning("erasure: %s could not be read: %s", path, exc)
            message = (
                f"unreadable ({type(exc).__name__}): it may hold the loan; "
                "repair or remove it, then erase again"
            )
            problems.append(Problem(kind=kind, path=path, message=message))
            continue
        if not _without(ids, loan_id)[1]:
            continue
        whole = read_file(storage, path) if log_format else read_parquet(storage, path)
        kept, found = _without(whole, loan_id)
        _rewrite(storage, path, kept)
        rows += found
        files += 1
    return rows, files


def erase_loan(
    storage: Storage,
    *,
    log_directory: str,
    outcome_directory: str,
    model: str,
    request: ErasureRequest,
    by: str,
    key: bytes | None = None,
) -> Erasure:
    """Erase the rows of ``request.loan_id`` from ``model``'s prediction log and from the
    outcomes, then write the audit record (``by``: the API key's name or the CLI user;
    ``key``: the HMAC key of the id's hash). Returns the record. It holds the model's log
    maintenance lock, and while it rewrites the outcomes (shared by every model) the
    outcomes lock too, so erasures of different models at once lose nothing
    (:class:`~loanrisk.errors.Conflict` when a compaction or another erasure holds either
    for more than 30 s)."""
    loan_id = request.loan_id
    problems: list[Problem] = []
    with maintaining(storage, log_directory, model) as refresh:
        rows, files = _erase_in(
            storage,
            _log_files(storage, log_directory, model),
            loan_id,
            kind="log_file",
            problems=problems,
            log_format=True,
            refresh=refresh,
        )
        # The outcomes are every model's: one erasure at a time rewrites them.
        with erasing_outcomes(storage, outcome_directory) as refresh_outcomes:

            def refresh_both() -> None:
                refresh()
                refresh_outcomes()

            outcome_rows, outcome_files = _erase_in(
                storage,
                _outcome_files(storage, outcome_directory),
                loan_id,
                kind="outcome_file",
                problems=problems,
                log_format=False,
                refresh=refresh_both,
            )
    at = datetime.now(UTC)
    name = f"{at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.json"
    record = storage.join(log_directory, AUDIT_FOLDER, f"model={model}", name)
    erasure = Erasure(
        model=model,
        loan_id_hash=loan_id_hash(loan_id, key),
        at=at,
        by=by,
        rows=rows,
        files=files,
        outcome_rows=outcome_rows,
        outcome_files=outcome_files,
        problems=problems,
        record=record,
    )
    doc = erasure.model_dump(mode="json")
    storage.write_bytes(record, json.dumps(doc, indent=2).encode())
    log.info(
        "erasure: %d log row(s) in %d file(s) and %d outcome row(s) erased",
        rows,
        files,
        outcome_rows,
        extra={"model": model, "by": by, "loan_id_hash": erasure.loan_id_hash},
    )
    return erasure


def erasure_records(storage: Storage, log_directory: str, model: str) -> list[Erasure]:
    """The audit records of ``model``'s erasures, oldest first (an unreadable one skipped)."""
    folder = storage.join(log_directory, AUDIT_FOLDER, f"model={model}")
    try:
        names = storage.list(folder)
    except NotFound:
        return []
    records = []
    for name in names:
        try:
            records.append(Erasure.model_validate_json(storage.read_bytes(f"{folder}/{name}")))
        except Exception:  # a bad record is skipped, never fatal to the listing
            log.warning("erasure: audit record %s/%s does not read", folder, name)
    return records
