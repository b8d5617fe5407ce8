"""One storage for the scorecard tests: a slice of the public dataset, an XGBoost version
(1, production) and a scorecard trained on the same dataset and split (2), built once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.conftest import REAL_CSV

#: Public-dataset loans the tests train on (a seeded slice: seconds, not minutes).
ROWS = 5_000


@pytest.fixture(scope="package")
def raw_loans() -> pd.DataFrame:
    return pd.read_csv(REAL_CSV).sample(ROWS, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="package")
def root(tmp_path_factory: pytest.TempPathFactory, raw_loans: pd.DataFrame) -> Path:
    """Version 1: XGBoost, production; version 2: the scorecard challenger (not promoted)."""
    path = tmp_path_factory.mktemp("scorecard")
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(raw_loans, schema=builtin_schema()), storage, source="public")
    run_training(TrainingRequest(rounds=30, params={"max_depth": 4}), storage, nthread=1)
    run_training(TrainingRequest(kind="scorecard"), storage, nthread=1)
    return path
