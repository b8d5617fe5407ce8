"""Datasets on storage: processed train/test Parquet, the FeatureSpec, and a manifest.

Layout, under a directory of the storage (the reference's ``data_directory``)::

    <directory>/datasets/<id>/train.parquet
                             /test.parquet
                             /train.special.parquet  the declared special codes each loan held
                             /test.special.parquet   (where the schema declares codes treated
                                                     as missing; row for row with its split)
                             /feature_spec.json
                             /schema.json       the declared schema the loans were validated with
                             /manifest.json     <- written last: a dataset exists once it has one

A dataset is found by id, or by the size it was processed with (the reference's ``size``:
``/train`` with the same ``size`` finds what ``/data_processing`` stored), newest first.

The manifest records each file's SHA-256 and size; every read of a split, the spec or the
schema checks the file against them first (:meth:`DatasetCatalogue.verify_file`), so a file
changed or corrupted since processing is refused (:class:`~loanrisk.errors.HashMismatch`,
naming it), never trained or evaluated on.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from loanrisk.contracts import DatasetManifest
from loanrisk.errors import HashMismatch, InvalidInput, NotFound, StorageError
from loanrisk.features.spec import FeatureSpec
from loanrisk.registry.manifest import FileEntry
from loanrisk.schema import LoanSchema, builtin_schema, parse_schema
from loanrisk.storage.base import Storage
from loanrisk.storage.parquet import read_parquet
from loanrisk.storage.problems import Problem

MANIFEST = "manifest.json"
SPEC = "feature_spec.json"
SCHEMA = "schema.json"
Split = Literal["train", "test"]


def special_file(split: Split) -> str:
    """The file beside a split holding, row for row, the declared special codes treated as
    missing that its loans held (one categorical column per feature declaring such codes,
    missing where a loan held none): what the split's own missing values do not tell."""
    return f"{split}.special.parquet"


