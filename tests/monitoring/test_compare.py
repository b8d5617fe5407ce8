"""A comparison on a held-out split larger than ``compare_max_rows`` reads only its seeded
sample, and computes on it what the whole split's same rows give; a guarded promotion is
refused only when the DeLong interval of the AUC difference lies below the allowed drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import Conflict
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.compare import (
    MAX_AUC_DROP,
    Versions,
    guard_promotion,
    held_out,
    worse_beyond,
)
from loanrisk.monitoring.paired import AucDifference, delong
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
    assert report.sampled_from == len(test) == 1_500
    assert report.rows + report.left_out == 1_000
    rows = np.sort(np.random.default_rng(5).choice(1_500, 1_000, replace=False))
    sample = test.iloc[rows].reset_index(drop=True)
    y = sample[LABEL].to_numpy().astype(int)
    for side, version in ((report.a, 1), (report.b, 2)):
        scorer = Scorer(registry.load("loan-default", version), nthread=1)
        p = scorer.score_frame(sample.drop(columns=[LABEL]))[0]["probability"].to_numpy()
        assert side.auc == pytest.approx(roc_auc_score(y, p), abs=1e-9)


def scores_of(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a champion's scores that rank them fairly well (AUC about 0.8)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, y + rng.normal(0, 1.2, n)


def test_a_small_drop_that_is_noise_passes_the_guard() -> None:
    y, champion = scores_of(600, seed=1)
    challenger = champion + np.random.default_rng(2).normal(0, 0.35, y.size)  # a bit blurred
    difference = delong(y, champion, challenger).difference
    low, high = difference.ci95
    assert -difference.b_minus_a > MAX_AUC_DROP  # the point estimate alone would refuse
    assert low < -MAX_AUC_DROP < high  # but the interval says noise
    assert not worse_beyond(difference, MAX_AUC_DROP)


def test_a_clear_large_drop_is_refused_by_the_guard() -> None:
    y, champion = scores_of(600, seed=1)
    challenger = np.random.default_rng(3).normal(0, 1, y.size)  # ranks nothing
    difference = delong(y, champion, challenger).difference
    assert difference.ci95[1] < -0.1
    assert worse_beyond(difference, MAX_AUC_DROP)
    assert worse_beyond(difference, 0.05)
    assert not worse_beyond(difference, 0.5)  # a drop that large is allowed, and not shown


@pytest.mark.parametrize(
    ("interval", "allowed", "refused"),
    [
        ((-0.038, 0.014), 0.002, False),  # the noise the rule was changed for
        ((-0.050, -0.0021), 0.002, True),  # wholly below -0.002
        ((-0.050, -0.0020), 0.002, False),  # touching it: not shown worse than allowed
        ((-0.050, -0.0019), 0.002, False),
        ((-0.050, -0.0001), 0.0, True),  # no drop allowed: any significant drop is refused
        ((-0.020, 0.0000), 0.0, False),
    ],
)
def test_the_rule_is_the_upper_bound_of_the_interval_against_the_allowed_drop(
    interval: tuple[float, float], allowed: float, refused: bool
) -> None:
    point = sum(interval) / 2
    difference = AucDifference(b_minus_a=point, se=0.01, ci95=interval, p_value=0.05)
    assert worse_beyond(difference, allowed) is refused


@pytest.fixture(scope="module")
def strong_and_weak(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 (30 rounds, production) and version 2 (1 stump: clearly worse)."""
    path = tmp_path_factory.mktemp("guard")
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(4_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=30), storage, nthread=1)
    run_training(
        TrainingRequest(rounds=1, params={"max_depth": 1}, promote=False), storage, nthread=1
    )
    return path


def test_the_guard_refuses_on_either_side_of_the_upper_bound_only(strong_and_weak: Path) -> None:
    storage = FsspecStorage(str(strong_and_weak))
    registry = ModelRegistry(storage)
    settings = Settings(storage=str(strong_and_weak), nthread=1)
    report = held_out(storage, registry, settings, Versions("loan-default", 1, 2), nthread=1)
    drop = report.a.auc - report.b.auc
    low, high = report.auc_difference.ci95
    assert high < -0.01, report.auc_difference  # the stump is clearly worse

    # An allowed drop just beyond the interval's upper bound: the evidence says worse.
    tight = -high - 0.001
    with pytest.raises(Conflict) as refused:
        guard_promotion(
            storage, registry, settings, "loan-default", 2, "production", max_auc_drop=tight
        )
    message = refused.value.message
    assert "version 2 is worse than version 1 (production)" in message
    assert f"a drop of {drop:.4f}" in message
    assert f"[{low:+.4f}, {high:+.4f}] lies below -{tight:g}, the drop allowed" in message
    assert "one-sided test at 2.5%" in message
    assert refused.value.details["comparison"]["auc_difference"]["ci95"] == [low, high]
    assert registry.resolve("loan-default", "production") == 1

    # An allowed drop just inside it: allowed, though the point estimate is a larger drop.
    loose = -high + 0.001
    assert drop > loose
    checked = guard_promotion(
        storage, registry, settings, "loan-default", 2, "production", max_auc_drop=loose
    )
    assert checked is not None and checked.auc_difference.ci95 == (low, high)
    assert guard_promotion(storage, registry, settings, "loan-default", 1, "production") is None
