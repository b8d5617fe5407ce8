"""A comparison on a held-out split larger than ``compare_max_rows`` reads only its seeded
sample, and computes on it what the whole split's same rows give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.compare import Versions, held_out
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import LABEL


def test_a_large_held_out_split_is_sampled_before_it_is_read(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    dataset = process_dataset(validate_frame(generate_sample(6_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=10), storage, nthread=1)
    run_training(TrainingRequest(rounds=30, params={"max_depth": 3}), storage, nthread=1)
    settings = Settings(storage=str(tmp_path), compare_max_rows=1_000, seed=5)
    registry = ModelRegistry(storage)

    def whole(*args: object) -> None:
        raise AssertionError("the whole held-out split was read")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatasetCatalogue, "load_split", whole)
        report = held_out(storage, registry, settings, Versions("loan-default", 1, 2), nthread=1)

    test = DatasetCatalogue(storage).load_split(dataset.id, "test")
    assert report["sampled_from"] == len(test) == 1_500
    assert report["rows"] + report["left_out"] == 1_000
    rows = np.sort(np.random.default_rng(5).choice(1_500, 1_000, replace=False))
    sample = test.iloc[rows].reset_index(drop=True)
    y = sample[LABEL].to_numpy().astype(int)
    for side, version in (("a", 1), ("b", 2)):
        scorer = Scorer(registry.load("loan-default", version), nthread=1)
        p = scorer.score_frame(sample.drop(columns=[LABEL]))[0]["probability"].to_numpy()
        assert report[side]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
