"""Log rows written where they belong: one Parquet file per model and day partition."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

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
    for (model, day), part in _partitions(table):
        buffer = io.BytesIO()
        pq.write_table(part, buffer, compression="zstd")
        file = name(model, day) + ".parquet"
        path = storage.join(directory, f"model={model}", f"day={day}", file)
        storage.write_bytes(path, buffer.getvalue())
    return int(table.num_rows)


def _partitions(table: pa.Table) -> Iterator[tuple[tuple[str, str], pa.Table]]:
    """``table``'s rows per (model, UTC day). A table of one model and one day (a writer's
    usually is) is given whole, without a day made for each row."""
    models = pc.unique(table["model"])
    span = pc.min_max(table["time"])
    first, last = span["min"].as_py(), span["max"].as_py()
    if len(models) == 1 and first is not None and first.date() == last.date():
        yield (models[0].as_py(), first.strftime("%Y-%m-%d")), table
        return
    days = pc.strftime(table["time"], format="%Y-%m-%d")
    keys = pc.binary_join_element_wise(table["model"], days, "\x00")
    for key in pc.unique(keys).to_pylist():
        model, day = key.split("\x00")
        yield (model, day), table.filter(pc.equal(keys, key))
