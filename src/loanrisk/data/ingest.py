"""Reading raw loan CSV (and Parquet) into validated frames: the text chunk by chunk
(:mod:`loanrisk.schema.rawcsv`, which checks it first), each chunk validated against the
declared schema.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import IO, Literal

import pandas as pd

from loanrisk.data.readahead import read_ahead
from loanrisk.errors import InvalidInput
from loanrisk.schema import (
    LoanSchema,
    Mode,
    Validated,
    builtin_schema,
    validate_chunks,
    validate_frame,
)
from loanrisk.schema.rawcsv import iter_csv_chunks, text_columns

#: Rows parsed and validated at a time.
CHUNK_ROWS = 100_000

Source = bytes | str | IO[bytes]


def read_csv(
    source: Source,
    *,
    schema: LoanSchema | None = None,
    mode: Mode = "train",
    keep: Sequence[str] = (),
    on_error: Literal["raise", "drop"] = "raise",
) -> Validated:
    """Read and validate a loan CSV from bytes, a local path, or a binary stream
    (``on_error="drop"`` leaves out the rows that cannot be used, listed in the report).

    The text is parsed and validated :data:`CHUNK_ROWS` rows at a time, so memory holds one
    chunk of raw text plus the compact validated rows, whatever the file's size. Raises
    :class:`InvalidInput` for empty, binary or non-UTF-8 input, malformed CSV (with the line
    number), and every problem :func:`loanrisk.schema.validate_frame` finds against
    ``schema`` (default: the built-in one).
    """
    stream: IO[bytes]
    if isinstance(source, bytes):
        stream = io.BytesIO(source)
    elif isinstance(source, str):
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InvalidInput(f"no such file: {source}") from None
    else:
        stream = source
    try:
        # Closed before the stream, however validation ends.
        chunks_of = read_ahead(iter_csv_chunks(stream, chunk_rows=CHUNK_ROWS, schema=schema))
        with contextlib.closing(chunks_of) as chunks:
            return validate_chunks(chunks, schema=schema, mode=mode, keep=keep, on_error=on_error)
    finally:
        if isinstance(source, str):
            stream.close()


def read_parquet(
    source: str | IO[bytes],
    *,
    schema: LoanSchema | None = None,
    mode: Mode = "train",
    keep: Sequence[str] = (),
    on_error: Literal["raise", "drop"] = "raise",
) -> Validated:
    """Read and validate loans stored as Parquet (same rules as CSV)."""
    try:
        frame = pd.read_parquet(source)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"not a readable Parquet file: {exc}") from None
    for name in text_columns(schema or builtin_schema()):
        if name in frame.columns:
            frame[name] = frame[name].astype("string")
    return validate_frame(frame, schema=schema, mode=mode, keep=keep, on_error=on_error)
