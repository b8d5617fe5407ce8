"""A model trained on the public dataset, shared by the scoring tests."""

from __future__ import annotations

import pytest

from loanrisk.data.process import process_dataset
from loanrisk.registry import LoadedModel, ModelRegistry
from loanrisk.schema import Validated
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training


@pytest.fixture(scope="session")
def trained(real_loans: Validated) -> tuple[MemoryStorage, str]:
    """Memory storage with the public dataset processed and two versions of a model."""
    storage = MemoryStorage()
    dataset = process_dataset(real_loans, storage, source="public")
    run_training(TrainingRequest(rounds=60, params={"max_depth": 6}), storage, nthread=2)
    run_training(TrainingRequest(rounds=30, params={"max_depth": 4}), storage, nthread=2)
    return storage, dataset.id


@pytest.fixture(scope="session")
def model(trained: tuple[MemoryStorage, str]) -> LoadedModel:
    return ModelRegistry(trained[0]).load("loan-default", 1)
