"""Stored Parquet read whole from memory Arrow owns (issue 26: ``loanrisk storage check``
aborted at exit when an Arrow pool thread released a buffer still holding Python ``bytes``)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loanrisk.errors import NotFound, PathNotAllowed
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage
from loanrisk.storage.parquet import arrow_owned, parquet_table, read_parquet

TABLE = pa.table({"id": pa.array(range(500), pa.int64()), "name": [f"n{i}" for i in range(500)]})


def parquet_bytes(table: pa.Table = TABLE) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=100)
    return sink.getvalue()


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return MemoryStorage() if request.param == "memory" else FsspecStorage(str(tmp_path / "root"))


def test_the_copy_is_arrows_own_memory_not_a_view_of_the_callers_bytes() -> None:
    source = bytearray(b"0123456789")
    owned = arrow_owned(bytes(source))
    view = pa.py_buffer(source)  # a view: what a BufferReader over the bytes would hold
    source[0:4] = b"abcd"
    assert owned.to_pybytes() == b"0123456789"  # unchanged: a copy, not the caller's memory
    assert view.to_pybytes() == b"abcd456789"
    assert owned.parent is None and owned.address != view.address
    assert arrow_owned(b"").size == 0


def test_a_stored_parquet_file_reads_whole_with_its_schema_and_columns(store: Storage) -> None:
    store.write_bytes("log/a.parquet", parquet_bytes())
    assert read_parquet(store, "log/a.parquet").equals(TABLE)
    only = read_parquet(store, "log/a.parquet", columns=["name"])
    assert only.column_names == ["name"] and only.num_rows == 500
    wider = pa.schema([*TABLE.schema, pa.field("extra", pa.float64())])
    read = read_parquet(store, "log/a.parquet", schema=wider)  # a column added later: null
    assert read.schema == wider and read["extra"].null_count == 500


def test_a_file_that_is_not_parquet_or_not_there_raises_what_the_callers_skip(
    store: Storage,
) -> None:
    store.write_bytes("log/bad.parquet", b"PAR1 not really")
    store.write_bytes("log/cut.parquet", parquet_bytes()[:-20])
    for path in ("log/bad.parquet", "log/cut.parquet"):
        with pytest.raises((pa.ArrowException, OSError, ValueError)):
            read_parquet(store, path)
    with pytest.raises(NotFound):
        read_parquet(store, "log/gone.parquet")
    with pytest.raises(PathNotAllowed):
        read_parquet(store, "../outside.parquet")
    unfit = pa.schema([pa.field("id", pa.list_(pa.int64())), TABLE.schema.field("name")])
    with pytest.raises((pa.ArrowException, ValueError)):  # a schema the file does not fit
        parquet_table(parquet_bytes(), schema=unfit)


def test_no_module_hands_arrows_reader_python_bytes_but_this_one() -> None:
    """The abort at exit is a race no single run shows reliably; what prevents it is that
    stored Parquet reaches ``pq.read_table`` only through :mod:`loanrisk.storage.parquet`."""
    src = Path(__file__).resolve().parents[2] / "src" / "loanrisk"
    allowed = src / "storage" / "parquet.py"
    offenders = [
        f"{path.relative_to(src)}:{number}"
        for path in sorted(src.rglob("*.py"))
        if path != allowed
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "pa.BufferReader(" in line or "pq.read_table(" in line
    ]
    assert offenders == []
