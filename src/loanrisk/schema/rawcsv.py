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
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from loanrisk.errors import InvalidInput
from loanrisk.schema.files import builtin_schema
from loanrisk.schema.model import LoanSchema
from loanrisk.schema.text import MAX_TEXT_CHARS
from loanrisk.storage.base import Storage

#: A field longer than this is not a loan attribute; it is refused before parsing.
MAX_FIELD_CHARS = MAX_TEXT_CHARS
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


class _RowWidths(io.RawIOBase):
    """``stream`` read through, refusing a data row with fewer fields than the header names.

    pandas fills a short row's missing fields as blanks, so ``1,2`` under an eleven-column
    header was scored as a loan with nine missing values; a JSON loan without a field is
    refused, and so is the short row here (``malformed CSV``, as a row with too many fields
    is). A row only needs to reach the header's last named column (a trailing delimiter in
    the header is no column). Fields are counted with numpy over each block read, outside
    double quotes (a quote's parity since the start says whether a byte is quoted); a line
    ends at a line feed, or at a carriage return that no line feed follows (as pandas reads
    it: ``1\\r2`` in an unquoted field is two rows); blank lines (nothing but spaces, tabs
    and a carriage return) are skipped, as pandas skips them, and rows are numbered as
    validation numbers them (row 1 is the first loan)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self._header = bytearray()  # the header line, until its end is read
        self._delimiter = -1  # its byte; -1 until the header is read, 0: rows not checked
        self._needed = 0
        self._quoted = 0  # 1 inside a quoted field at the end of the last block
        self._fields = 1  # fields of the current (unfinished) line so far
        self._empty = True  # the current line has no byte yet but a carriage return
        self._return_pending = False  # the last block ended in a carriage return, outside quotes
        self.row = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._count(data)
        elif self._delimiter > 0:
            self._end_line()
            self._fields, self._empty, self._return_pending = 1, True, False
        return n

    def _count(self, data: bytes) -> None:
        if self._delimiter == 0:
            return  # no header line in the probe: the probe refuses the file
        if self._delimiter < 0:
            self._header += data
            line = _unquoted_newline(bytes(self._header))
            if line < 0:
                if len(self._header) > _PROBE_BYTES:
                    self._delimiter, self._header = 0, bytearray()
                return
            header, rest = bytes(self._header[:line]), bytes(self._header[line + 1 :])
            layout = _layout(header + b"\n")
            self._delimiter = ord(layout.delimiter)
            named = [i for i, name in enumerate(layout.names) if name.strip()]
            self._needed = named[-1] + 1 if named else 0
            self._header = bytearray()
            if not rest:
                return
            data = rest
        if self._return_pending:  # the last block ended in a carriage return
            self._return_pending = False
            if data[0] != _NEWLINE:  # a bare one: it ended a line
                self._end_line()
                self._fields, self._empty = 1, True
        array = np.frombuffer(data, dtype=np.uint8)
        outside: Any = True
        if self._quoted or data.find(b'"') >= 0:
            quotes = np.cumsum(array == _QUOTE, dtype=np.int64) + self._quoted
            outside = (quotes & 1) == 0
            self._quoted = int(quotes[-1] & 1)
        ends = np.flatnonzero((array == _NEWLINE) & outside)
        delimiters = np.flatnonzero((array == self._delimiter) & outside)
        if data.find(b"\r") >= 0:  # a bare carriage return ends a line too (pandas reads so)
            returns = np.flatnonzero((array == _RETURN) & outside)
            following = np.minimum(returns + 1, len(data) - 1)
            bare = returns[(returns + 1 < len(data)) & (array[following] != _NEWLINE)]
            if len(bare):
                ends = np.union1d(ends, bare)
            self._return_pending = bool(len(returns)) and int(returns[-1]) == len(data) - 1
        if not len(ends):
            self._fields += len(delimiters)
            self._empty = self._empty and not data.strip(_BLANK)
            return
        before = np.searchsorted(delimiters, ends)
        fields = np.diff(before, prepend=0) + 1
        fields[0] += self._fields - 1  # the line the last block left unfinished
        blanks = 0  # blank lines have one field: they are among the short ones
        for i in np.flatnonzero(fields < self._needed).tolist():
            start = int(ends[i - 1]) + 1 if i else 0
            text = data[start : int(ends[i])]
            if fields[i] == 1 and not text.strip(_BLANK) and (i or self._empty):
                blanks += 1
                continue
            self._refuse(self.row + i + 1 - blanks, int(fields[i]))
        self.row += len(ends) - blanks
        self._fields = 1 + len(delimiters) - int(before[-1])
        self._empty = not data[int(ends[-1]) + 1 :].strip(_BLANK)

    def _end_line(self) -> None:
        """The last line, which no line break ends."""
        if self._empty and self._fields == 1:
            return  # nothing, or a blank line: pandas skips it
        self.row += 1
        if self._fields < self._needed:
            self._refuse(self.row, self._fields)

    def _refuse(self, row: int, fields: int) -> None:
        raise InvalidInput(
            f"malformed CSV: row {row} has {fields} field{'s' if fields != 1 else ''}, "
            f"the header names {self._needed} (send an empty field for a missing value)",
            details={"row": row, "fields": fields, "expected": self._needed},
        )


_QUOTE, _NEWLINE, _RETURN = ord('"'), ord("\n"), ord("\r")
#: What a blank line, which pandas skips, may hold: spaces, tabs and carriage returns.
_BLANK = b" \t\r"


def _unquoted_newline(data: bytes) -> int:
    """The position of the first line break outside double quotes, -1 if there is none."""
    if b'"' not in data:
        return data.find(b"\n")
    quoted = False
    for i, byte in enumerate(data):
        if byte == _QUOTE:
            quoted = not quoted
        elif byte == _NEWLINE and not quoted:
            return i
    return -1


@contextlib.contextmanager
def _peekable(stream: IO[bytes]) -> Iterator[Any]:
    """``stream`` behind a buffer that can show the whole probe, detached afterwards (the
    caller's stream stays the caller's to close). A stream's own ``peek`` shows only what
    its buffer holds, 8 KiB by default: a longer header came out cut, and its last name
    looked like a repeat of an earlier one. Rows are counted on the way (:class:`_RowWidths`)."""
    buffered = io.BufferedReader(_RowWidths(stream), buffer_size=_PROBE_BYTES)
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
