"""Log rows written where they belong: one Parquet file per model and day partition."""

from __future__ import annotations

import io
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loanrisk.storage.base import Storage


def write_partitions(
    storage: Storage, directory: str, table: pa.Table, name: Callable[[str, str], str]
) -> int:
    """Write ``table`` (rows in the log's format) under ``directory`` as one file per model
    and UTC day, ``<directory>/model=<m>/day=<d>/<name(m, d)>.parquet`` (each written whole,
    atomically); the number of rows written."""
    if table.num_rows == 0:
        return 0
    days = pc.strftime(table["time"], format="%Y-%m-%d")
    keys = pc.binary_join_element_wise(table["model"], days, "\x00")
    for key in pc.unique(keys).to_pylist():
        model, day = key.split("\x00")
        part = table.filter(pc.equal(keys, key))
        buffer = io.BytesIO()
        pq.write_table(part, buffer, compression="zstd")
        file = name(model, day) + ".parquet"
        path = storage.join(directory, f"model={model}", f"day={day}", file)
        storage.write_bytes(path, buffer.getvalue())
    return int(table.num_rows)
