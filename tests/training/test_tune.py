"""Tuning: seeded and reproducible, never reads the test split, resumes a stored study, keeps
complete trials when cancelled, and hands its best or lean trial to a training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loanrisk.contracts import TuneJob
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import Cancelled, InvalidInput
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage
from loanrisk.training.tune import Study, Trial, load_study, run_tuning

from ..test_cli import run

FAST = {"trials": 3, "max_rounds": 60, "early_stopping_rounds": 10, "folds": 2}


def dataset(storage: Storage) -> str:
    loans = validate_frame(generate_sample(2_000, seed=11))
    return process_dataset(loans, storage, source="sample").id


def fingerprint(study: Study) -> list[tuple[object, ...]]:
    return [(t.params, round(t.auc, 12), t.nodes, t.rounds) for t in study.trials]


def test_tuning_is_reproducible_and_never_reads_the_test_split() -> None:
    first, second = MemoryStorage(), MemoryStorage()
    ids = dataset(first), dataset(second)
    a = run_tuning(TuneJob(dataset=ids[0], **FAST), first, nthread=1)
    b = run_tuning(TuneJob(dataset=ids[1], **FAST), second, nthread=1)
    assert len(a.trials) == 3 and fingerprint(a) == fingerprint(b)
    assert all(0.5 < t.auc <= 1 and t.nodes > 0 and t.rounds >= 1 for t in a.trials)

    # Poison the test split: every label flipped. Tuning must not notice.
    catalogue = DatasetCatalogue(second)
    path = catalogue.path(ids[1], "test.parquet")
    with second.open_read(path) as stream:
        test = pd.read_parquet(stream)
    test["loan_status"] = 1 - test["loan_status"]
    with second.open_write(path) as sink:
        test.to_parquet(sink)
    again = run_tuning(TuneJob(dataset=ids[1], study="after-poison", **FAST), second, nthread=1)
    assert fingerprint(again) == fingerprint(a)


def test_a_stored_study_resumes_and_refuses_other_settings() -> None:
    storage = MemoryStorage()
    data = dataset(storage)
    run_tuning(TuneJob(dataset=data, **{**FAST, "trials": 2}), storage, nthread=1)
    stored = load_study(DatasetCatalogue(storage), data, "tune")
    assert stored is not None and len(stored.trials) == 2
    resumed = run_tuning(TuneJob(dataset=data, **{**FAST, "trials": 4}), storage, nthread=1)
    assert len(resumed.trials) == 4
    assert fingerprint(resumed)[:2] == fingerprint(stored)
    assert len({json.dumps(t.params, sort_keys=True) for t in resumed.trials}) == 4
    with pytest.raises(InvalidInput, match="folds: 2 not 3"):
        run_tuning(TuneJob(dataset=data, **{**FAST, "folds": 3, "trials": 5}), storage, nthread=1)


def test_a_cancelled_tuning_keeps_its_complete_trials() -> None:
    storage = MemoryStorage()
    data = dataset(storage)
    calls = {"n": 0}

    def cancel_in_second_trial() -> bool:
        calls["n"] += 1
        stored = load_study(DatasetCatalogue(storage), data, "tune")
        return stored is not None and len(stored.trials) >= 1

    with pytest.raises(Cancelled):
        run_tuning(
            TuneJob(dataset=data, **{**FAST, "trials": 5}),
            storage,
            nthread=1,
            should_cancel=cancel_in_second_trial,
        )
    stored = load_study(DatasetCatalogue(storage), data, "tune")
    assert stored is not None and len(stored.trials) == 1 and calls["n"] > 1


def test_best_lean_and_the_frontier() -> None:
    def trial(number: int, auc: float, nodes: float) -> Trial:
        return Trial(
            number=number,
            params={"max_depth": 3},
            auc=auc,
            auc_std=0.0,
            nodes=nodes,
            rounds=10,
            seconds=1.0,
        )

    study = Study(
        name="s",
        dataset="d",
        objective="auc",
        folds=3,
        seed=0,
        monotone=False,
        max_rounds=100,
        early_stopping_rounds=10,
        lean_tolerance=0.001,
        created_at="",
        updated_at="",
        trials=[
            trial(0, 0.9400, 5_000),
            trial(1, 0.9450, 9_000),
            trial(2, 0.9445, 2_000),
            trial(3, 0.9300, 1_000),
            trial(4, 0.9420, 3_000),
        ],
    )
    assert study.best().number == 1
    assert study.lean().number == 2  # within 0.001 of the best, a quarter of its nodes
    assert [t.number for t in study.frontier()] == [3, 2, 1]


def test_tune_then_train_from_the_lean_trial_on_the_command_line(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    data = dataset(storage)
    store = ["--storage", str(tmp_path)]
    tuned = run("tune", "--dataset", data, "--trials", "2", "--folds", "2", *store, "--json")
    assert tuned.returncode == 0, tuned.stderr
    summary = json.loads(tuned.stdout)
    assert summary["trials"] == 2 and summary["lean"]["auc"] >= summary["best"]["auc"] - 0.001
    assert {t["number"] for t in summary["frontier"]} >= {summary["best"]["number"]}

    trained = run("train", "--dataset", data, "--params-from", "tune:lean", *store, "--json")
    assert trained.returncode == 0, trained.stderr
    manifest = json.loads(trained.stdout)
    lean = summary["lean"]
    assert manifest["tuned_from"]["trial"] == lean["number"]
    assert manifest["rounds"]["trained"] == lean["rounds"]
    assert manifest["params"]["max_depth"] == lean["params"]["max_depth"]
    override = run(
        "train",
        "--dataset",
        data,
        "--params-from",
        "tune",
        "--param",
        "max_depth=2",
        "--rounds",
        "7",
        *store,
        "--json",
    )
    assert override.returncode == 0, override.stderr
    doc = json.loads(override.stdout)
    assert doc["params"]["max_depth"] == 2 and doc["rounds"]["trained"] == 7
    assert ModelRegistry(storage).versions("loan-default") == [1, 2]

    missing = run("train", "--dataset", data, "--params-from", "nope:best", *store)
    assert missing.returncode == 2 and "no tuning study 'nope'" in missing.stderr
    bad = run("train", "--dataset", data, "--params-from", "tune:fastest", *store)
    assert bad.returncode == 2 and "pick best, lean or lda" in bad.stderr
    bad_budget = run("tune", "--dataset", data, "--time-budget", "soon", *store)
    assert bad_budget.returncode == 2 and "--time-budget" in bad_budget.stderr
