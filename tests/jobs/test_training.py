"""Training in a separate process: progress, result, errors, cancellation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import Cancelled, NotFound
from loanrisk.jobs.training import train_in_subprocess
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest
from loanrisk.training.train import RoundProgress


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    storage = FsspecStorage(str(tmp_path))
    process_dataset(validate_frame(generate_sample(3_000)), storage, source="sample")
    return Settings(storage=str(tmp_path), nthread=1)


def test_training_runs_in_a_child_process_and_reports_progress(settings: Settings) -> None:
    seen: list[RoundProgress] = []
    result = train_in_subprocess(TrainingRequest(rounds=8), settings, on_progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 9))
    assert result.manifest.version == 1
    assert result.promoted is True
    assert ModelRegistry(FsspecStorage(settings.storage)).versions("loan-default") == [1]


def test_errors_in_the_child_come_back_as_the_same_error(settings: Settings) -> None:
    with pytest.raises(NotFound, match="cannot continue training"):
        train_in_subprocess(TrainingRequest(continue_from="production"), settings)


def test_cancelling_publishes_nothing(settings: Settings) -> None:
    cancel = threading.Event()

    def on_progress(progress: RoundProgress) -> None:
        if progress.done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        train_in_subprocess(
            TrainingRequest(rounds=5_000), settings, on_progress=on_progress, cancel=cancel
        )
    assert ModelRegistry(FsspecStorage(settings.storage)).models() == []


def test_a_forked_job_works_in_the_caller_s_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork server started in one directory; a later job runs where its caller is, as a
    freshly spawned child would."""
    with pytest.raises(NotFound):  # the fork server now runs, started from the first folder
        train_in_subprocess(TrainingRequest(dataset_size=77), Settings(storage=str(tmp_path)))
    here = tmp_path / "elsewhere"
    here.mkdir()
    storage = FsspecStorage(str(here / "store"))
    process_dataset(validate_frame(generate_sample(1_000)), storage, source="sample")
    monkeypatch.chdir(here)
    result = train_in_subprocess(TrainingRequest(rounds=3), Settings(storage="store", nthread=1))
    assert result.manifest.version == 1
    assert ModelRegistry(FsspecStorage(str(here / "store"))).versions("loan-default") == [1]
