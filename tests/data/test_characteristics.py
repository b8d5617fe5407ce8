"""A dataset's characteristic analysis: computed on first request and stored with the
dataset, read back after, recomputed for other limits or a corrupt file, bounded by
max_rows; shown by ``loanrisk data show`` and ``GET /v1/datasets/{id}/characteristics``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loanrisk.binning import BinningLimits
from loanrisk.data.characteristics import CHARACTERISTICS, Characteristics, characteristics
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import NotFound
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from tests.test_cli import run

LIMITS = BinningLimits(max_rows=100_000, max_bins=5)


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A storage holding one dataset of 2,000 sample loans (1,600 train), not yet analysed."""
    root = tmp_path_factory.mktemp("characteristics") / "store"
    loans = validate_frame(generate_sample(2_000, seed=11))
    manifest = process_dataset(loans, FsspecStorage(str(root)), source="sample")
    return root, manifest.id


@pytest.fixture
def store(processed: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    root, dataset = processed
    return Path(shutil.copytree(root, tmp_path / "store")), dataset


def catalogue_of(root: Path) -> DatasetCatalogue:
    return DatasetCatalogue(FsspecStorage(str(root)), "data")


def test_computed_on_first_request_then_read_back(store: tuple[Path, str]) -> None:
    root, dataset = store
    catalogue = catalogue_of(root)
    stored = root / "data" / "datasets" / dataset / CHARACTERISTICS
    assert not stored.exists()  # processing does not compute it
    first = characteristics(catalogue, dataset, limits=LIMITS)
    assert stored.exists()
    assert Characteristics.model_validate_json(stored.read_bytes()) == first
    assert characteristics(catalogue, "latest", limits=LIMITS) == first  # read, not refitted
    schema = builtin_schema()
    assert [a.name for a in first.attributes] == list(schema.feature_names)
    assert [r.name for r in first.ranking] == [
        a.name for a in sorted(first.attributes, key=lambda a: -a.iv)
    ]
    assert first.rows == first.fitted_rows == catalogue.count_rows(dataset, "train")
    assert all(a.regular <= 5 for a in first.attributes)
    catalogue.verify_file(dataset, "train.parquet")  # the dataset's files are untouched


def test_other_limits_or_a_corrupt_file_mean_computing_again(store: tuple[Path, str]) -> None:
    root, dataset = store
    catalogue = catalogue_of(root)
    first = characteristics(catalogue, dataset, limits=LIMITS)
    fewer = characteristics(catalogue, dataset, limits=LIMITS.model_copy(update={"max_bins": 3}))
    assert fewer.limits.max_bins == 3 and all(a.regular <= 3 for a in fewer.attributes)
    stored = root / "data" / "datasets" / dataset / CHARACTERISTICS
    stored.write_text("{not json")
    again = characteristics(catalogue, dataset, limits=LIMITS)
    assert again.attributes == first.attributes
    assert Characteristics.model_validate_json(stored.read_bytes()) == again


def test_above_max_rows_a_seeded_sample_of_the_split_is_read(store: tuple[Path, str]) -> None:
    root, dataset = store
    limits = BinningLimits(max_rows=500, max_bins=4)
    sampled = characteristics(catalogue_of(root), dataset, limits=limits)
    assert (sampled.fitted_rows, sampled.sampled) == (500, True)
    assert sampled.rows == catalogue_of(root).count_rows(dataset, "train")
    assert all(a.count == 500 for a in sampled.attributes)


def test_an_unknown_dataset_is_not_found(store: tuple[Path, str]) -> None:
    root, _ = store
    with pytest.raises(NotFound, match="no dataset 'ds-nope'"):
        characteristics(catalogue_of(root), "ds-nope", limits=LIMITS)


def test_over_http_typed_and_bounded_by_settings(store: tuple[Path, str]) -> None:
    root, dataset = store
    settings = Settings(storage=str(root), binning_max_bins=4, nthread=1)
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/v1/datasets/{dataset}/characteristics")
        assert answer.status_code == 200, answer.text
        analysis = Characteristics.model_validate(answer.json())
        assert analysis.dataset == dataset and analysis.limits.max_bins == 4
        assert all(a.regular <= 4 for a in analysis.attributes)
        assert client.get("/v1/datasets/latest/characteristics").json() == answer.json()
        missing = client.get("/v1/datasets/ds-nope/characteristics")
        assert missing.status_code == 404
        assert missing.json()["error"]["details"]["field"] == "dataset_id"
        outside = client.get(
            f"/v1/datasets/{dataset}/characteristics", params={"directory": "../elsewhere"}
        )
        assert 400 <= outside.status_code < 500
        assert outside.json()["error"]["details"]["field"] == "directory"
        described = client.get("/openapi.json").json()["paths"]
        operation = described["/v1/datasets/{dataset_id}/characteristics"]["get"]
        assert "Characteristics" in json.dumps(operation["responses"]["200"])


def test_data_show_prints_the_iv_ranking_and_json(store: tuple[Path, str]) -> None:
    """(Computed here first with the settings' default limits: the command reads it back.)"""
    root, dataset = store
    analysis = characteristics(catalogue_of(root), dataset, limits=BinningLimits())
    shown = run("data", "show", dataset, "--storage", str(root))
    assert shown.returncode == 0, shown.stderr
    assert "ranked by IV" in shown.stdout
    for ranked in analysis.ranking:
        line = next(x for x in shown.stdout.splitlines() if f" {ranked.name} " in x)
        assert f"{ranked.iv:.4f}" in line and ranked.band in line
    as_json = run("data", "show", "latest", "--storage", str(root), "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["manifest"]["id"] == dataset
    assert Characteristics.model_validate(doc["characteristics"]) == analysis
