"""Distributed training on a real Dask LocalCluster (2 workers x 1 thread)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dask.distributed import LocalCluster

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.registry import ModelRegistry
from loanrisk.registry.manifest import ModelRef
from loanrisk.schema import validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.distributed import train_distributed
from loanrisk.training.job import TrainingRequest, run_training


def test_distributed_training_matches_single_process_training(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    storage = FsspecStorage(str(tmp_path))
    process_dataset(validate_frame(generate_sample(8_000, seed=11)), storage, source="sample")
    settings = Settings(storage=str(tmp_path), nthread=1)
    request = TrainingRequest(rounds=60, model_name="distributed")
    distributed = train_distributed(request, settings, scheduler=cluster.scheduler_address)
    single = run_training(TrainingRequest(rounds=60, model_name="single"), storage, nthread=1)
    assert abs(distributed.report.auc - single.report.auc) < 0.01
    shared = set(single.manifest.model_dump()) - {"timings"}
    assert shared <= set(distributed.manifest.model_dump())
    assert distributed.manifest.model_extra["distributed"]["workers"] == 2
    assert distributed.manifest.rounds["total_trees"] == 60
    registry = ModelRegistry(storage)
    assert registry.load("distributed", "production").booster.num_boosted_rounds() == 60

    more = train_distributed(
        TrainingRequest(rounds=10, model_name="distributed", continue_from="production"),
        settings,
        scheduler=cluster.scheduler_address,
    )
    assert more.manifest.parent == ModelRef(name="distributed", version=1)
    assert more.manifest.rounds["total_trees"] == 70


def test_distributed_early_stopping_publishes_the_best_trees_only(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    storage = FsspecStorage(str(tmp_path))
    process_dataset(validate_frame(generate_sample(8_000, seed=11)), storage, source="sample")
    request = TrainingRequest(rounds=400, early_stopping_rounds=5, params={"learning_rate": 0.5})
    result = train_distributed(
        request, Settings(storage=str(tmp_path), nthread=1), scheduler=cluster.scheduler_address
    )
    rounds = result.manifest.rounds
    assert rounds["best_iteration"] is not None
    assert rounds["total_trees"] == rounds["best_iteration"] + 1 < 400
    assert rounds["trained"] > rounds["best_iteration"]  # it trained on past the best
    published = ModelRegistry(storage).load("loan-default", "production").booster
    assert published.num_boosted_rounds() == rounds["total_trees"]
    assert result.report.auc > 0.8


def test_distributed_training_refuses_memory_storage(cluster: LocalCluster) -> None:
    with pytest.raises(InvalidInput, match="not memory"):
        train_distributed(
            TrainingRequest(), Settings(storage="memory://x"), scheduler=cluster.scheduler_address
        )


def test_the_cli_trains_on_a_dask_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    from tests.test_cli import run

    storage = ["--storage", str(tmp_path)]
    assert run("data", "process", "sample", *storage).returncode == 0
    done = run(
        "train",
        *storage,
        "--rounds",
        "10",
        "--dask-scheduler",
        str(cluster.scheduler_address),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert '"workers": 2' in done.stdout
