"""A scorecard trained where loans hold declared special codes treated as missing (issue 28):
each code a training loan held has a bin and points of its own; the served scorer (one loan,
a frame, JSON) and the exported SQL score a loan holding it with that bin's points; models
compare scores the test split's codes as training evaluated them. A dataset stored before
codes were kept trains as it did: its codes are scored as missing."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.inference.scorer import Scorer, scorer_from_settings
from loanrisk.monitoring.compare import Versions, held_out
from loanrisk.registry import ModelRegistry
from loanrisk.registry.scorecard import Characteristic, Scorecard
from loanrisk.reporting.facts import limitations, version_facts
from loanrisk.reporting.scorecard_sql import score_sql
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.conftest import REAL_CSV

NAME = "loan-default"
#: Declared codes: a number's two, a category's, an ordinal's (each treated as missing).
CODES: dict[str, list[Any]] = {
    "person_emp_length": [-1, 99],
    "person_home_ownership": ["UNK"],
    "loan_grade": ["NR"],
}
#: How often each code replaces a value in the loans trained on.
SHARE = 0.06


def coded_schema() -> LoanSchema:
    doc = json.loads(builtin_schema().to_json())
    for column in doc["columns"]:
        if column["name"] in CODES:
            column["special"] = [
                {"values": [code], "meaning": f"code {code}"} for code in CODES[column["name"]]
            ]
    return LoanSchema.model_validate(doc)


def with_codes_sent(raw: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Raw loans with each declared code written into a share of their rows, as a lender's
    file holds them (numbers as numbers or text, categories in any case)."""
    rng = np.random.default_rng(seed)
    raw = raw.astype(dict.fromkeys(CODES, object))
    for name, codes in CODES.items():
        for code in codes:
            rows = np.flatnonzero(rng.random(len(raw)) < SHARE)
            spelled = [code, str(code).lower(), f" {code} "]
            raw.loc[rows, name] = [spelled[i % 3] for i in range(len(rows))]
    return raw


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two datasets of the same coded loans, one stored with its codes and one as before
    they were kept; version 1 XGBoost and 2 a scorecard on the first, 3 a scorecard on the
    second."""
    path = tmp_path_factory.mktemp("codes")
    storage = FsspecStorage(str(path))
    schema = coded_schema()
    raw = pd.read_csv(REAL_CSV).sample(4_000, random_state=28).reset_index(drop=True)
    loans = validate_frame(with_codes_sent(raw, 28), schema=schema)
    kept = process_dataset(loans, storage, source="coded", schema=schema)
    before = dataclasses.replace(loans, special=pd.DataFrame(index=loans.frame.index))
    old = process_dataset(before, storage, source="before codes", schema=schema)
    run_training(
        TrainingRequest(dataset=kept.id, rounds=20, params={"max_depth": 3}), storage, nthread=1
    )
    run_training(TrainingRequest(kind="scorecard", dataset=kept.id), storage, nthread=1)
    run_training(TrainingRequest(kind="scorecard", dataset=old.id), storage, nthread=1)
    return path


@pytest.fixture(scope="module")
def store(root: Path) -> FsspecStorage:
    return FsspecStorage(str(root))


@pytest.fixture(scope="module")
def registry(store: FsspecStorage) -> ModelRegistry:
    return ModelRegistry(store, "models")


def card_of(registry: ModelRegistry, version: int) -> Scorecard:
    card = registry.load(NAME, version).scorecard
    assert card is not None
    return card


def bin_by_hand(c: Characteristic, value: Any) -> int:
    """The bin a person reads off the points table for a raw value: a declared code's own
    bin where the table has one (else the missing bin), missing, then ranges or groups."""
    text = None if value is None else str(value).strip().upper()
    for code in CODES.get(c.name, []):
        if text == str(code):
            declared = float(code) if isinstance(code, int) else code
            owned = [i for i, b in enumerate(c.bins) if b.kind == "special" and b.code == declared]
            return owned[0] if owned else c.missing_index
    if text is None or text == "":
        return c.missing_index
    for i, b in enumerate(c.bins):
        if b.kind == "range":
            low = -math.inf if b.lower is None else b.lower
            high = math.inf if b.upper is None else b.upper
            if low <= float(value) < high:
                return i
        elif b.kind == "categories" and text in b.categories:
            return i
    return c.missing_index


def score_by_hand(card: Scorecard, loan: dict[str, Any]) -> int:
    return card.base_points + sum(
        c.bins[bin_by_hand(c, loan.get(c.name))].points for c in card.characteristics
    )


def coded_records(rows: int, seed: int) -> list[dict[str, Any]]:
    raw = pd.read_csv(REAL_CSV).drop(columns=["loan_status"])
    raw = raw.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    raw = with_codes_sent(raw, seed)
    return raw.astype(object).where(raw.notna(), None).to_dict("records")


def test_each_code_training_loans_held_has_a_bin_and_points_of_its_own(
    registry: ModelRegistry, store: FsspecStorage
) -> None:
    card = card_of(registry, 2)
    directory, dataset = registry.manifest(NAME, 2).training_dataset or ("", "")
    held = DatasetCatalogue(store, directory).load_special(dataset, "train")
    assert held is not None
    for name, codes in CODES.items():
        c = card.by_name[name]
        special = [b for b in c.bins if b.kind == "special"]
        declared = [float(x) if isinstance(x, int) else x for x in codes]
        assert [b.code for b in special] == declared
        counted = held[name].value_counts()
        assert [b.count for b in special] == [int(counted[b.code]) for b in special]
        assert all(b.count > 100 for b in special)
        assert c.bins[c.missing_index].count == int(
            DatasetCatalogue(store, directory).load_split(dataset, "train")[name].isna().sum()
            - held[name].notna().sum()
        )
    # Stored before codes were kept: the same loans in the missing bin, no code bins.
    old = card_of(registry, 3)
    for name in CODES:
        assert [b.kind for b in old.by_name[name].bins if b.kind == "special"] == []


def test_a_loan_holding_a_code_scores_its_codes_points_one_by_one_and_in_a_frame(
    registry: ModelRegistry,
) -> None:
    records = coded_records(300, seed=5)
    for version in (2, 3):
        card = card_of(registry, version)
        scorer = Scorer(registry.load(NAME, version))
        expected = [score_by_hand(card, r) for r in records]
        assert [scorer.score_record(r).score for r in records[:40]] == expected[:40]
        assert [r.score for r in scorer.score_records(records).results] == expected
        results, _ = scorer.score_frame(pd.DataFrame(records))
        assert results["score"].tolist() == expected
    # The scorecard with code bins: a loan holding a code that cost points says so.
    card, scorer = card_of(registry, 2), Scorer(registry.load(NAME, 2))
    emp = card.by_name["person_emp_length"]
    worst = min((b for b in emp.bins if b.kind == "special"), key=lambda b: b.points)
    assert worst.points < emp.best_points
    loan = {**records[0], "person_emp_length": f" {worst.code:g} "}
    reasons = scorer.score_record(loan, explain=True, top_k=len(card.characteristics)).reasons
    stated = next(r for r in reasons or [] if r.feature == "person_emp_length")
    assert (stated.direction, stated.points) == ("special", worst.points)
    assert stated.reason.endswith(f"code {worst.code:g}")


def test_models_compare_scores_the_test_splits_codes_as_training_evaluated_them(
    registry: ModelRegistry, store: FsspecStorage, root: Path
) -> None:
    """The scorecard scores each code in its bin, as its training evaluated it; the trees see
    the missing value the split holds, as they did before codes were kept."""
    settings = Settings(storage=str(root), nthread=1)
    held = held_out(store, registry, settings, Versions(NAME, 1, 2), nthread=1)
    assert held.left_out == 0
    assert held.b.auc == pytest.approx(registry.report(NAME, 2).auc, abs=1e-12)
    directory, dataset = registry.manifest(NAME, 1).training_dataset or ("", "")
    test = DatasetCatalogue(store, directory).load_split(dataset, "test")
    labels = test.pop("loan_status").to_numpy()
    aucs = []
    for version in (1, 2):  # the split as stored: no codes
        results, _ = scorer_from_settings(registry.load(NAME, version), settings).score_frame(test)
        aucs.append(roc_auc_score(labels, results["probability"]))
    assert held.a.auc == pytest.approx(aucs[0], abs=1e-12)
    assert held.b.auc > aucs[1]  # the codes' own bins rank better than the missing bin


@pytest.mark.slow
def test_the_sql_scores_100_000_coded_loans_exactly_as_served(registry: ModelRegistry) -> None:
    model = registry.load(NAME, 2)
    assert model.scorecard is not None
    records = coded_records(100_000, seed=28)
    served = Scorer(model).score_records(records, on_error="skip")
    columns = list(model.schema.feature_names)
    database = sqlite3.connect(":memory:")
    quoted = ", ".join(f'"{c}"' for c in columns)
    database.execute(f"CREATE TABLE loans (id INTEGER PRIMARY KEY, {quoted})")
    database.executemany(
        f"INSERT INTO loans VALUES ({', '.join('?' * (len(columns) + 1))})",  # noqa: S608
        ([i, *(r[c] for c in columns)] for i, r in enumerate(records)),
    )
    expression = score_sql(model.scorecard, model.schema)
    in_sql = dict(database.execute(f"SELECT id, ({expression}) FROM loans"))  # noqa: S608
    assert len(served.results) == len(records)
    codes_held = 0
    for result in served.results:
        assert in_sql[result.record] == result.score, records[result.record]
        codes_held += any(
            str(records[result.record][n]).strip().upper() in {str(c) for c in codes}
            for n, codes in CODES.items()
        )
    assert codes_held > 15_000


def test_the_card_gives_each_code_its_share_and_points_and_counts_every_input(
    registry: ModelRegistry,
) -> None:
    facts = version_facts(registry, NAME, 2)
    card = card_of(registry, 2)
    c = next(c for c in card.characteristics if c.name == "person_emp_length")
    assert facts.dataset is not None
    quality = facts.dataset.quality
    rows, special = quality.rows, quality.special["person_emp_length"]
    blank = quality.missing["person_emp_length"] - special
    total = sum(b.count for b in c.bins)
    each = "; ".join(
        f"{b.code:g}: {b.count / total:.1%} of the training loans, {b.points} points"
        for b in c.bins
        if b.kind == "special"
    )
    line = (
        f"person_emp_length held a declared special code in {special / rows:.1%} of the raw "
        f"loans, each code scored in its own bin ({each}); it was blank in {blank / rows:.1%}, "
        f"scored in the missing bin ({c.bins[c.missing_index].points} points)."
    )
    assert blank > 0 and each.count("points") == 2
    assert line in limitations(facts)
    assert facts.inputs_used == len(card.characteristics) > 0
    xgboost = version_facts(registry, NAME, 1)
    assert xgboost.inputs_used == len(xgboost.gain) > 0
    said = [line for line in limitations(xgboost) if line.startswith("person_emp_length")]
    assert said == [
        f"person_emp_length was missing in {(blank + special) / rows:.1%} of the raw loans "
        f"({special / rows:.1%} a declared special code treated as missing): "
        f"{xgboost.missing_as['person_emp_length']}."
    ]
