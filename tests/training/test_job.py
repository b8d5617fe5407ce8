"""The training job end to end on real storage: train, continue, evaluate, publish."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput, NotFound
from loanrisk.features.transform import FeatureTransformer
from loanrisk.registry import ModelRegistry
from loanrisk.registry.manifest import ModelRef
from loanrisk.schema import validate_frame
from loanrisk.storage import MemoryStorage, Storage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import LABEL


def sample_dataset(storage: Storage, *, n: int = 3_000, seed: int = 0, **kwargs: object) -> str:
    frame = generate_sample(n, seed=seed)
    keep = kwargs.pop("keep", ())
    loans = validate_frame(frame, keep=keep)  # type: ignore[arg-type]
    return process_dataset(loans, storage, source="sample", **kwargs).id  # type: ignore[arg-type]


def test_training_publishes_an_evaluated_version_on_every_storage(storage: Storage) -> None:
    dataset = sample_dataset(storage)
    result = run_training(TrainingRequest(rounds=20), storage, nthread=1)
    manifest = result.manifest
    assert manifest.version == 1
    assert manifest.dataset["id"] == dataset
    assert manifest.parent is None
    assert manifest.rounds == {
        "requested": 20,
        "trained": 20,
        "best_iteration": None,
        "total_trees": 20,
    }
    assert manifest.params["max_depth"] == 10  # the reference's parameters by default
    stored = ModelRegistry(storage).manifest("loan-default", 1)
    assert set(stored.timings) == {"load", "encode", "train", "evaluate"}
    assert set(manifest.timings) == {"load", "encode", "train", "evaluate", "publish"}
    assert stored.libraries["xgboost"] == xgb.__version__
    assert result.promoted is True
    assert 0.7 < result.report.auc < 1
    loaded = ModelRegistry(storage).load("loan-default", "production")
    test = DatasetCatalogue(storage).load_split(dataset, "test")
    features = FeatureTransformer(loaded.spec).transform(test, dtype=np.float32)
    probability = loaded.booster.predict(xgb.DMatrix(features))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test[LABEL], probability) == pytest.approx(result.report.auc)


def test_continued_training_adds_rounds_and_records_its_parent() -> None:
    storage = MemoryStorage()
    sample_dataset(storage, seed=1)
    first = run_training(TrainingRequest(rounds=15), storage, nthread=1)
    newer = sample_dataset(storage, seed=2)
    second = run_training(
        TrainingRequest(rounds=10, continue_from="production"), storage, nthread=1
    )
    manifest = second.manifest
    assert manifest.parent == ModelRef(name="loan-default", version=1)
    assert manifest.dataset["id"] == newer
    assert manifest.rounds["total_trees"] == 15 + 10
    assert manifest.feature_spec["source"] == "parent"
    assert manifest.feature_spec["fingerprint"] == first.manifest.feature_spec["fingerprint"]
    assert second.promoted is False  # production existed: promotion is explicit from now on
    assert ModelRegistry(storage).resolve("loan-default", "production") == 1


def test_continued_training_re_encodes_a_dataset_with_another_spec_into_the_parents() -> None:
    storage = MemoryStorage()
    without_other = generate_sample(3_000, seed=3)
    without_other = without_other[without_other["person_home_ownership"] != "OTHER"]
    process_dataset(validate_frame(without_other), storage, source="no OTHER")
    parent = run_training(TrainingRequest(rounds=5), storage, nthread=1)
    assert "OTHER" not in parent.manifest.feature_spec["fingerprint"]
    with_other = generate_sample(3_000, seed=4)
    with_other.loc[:99, "person_home_ownership"] = "OTHER"
    dataset = process_dataset(validate_frame(with_other), storage, source="with OTHER")
    own_spec = DatasetCatalogue(storage).load_spec(dataset.id)
    assert own_spec.fingerprint() != parent.manifest.feature_spec["fingerprint"]
    child = run_training(TrainingRequest(rounds=5, continue_from="1"), storage, nthread=1)
    spec = child.manifest.feature_spec
    assert spec["fingerprint"] == parent.manifest.feature_spec["fingerprint"]
    assert 50 <= spec["unknown_categories"]["person_home_ownership"] <= 100


def test_continuing_without_a_model_is_a_clear_error() -> None:
    storage = MemoryStorage()
    sample_dataset(storage)
    with pytest.raises(NotFound, match="cannot continue training model 'loan-default'"):
        run_training(TrainingRequest(continue_from="production"), storage, nthread=1)
    with pytest.raises(NotFound, match="no dataset processed with size 5"):
        run_training(TrainingRequest(dataset_size=5), storage, nthread=1)
    assert ModelRegistry(storage).models() == []


def test_the_dataset_is_found_by_the_size_it_was_processed_with() -> None:
    storage = MemoryStorage()
    big = sample_dataset(storage, size=6_000)
    sample_dataset(storage)
    result = run_training(TrainingRequest(rounds=3, dataset_size=6_000), storage, nthread=1)
    assert result.manifest.dataset["id"] == big
    assert result.manifest.dataset["rows"]["total"] == 6_000


def test_early_stopping_publishes_the_best_trees_only() -> None:
    storage = MemoryStorage()
    sample_dataset(storage)
    result = run_training(
        TrainingRequest(rounds=400, early_stopping_rounds=5, params={"learning_rate": 0.5}),
        storage,
        nthread=1,
    )
    rounds = result.manifest.rounds
    assert rounds["best_iteration"] is not None
    assert rounds["total_trees"] == rounds["best_iteration"] + 1 < 400


def test_fairness_report_on_a_kept_protected_attribute() -> None:
    storage = MemoryStorage()
    frame = generate_sample(4_000, seed=5)
    frame["applicant_group"] = np.where(np.arange(4_000) % 3 == 0, "b", "a")
    loans = validate_frame(frame, keep=["applicant_group"])
    assert "applicant_group" not in FeatureTransformer.__dict__
    process_dataset(loans, storage, source="sample", size=8_000)
    result = run_training(
        TrainingRequest(rounds=10, protected_attribute="applicant_group", privileged_value="a"),
        storage,
        nthread=1,
    )
    fairness = result.report.to_json()["fairness"]
    groups = fairness["groups"]
    assert groups["privileged"]["size"] + groups["non_privileged"]["size"] == 2_000
    assert set(fairness["parity"]) == {"PPV", "FDR", "NPV", "FOR", "TPR", "FNR", "TNR", "FPR"}
    assert not any(c.startswith("applicant_group") for c in result.manifest.feature_spec)
    seen: list[object] = []
    with pytest.raises(InvalidInput, match="--keep-column gender"):
        run_training(
            TrainingRequest(rounds=2, protected_attribute="gender", privileged_value="f"),
            storage,
            nthread=1,
            progress=seen.append,
        )
    with pytest.raises(InvalidInput, match="needs the privileged value"):
        run_training(
            TrainingRequest(rounds=2, protected_attribute="applicant_group"),
            storage,
            nthread=1,
            progress=seen.append,
        )
    assert seen == []  # refused before a single round was trained
    assert ModelRegistry(storage).versions("loan-default") == [1]


def test_kept_columns_survive_expansion_and_storage() -> None:
    storage = MemoryStorage()
    frame = generate_sample(1_000, seed=6).assign(branch="north")
    dataset = process_dataset(
        validate_frame(frame, keep=["branch"]), storage, source="s", size=3_000
    )
    assert dataset.kept_columns == ["branch"]
    train = DatasetCatalogue(storage).load_split(dataset.id, "train")
    assert (train["branch"] == "north").all()
    assert isinstance(train["branch"].dtype, pd.CategoricalDtype)
    with pytest.raises(InvalidInput, match="missing required column"):
        validate_frame(generate_sample(10), keep=["branch"])


# XGBoost warns, from a C callback, that a linear booster ignores the tree parameters.
@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)
def test_a_version_that_cannot_be_served_is_published_but_never_promoted() -> None:
    """Training loads the version as the service will before it promotes: a linear booster
    (which XGBoost cannot predict in place, so no backend can serve it) is kept for
    inspection, and production is left alone, with the reason."""
    storage = MemoryStorage()
    sample_dataset(storage, n=600, seed=1)
    first = run_training(TrainingRequest(rounds=5), storage, nthread=1)
    assert (first.promoted, first.not_promoted) == (True, None)
    linear = run_training(
        TrainingRequest(rounds=5, params={"booster": "gblinear"}, promote=True), storage, nthread=1
    )
    assert linear.promoted is False
    assert linear.not_promoted is not None and "cannot be served" in linear.not_promoted
    registry = ModelRegistry(storage)
    assert registry.resolve("loan-default", "latest") == 2
    assert registry.resolve("loan-default", "production") == 1
