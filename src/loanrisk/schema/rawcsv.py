"""Raw loan CSV as text: its layout, the checks of the text, and its rows in chunks.

CSV is read with pandas' C parser; the text is checked first for what a loan file can never
be (binary data, another encoding, absurdly long fields) so such input fails with one clear
message instead of a parser trace. A UTF-8 BOM and CRLF line endings are accepted. The
delimiter is read off the header line (comma, tab, semicolon or bar), and a column whose
header is empty (a trailing delimiter on every line) is not read.

The chunks are raw frames: validation (:func:`loanrisk.schema.validate_chunks`) and schema
drafting (:func:`loanrisk.schema.infer.infer_schema`) read them from here.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import pandas as pd
import pyarrow.parquet as pq

from loanrisk.errors import InvalidInput
from loanrisk.schema.files import builtin_schema
from loanrisk.schema.model import LoanSchema
from loanrisk.storage.base import Storage

#: A field longer than this is not a loan attribute; it is refused before parsing.
MAX_FIELD_CHARS = 10_000
_PROBE_BYTES = 1 << 16

#: Delimiters a loan file may use, tried in this order on its header line.
DELIMITERS = (",", "\t", ";", "|")


@dataclass(frozen=True)
class Layout:
    """How a delimited file is laid out, read off its header line: the delimiter (the first
    of :data:`DELIMITERS` the header holds, a comma when it holds none) and the header's
    names. A trailing delimiter leaves an empty name: that column is not read."""

    delimiter: str
    names: tuple[str, ...]

    @property
    def named(self) -> list[int] | None:
        """Positions of the columns with a name; None when every column has one (then a row
        with more fields than the header is an error, as it should be)."""
        named = [i for i, name in enumerate(self.names) if name.strip()]
        return None if len(named) == len(self.names) else named


def _layout(head: bytes) -> Layout:
    first_line = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[0]
    delimiter = next((d for d in DELIMITERS if d in first_line), ",")
    return Layout(delimiter, tuple(next(csv.reader([first_line], delimiter=delimiter), [])))


def _probe(head: bytes) -> Layout:
    if not head.strip():
        raise InvalidInput("empty file: no header and no loans")
    if b"\x00" in head:
        raise InvalidInput("binary data: the file is not CSV text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the probe's end is not an encoding error.
        if exc.start < len(head) - 4:
            raise InvalidInput(f"not UTF-8 text: undecodable byte at offset {exc.start}") from None
    return _check_header(head)


@contextlib.contextmanager
def _peekable(stream: IO[bytes]) -> Iterator[Any]:
    """``stream`` behind a buffer that can show the whole probe, detached afterwards (the
    caller's stream stays the caller's to close). A stream's own ``peek`` shows only what
    its buffer holds, 8 KiB by default: a longer header came out cut, and its last name
    looked like a repeat of an earlier one."""
    buffered = io.BufferedReader(cast(Any, stream), buffer_size=_PROBE_BYTES)
    try:
        yield buffered
    finally:
        with contextlib.suppress(ValueError):  # the stream was closed under us
            buffered.detach()


def _check_header(head: bytes) -> Layout:
    # pandas renames a repeated column to "name.1"; a repeated loan column is ambiguous.
    if b"\n" not in head and len(head) >= _PROBE_BYTES:
        raise InvalidInput(f"the header line is longer than {_PROBE_BYTES:,} bytes")
    layout = _layout(head)
    names = [n.strip().lower() for n in layout.names if n.strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(
            f"duplicate column(s): {', '.join(repeated)}",
            details={"issues": [{"problem": "duplicate_column", "columns": repeated}]},
        )
    return layout


def text_columns(schema: LoanSchema) -> list[str]:
    """Columns read as text, so "  rent ", "1 " and "007" are cleaned, not guessed: every
    declared column that is not a number."""
    return [
        c.name for c in schema.columns if c.type not in ("numeric", "integer") or c.role == "label"
    ]


_READ_OPTIONS: dict[str, Any] = {
    "encoding": "utf-8-sig",
    "skipinitialspace": True,
    "engine": "c",
    "quoting": csv.QUOTE_MINIMAL,
    "on_bad_lines": "error",
}


@contextlib.contextmanager
def _csv_errors() -> Iterator[None]:
    try:
        yield
    except pd.errors.EmptyDataError:
        raise InvalidInput("empty file: no header and no loans") from None
    except pd.errors.ParserError as exc:
        raise InvalidInput(f"malformed CSV: {_parser_message(exc)}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text: undecodable byte at offset {exc.start}") from None


def iter_csv_chunks(
    stream: IO[bytes],
    *,
    chunk_rows: int,
    schema: LoanSchema | None = None,
    all_text: bool = False,
) -> Generator[tuple[int, pd.DataFrame], None, None]:
    """Read a CSV of any size as ``(row_offset, frame)`` chunks of ``chunk_rows`` rows, with
    the text checked as the module says (binary data, encoding, malformed lines, huge fields).
    The frames are raw: validate each with ``validate_frame(..., row_offset=offset)``. The
    schema's text columns are read as text (``all_text``: every column, for drafting a
    schema from the file)."""
    with _peekable(stream) as buffered:
        layout = _probe(buffered.peek(_PROBE_BYTES)[:_PROBE_BYTES])
        offset = 0
        text: Any = (
            "string"
            if all_text
            else dict.fromkeys(text_columns(schema or builtin_schema()), "string")
        )
        with (
            _csv_errors(),
            pd.read_csv(
                buffered,
                chunksize=chunk_rows,
                dtype=text,
                sep=layout.delimiter,
                usecols=layout.named,
                **_READ_OPTIONS,
            ) as reader,
        ):
            for chunk in reader:
                yield offset, _check_field_sizes(chunk, offset)
                offset += len(chunk)


def stored_columns(storage: Storage, path: str) -> list[str]:
    """The columns of a stored CSV (its header, read as :func:`iter_csv_chunks` reads it, with
    the same checks of the text) or Parquet file (its schema), without reading its rows."""
    with storage.open_read(path) as stream:
        if path.endswith(".parquet"):
            try:
                return [str(n) for n in pq.ParquetFile(stream).schema_arrow.names]
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"not a readable Parquet file: {exc}") from None
        head = stream.read(_PROBE_BYTES)
    layout = _probe(head)
    with _csv_errors():
        header = pd.read_csv(
            io.BytesIO(head),
            nrows=0,
            dtype="string",
            sep=layout.delimiter,
            usecols=layout.named,
            **_READ_OPTIONS,
        )
    return [str(c) for c in header.columns]


def _parser_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1]
    return text.removeprefix("Error tokenizing data. C error: ")


def _check_field_sizes(frame: pd.DataFrame, row_offset: int = 0) -> pd.DataFrame:
    for name in frame.columns:
        if len(str(name)) > MAX_FIELD_CHARS:
            raise InvalidInput(f"a header field is longer than {MAX_FIELD_CHARS} characters")
        column = frame[name]
        if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            lengths = column.astype("string").str.len()
            if (lengths > MAX_FIELD_CHARS).any():
                row = int(lengths.to_numpy(na_value=0).argmax()) + 1 + row_offset
                raise InvalidInput(
                    f"column {str(name)!r}: a field longer than {MAX_FIELD_CHARS} characters "
                    f"at row {row}"
                )
    return frame
