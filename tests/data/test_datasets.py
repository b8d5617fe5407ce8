"""Processing into datasets on storage: manifest, lookup by id and size, nothing half-done."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput, NotFound
from loanrisk.features.transform import FeatureTransformer
from loanrisk.registry.manifest import FileEntry
from loanrisk.schema import Validated, builtin_schema, validate_frame
from loanrisk.storage import MemoryStorage, Storage
from tests.builtin import LABEL
from tests.storage.doubles import WholeReadsRecorded


@pytest.fixture(scope="module")
def sample_loans() -> Validated:
    return validate_frame(generate_sample(4_000, seed=2))


def test_processing_stores_splits_spec_and_manifest(
    storage: Storage, sample_loans: Validated
) -> None:
    stages: set[str] = set()
    manifest = process_dataset(
        sample_loans,
        storage,
        source="sample",
        size=10_000,
        directory="data",
        progress=lambda stage, done, total: stages.add(stage),
    )
    assert stages == {"expand", "split", "fit", "write"}
    assert manifest.rows.model_dump() == {
        "input": 4_000,
        "total": 10_000,
        "train": 7_500,
        "test": 2_500,
    }
    assert manifest.expanded is True
    assert manifest.schema_hash == builtin_schema().fingerprint()
    assert manifest.schema_name == builtin_schema().name
    assert abs(manifest.label_rate.train - manifest.label_rate.test) < 1e-3
    assert manifest.columns["loan_grade"].counts["A"] > 0
    assert manifest.columns["person_age"].histogram.counts
    assert manifest.quality.rows == 4_000

    catalogue = DatasetCatalogue(storage, "data")
    assert catalogue.get(manifest.id) == manifest
    for name, meta in manifest.files.items():
        data = storage.read_bytes(catalogue.path(manifest.id, name))
        assert hashlib.sha256(data).hexdigest() == meta.sha256
        assert len(data) == meta.bytes
    train = catalogue.load_split(manifest.id, "train")
    test = catalogue.load_split(manifest.id, "test")
    assert len(train) == 7_500 and len(test) == 2_500
    assert train[LABEL].dtype == np.int8
    spec = catalogue.load_spec(manifest.id)
    assert spec.fingerprint() == manifest.feature_spec
    assert FeatureTransformer(spec).transform(test).shape == (2_500, 26)


def test_verifying_a_split_reads_it_in_chunks(sample_loans: Validated) -> None:
    storage = WholeReadsRecorded()
    manifest = process_dataset(sample_loans, storage, source="s", size=1_000, directory="d")
    catalogue = DatasetCatalogue(storage, "d")
    storage.whole.clear()
    catalogue.verify_file(manifest.id, "train.parquet")
    assert storage.whole == [catalogue.path(manifest.id, "manifest.json")]


def test_an_unreadable_manifest_is_named_and_the_newest_readable_dataset_is_latest(
    sample_loans: Validated,
) -> None:
    storage = MemoryStorage()
    kept = process_dataset(sample_loans, storage, source="s", size=1_000, directory="d")
    broken = process_dataset(sample_loans, storage, source="s", size=1_000, directory="d")
    catalogue = DatasetCatalogue(storage, "d")
    storage.write_bytes(catalogue.path(broken.id, "manifest.json"), b"{not json")
    manifests, problems = catalogue.listing()
    assert [m.id for m in manifests] == [kept.id]
    assert [(p.kind, p.path) for p in problems] == [("dataset", f"{catalogue.root}/{broken.id}")]
    assert "process its raw data again" in problems[0].message
    assert catalogue.resolve("latest").id == kept.id


def test_datasets_are_found_by_id_by_size_and_latest(sample_loans: Validated) -> None:
    storage = MemoryStorage()
    small = process_dataset(sample_loans, storage, source="s", size=1_000, directory="d")
    big = process_dataset(sample_loans, storage, source="s", size=6_000, directory="d")
    newer_small = process_dataset(sample_loans, storage, source="s", size=1_000, directory="d")
    catalogue = DatasetCatalogue(storage, "d")
    assert [m.id for m in catalogue.listing()[0]] == [small.id, big.id, newer_small.id]
    assert catalogue.find(size=6_000).id == big.id
    assert catalogue.find(size=1_000).id == newer_small.id
    assert catalogue.resolve("latest").id == newer_small.id
    assert small.rows.total == 4_000 and small.expanded is False
    with pytest.raises(NotFound, match="no dataset processed with size 7"):
        catalogue.find(size=7)
    with pytest.raises(NotFound, match="no dataset 'ds-nope'"):
        catalogue.get("ds-nope")
    assert DatasetCatalogue(storage, "elsewhere").listing() == ([], [])
    with pytest.raises(InvalidInput):
        catalogue.get("../d")


class FailingStorage(MemoryStorage):
    """Memory storage whose writes of one file name fail, as a full disk would."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    @contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        if path.endswith(self.failing):
            raise OSError("disk full")
        with super().open_write(path) as stream:
            yield stream


@pytest.mark.parametrize("failing", ["test.parquet", "manifest.json"])
def test_a_failure_while_writing_leaves_no_dataset_behind(
    sample_loans: Validated, failing: str
) -> None:
    storage = FailingStorage(failing)
    with pytest.raises(OSError, match="disk full"):
        process_dataset(sample_loans, storage, source="sample")
    assert DatasetCatalogue(storage).listing() == ([], [])
    assert list(storage.walk_files()) == []


def test_the_split_read_back_equals_what_was_split(sample_loans: Validated) -> None:
    storage = MemoryStorage()
    manifest = process_dataset(sample_loans, storage, source="sample", seed=4)
    catalogue = DatasetCatalogue(storage)
    both = pd.concat([catalogue.load_split(manifest.id, s) for s in ("train", "test")])
    assert len(both) == len(sample_loans.frame)
    assert both[LABEL].sum() == sample_loans.frame[LABEL].sum()
    assert sorted(both["person_income"]) == sorted(sample_loans.frame["person_income"])


def test_chosen_rows_are_read_a_row_group_at_a_time_as_the_whole_split_gives_them(
    storage: Storage, sample_loans: Validated
) -> None:
    catalogue = DatasetCatalogue(storage, "data")
    manifest = process_dataset(sample_loans, storage, source="sample", directory="data")
    path = catalogue.path(manifest.id, "test.parquet")
    table = pq.read_table(io.BytesIO(storage.read_bytes(path)))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=128)  # several row groups, as an expansion has
    rewritten = buffer.getvalue()
    storage.write_bytes(path, rewritten)
    # The file changed on purpose: its new hash is recorded, as processing would have.
    entry = FileEntry(sha256=hashlib.sha256(rewritten).hexdigest(), bytes=len(rewritten))
    catalogue.publish(
        manifest.model_copy(update={"files": {**manifest.files, "test.parquet": entry}})
    )
    whole = catalogue.load_split(manifest.id, "test")
    assert catalogue.count_rows(manifest.id, "test") == len(whole) == 1_000
    edges = [0, 127, 128, 255, 256, 999]
    rows = np.unique(np.r_[edges, np.random.default_rng(3).choice(1_000, 200, replace=False)])
    taken = catalogue.load_rows(manifest.id, "test", rows)
    pd.testing.assert_frame_equal(taken, whole.iloc[rows].reset_index(drop=True))
    none = catalogue.load_rows(manifest.id, "test", np.array([], dtype=np.int64))
    assert none.empty and list(none.columns) == list(whole.columns)
