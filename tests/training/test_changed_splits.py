"""A dataset's files are checked against the hashes its manifest recorded whenever they are
read: a split changed since processing (one flipped byte) is refused, naming the file, and
nothing is trained on it or published (issue 26, finding 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.datasets import SPEC, DatasetCatalogue
from loanrisk.errors import HashMismatch
from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, Storage
from loanrisk.training.job import TrainingRequest, run_training
from tests.test_cli import run
from tests.training.test_job import sample_dataset


def flip_a_byte(storage: Storage, path: str) -> None:
    """One bit of one byte in the middle of the file changed: the file keeps its size."""
    data = bytearray(storage.read_bytes(path))
    data[len(data) // 2] ^= 0x01
    storage.write_bytes(path, bytes(data))


@pytest.mark.parametrize("split", ["train", "test"])
def test_training_on_a_split_with_one_flipped_byte_is_refused_naming_the_file(
    storage: Storage, split: str
) -> None:
    dataset = sample_dataset(storage)
    path = DatasetCatalogue(storage).path(dataset, f"{split}.parquet")
    flip_a_byte(storage, path)
    with pytest.raises(HashMismatch) as refused:
        run_training(TrainingRequest(rounds=3), storage, nthread=1)
    assert path in refused.value.message
    assert "does not match the hash its manifest recorded" in refused.value.message
    assert refused.value.details == {"dataset": dataset, "file": f"{split}.parquet", "path": path}
    assert ModelRegistry(storage).versions("loan-default") == []  # nothing published


def test_a_changed_feature_spec_is_refused_too(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    dataset = sample_dataset(storage)
    catalogue = DatasetCatalogue(storage)
    catalogue.load_spec(dataset)  # reads while it matches
    stored = storage.read_bytes(catalogue.path(dataset, SPEC))
    storage.write_bytes(catalogue.path(dataset, SPEC), stored.replace(b"}", b" }", 1))
    with pytest.raises(HashMismatch, match=r"feature_spec\.json"):
        catalogue.load_spec(dataset)
    with pytest.raises(HashMismatch, match=r"feature_spec\.json"):
        run_training(TrainingRequest(rounds=3), storage, nthread=1)


def test_reading_chosen_rows_checks_the_split_as_reading_it_whole_does(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    dataset = sample_dataset(storage)
    catalogue = DatasetCatalogue(storage)
    assert len(catalogue.load_rows(dataset, "train", np.array([0, 5]))) == 2
    flip_a_byte(storage, catalogue.path(dataset, "train.parquet"))
    with pytest.raises(HashMismatch, match=r"train\.parquet"):
        catalogue.load_rows(dataset, "train", np.array([0, 5]))
    with pytest.raises(HashMismatch, match=r"train\.parquet"):
        catalogue.load_split(dataset, "train")
    catalogue.load_split(dataset, "test")  # the other split is intact


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(root), nthread=1, job_heartbeat=0.2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_api_refuses_the_training_with_409_before_queueing_a_job(
    client: TestClient, root: Path
) -> None:
    storage = FsspecStorage(str(root))
    dataset = sample_dataset(storage)
    path = DatasetCatalogue(storage).path(dataset, "train.parquet")
    flip_a_byte(storage, path)
    answer = client.post("/v1/models/risk/versions", json={"rounds": 3})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "hash_mismatch"
    assert path in error["message"]
    assert error["details"]["file"] == "train.parquet"
    assert client.get("/v1/jobs").json()["jobs"] == []  # refused at the edge: no job
    assert str(root) not in answer.text  # the storage path, never the disk's


def test_the_command_line_refuses_it_in_one_line_naming_the_file(root: Path) -> None:
    storage = FsspecStorage(str(root))
    dataset = sample_dataset(storage)
    path = DatasetCatalogue(storage).path(dataset, "train.parquet")
    flip_a_byte(storage, path)
    done = run("train", "--rounds", "3", "--storage", str(root))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()  # one line, never a traceback
    assert path in line and "does not match the hash" in line
    assert not (root / "models").exists() or not list((root / "models").rglob("manifest.json"))
