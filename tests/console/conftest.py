"""A storage with history for the console's tests: a dataset whose source name carries HTML,
two versions of ``loan-default`` (the second continued from the first) with a fairness report
over a kept attribute, and an alias history whose reason carries a script tag."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

SCORE_KEY = "score-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
KEYS = f'["viewer=score:{SCORE_KEY}","alice=admin:{ADMIN_KEY}"]'
#: Text a person typed, shown by the console: it must arrive as text, never as markup.
HOSTILE_SOURCE = '<img src=x onerror="window.hacked=1">loans.csv'
HOSTILE_REASON = "<script>window.hacked=2</script> first release"


def build_history(root: Path) -> Path:
    storage = FsspecStorage(str(root))
    frame = generate_sample(3_000, seed=3)
    frame["applicant_group"] = np.where(np.arange(len(frame)) % 3 == 0, "b", "a")
    loans = validate_frame(frame, keep=["applicant_group"])
    process_dataset(loans, storage, source=HOSTILE_SOURCE)
    fairness = {"protected_attribute": "applicant_group", "privileged_value": "a"}
    run_training(
        TrainingRequest(rounds=20, params={"max_depth": 4}, promote=False, **fairness),
        storage,
        nthread=1,
    )
    run_training(
        TrainingRequest(rounds=10, continue_from="1", promote=False, **fairness), storage, nthread=1
    )
    ModelRegistry(storage, "models").promote("loan-default", 1, by="alice", reason=HOSTILE_REASON)
    return root


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once; tests that change it copy it first (:func:`fresh_history`)."""
    return build_history(tmp_path_factory.mktemp("console") / "store")


@pytest.fixture
def fresh_history(history: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(history, tmp_path / "store"))