class _Hashing(io.RawIOBase):
    """Passes writes on to a stream, hashing and counting them; closing it leaves the
    stream open (the storage commits it)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.hash = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.bytes += len(view)
        self._stream.write(view)
        return len(view)


class ParquetSink:
    """Validated frames written one after another as one Parquet file (a row group each) to
    a binary stream: the file is never whole in memory."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._out = _Hashing(stream)
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def append(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._out, table.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> FileEntry:
        """Finish the file; its hash and size."""
        if self._writer is None:
            raise ValueError("nothing was written")
        self._writer.close()
        return FileEntry(sha256=self._out.hash.hexdigest(), bytes=self._out.bytes)


def conform(frame: pd.DataFrame, schema: LoanSchema | None = None) -> pd.DataFrame:
    """Give categoricals read back from Parquet the schema's categories (and code order)."""
    schema = schema or builtin_schema()
    for column in schema.features:
        if column.categories is not None and column.name in frame.columns:
            frame[column.name] = pd.Categorical(
                frame[column.name].astype("string"), categories=list(column.categories)
            )
    known = [c for c in (*schema.feature_names, schema.label_name) if c in frame.columns]
    kept = [c for c in frame.columns if c not in known]  # e.g. a protected attribute
    for name in kept:
        frame[name] = frame[name].astype("category")
    return frame[known + kept]


@dataclass(frozen=True)
class DatasetCatalogue:
    """The datasets under one directory of a storage."""

    storage: Storage
    directory: str = "data"

    @property
    def root(self) -> str:
        return self.storage.join(self.directory, "datasets")

    def path(self, dataset_id: str, name: str = "") -> str:
        if not dataset_id or "/" in dataset_id or dataset_id.startswith("."):
            raise InvalidInput(f"invalid dataset id {dataset_id!r}")
        return self.storage.join(self.root, dataset_id, name)

    def listing(self) -> tuple[list[DatasetManifest], list[Problem]]:
        """Manifests of every complete dataset, oldest first, and the datasets skipped: one
        that cannot be read (a corrupt manifest, a link out of the storage) is named with a
        repair hint, never fatal to the rest."""
        found = self.storage.listing(self.root)
        manifests = []
        problems = [p.model_copy(update={"kind": "dataset"}) for p in found.problems]
        for dataset_id in found.names:
            try:
                manifests.append(self.get(dataset_id))
            except NotFound:
                continue  # in progress or abandoned: no manifest yet
            except (InvalidInput, StorageError) as exc:
                problems.append(
                    Problem(
                        kind="dataset",
                        path=self.storage.join(self.root, dataset_id),
                        message=f"{exc.message}: skipped; process its raw data again and remove it",
                    )
                )
        manifests.sort(key=lambda m: (m.created_at, m.id))
        return manifests, problems

    def get(self, dataset_id: str) -> DatasetManifest:
        try:
            data = self.storage.read_bytes(self.path(dataset_id, MANIFEST))
        except NotFound:
            raise NotFound(f"no dataset {dataset_id!r} in {self.directory!r}") from None
        try:
            return DatasetManifest.model_validate_json(data)
        except ValidationError:
            raise StorageError(f"the manifest of dataset {dataset_id!r} is corrupt") from None

    def find(self, *, size: int | None = None) -> DatasetManifest:
        """The newest dataset (processed with ``size``, when given)."""
        manifests, _ = self.listing()  # one unreadable dataset is not the newest
        matches = [m for m in manifests if size is None or m.requested_size == size]
        if not matches:
            wanted = f" processed with size {size}" if size is not None else ""
            raise NotFound(f"no dataset{wanted} in {self.directory!r}")
        return matches[-1]

    def resolve(self, ref: str) -> DatasetManifest:
        """A manifest by id, or ``latest``."""
        return self.find() if ref == "latest" else self.get(ref)

    def verify_file(self, dataset_id: str, name: str) -> None:
        """Check the dataset's file ``name`` against the SHA-256 and size its manifest
        recorded, reading it a chunk at a time (never whole in memory: :meth:`FileEntry.check`).

        Raises :class:`HashMismatch` naming the file when it changed since processing,
        :class:`NotFound` when it is gone, :class:`StorageError` when the manifest does not
        parse. A file the manifest records no hash for is not checked."""
        entry = self.get(dataset_id).files.get(name)
        if entry is not None:
            entry.check(self.storage, self.path(dataset_id, name), self._mismatch(dataset_id, name))

    def _verified_bytes(self, dataset_id: str, name: str) -> bytes:
        """A small file's content, checked as :meth:`verify_file` checks it, in one read."""
        path = self.path(dataset_id, name)
        entry = self.get(dataset_id).files.get(name)
        if entry is None:
            return self.storage.read_bytes(path)
        return entry.read_checked(self.storage, path, self._mismatch(dataset_id, name))

    def _mismatch(self, dataset_id: str, name: str) -> Callable[[], HashMismatch]:
        def refuse() -> HashMismatch:
            path = self.path(dataset_id, name)
            return HashMismatch(
                f"dataset {dataset_id!r}: {path} does not match the hash its manifest recorded "
                "(changed or corrupted since processing); refused: process the data again",
                details={"dataset": dataset_id, "file": name, "path": path},
            )

        return refuse

    def load_split(self, dataset_id: str, split: Split) -> pd.DataFrame:
        """The split's rows, after checking its file against the manifest's hash
        (:meth:`verify_file`)."""
        schema = self.load_schema(dataset_id)
        self.verify_file(dataset_id, f"{split}.parquet")
        table = read_parquet(self.storage, self.path(dataset_id, f"{split}.parquet"))
        return conform(table.to_pandas(), schema)

    def count_rows(self, dataset_id: str, split: Split) -> int:
        """The split's row count, from the Parquet footer (no rows read)."""
        with self.storage.open_read(self.path(dataset_id, f"{split}.parquet")) as stream:
            return int(pq.ParquetFile(stream).metadata.num_rows)

    def load_rows(self, dataset_id: str, split: Split, rows: np.ndarray) -> pd.DataFrame:
        """The split's rows at the ascending positions ``rows`` (as :meth:`load_split`
        would give them), read a row group at a time: memory holds one row group and the
        rows taken, never the whole split. The file is checked against the manifest's hash
        first (:meth:`verify_file`)."""
        schema = self.load_schema(dataset_id)
        return conform(self._read(dataset_id, f"{split}.parquet", rows).to_pandas(), schema)

    def _read(self, dataset_id: str, name: str, rows: np.ndarray | None) -> pa.Table:
        """The Parquet file ``name`` (checked against the manifest's hash), all of it or the
        rows at the ascending positions ``rows``, a row group at a time."""
        self.verify_file(dataset_id, name)
        with self.storage.open_read(self.path(dataset_id, name)) as stream:
            parquet = pq.ParquetFile(stream)
            if rows is None:
                return parquet.read()
            tables = []
            start = 0
            for group in range(parquet.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                low, high = np.searchsorted(rows, [start, start + size])
                if high > low:
                    taken = pa.array(rows[low:high] - start)
                    tables.append(parquet.read_row_group(group).take(taken))
                start += size
            return pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()

    def load_special(
        self, dataset_id: str, split: Split, rows: np.ndarray | None = None
    ) -> pd.DataFrame | None:
        """The declared special codes the split's loans held (:func:`special_file`), all
        rows or those at the ascending positions ``rows`` (as :meth:`load_rows` takes them):
        one categorical column per feature declaring codes treated as missing, its
        categories the codes (numbers as floats, text upper-case), missing where a loan held
        none. None for a dataset stored without them (processed before codes were kept, or
        from loans that carried none): its codes are missing values, as in its split. The
        file is checked against the manifest's hash first (:meth:`verify_file`)."""
        name = special_file(split)
        if name not in self.get(dataset_id).files:
            return None
        schema = self.load_schema(dataset_id)
        frame: pd.DataFrame = self._read(dataset_id, name, rows).to_pandas()
        for column in frame.columns:  # Parquet gives numbers back as plain floats
            declared = sorted(schema.column(str(column)).special_missing)
            frame[column] = pd.Categorical(frame[column].astype(object), categories=declared)
        return frame

    def load_schema(self, dataset_id: str) -> LoanSchema:
        """The schema the dataset was validated with (datasets processed before schemas
        existed: the built-in one)."""
        if not self.storage.exists(self.path(dataset_id, SCHEMA)):
            return builtin_schema()
        text = self._verified_bytes(dataset_id, SCHEMA)
        return parse_schema(text, source=f"dataset {dataset_id!r} schema")

    def load_spec(self, dataset_id: str) -> FeatureSpec:
        return FeatureSpec.from_json(self._verified_bytes(dataset_id, SPEC))

    def write_file(self, dataset_id: str, name: str, data: bytes) -> None:
        self.storage.write_bytes(self.path(dataset_id, name), data)

    def open_file(self, dataset_id: str, name: str) -> AbstractContextManager[IO[bytes]]:
        """A stream whose content becomes the dataset's file ``name`` when it closes cleanly."""
        return self.storage.open_write(self.path(dataset_id, name))

    def publish(self, manifest: DatasetManifest) -> None:
        """Write the manifest last: from this moment the dataset is listed and found."""
        body = manifest.model_dump_json(indent=2).encode() + b"\n"
        self.storage.write_bytes(self.path(manifest.id, MANIFEST), body)

    def delete(self, dataset_id: str) -> None:
        self.storage.delete(self.path(dataset_id))
