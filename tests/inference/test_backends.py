"""Backends: oneDAL equals XGBoost on the public dataset; fallbacks are real and explained."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xgboost as xgb

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import InvalidInput
from loanrisk.features.spec import (
    FeatureSpec,
    ImputedColumn,
    OneHotColumn,
    PassthroughColumn,
    ScaledColumn,
)
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.backends import (
    REUSED_ROWS,
    OneDALBackend,
    XGBoostBackend,
    make_backend,
    probe_set,
)
from loanrisk.registry import LoadedModel
from loanrisk.schema import Validated
from loanrisk.storage import MemoryStorage


def test_onedal_matches_xgboost_on_the_public_dataset(
    model: LoadedModel, real_loans: Validated
) -> None:
    features = FeatureTransformer(model.spec).transform(real_loans.frame, dtype=np.float32)
    # The public data's gaps are all imputed; add rows where NaN reaches the trees (age, income).
    with_gaps = features[:500].copy()
    with_gaps[::2, 3] = np.nan
    with_gaps[::3, 4] = np.nan
    features = np.vstack([features, with_gaps])
    expected = model.booster.predict(xgb.DMatrix(features))
    onedal = OneDALBackend(model.booster).predict_proba(features)
    stock = XGBoostBackend(model.booster).predict_proba(features)
    assert features.shape == (33_081, 26)
    assert np.max(np.abs(onedal - expected)) <= 1e-5
    assert np.max(np.abs(stock - expected)) <= 1e-6


def test_onedal_gives_daal4pys_answers_whichever_call_came_before(model: LoadedModel) -> None:
    """Small calls reuse a prediction algorithm per thread and row count: each answer is
    still daal4py's own, for any order of sizes and precisions, an earlier answer is not
    written over by a later call, and threads do not share an algorithm."""
    backend = OneDALBackend(model.booster)
    rng = np.random.default_rng(7)

    def loans(rows: int, dtype: type) -> np.ndarray:
        features = (rng.normal(size=(rows, 26)) * 3).astype(dtype)
        features[rng.random(features.shape) < 0.1] = np.nan
        return features

    sizes = [1, 3, 1, 16, 3, REUSED_ROWS, REUSED_ROWS + 1, 1, 16]
    calls = [loans(rows, dtype) for rows in sizes for dtype in (np.float32, np.float64)]

    def daal4pys(features: np.ndarray) -> np.ndarray:
        return backend.model.predict_proba(features)[:, 1].astype(np.float64)

    answers = [backend.predict_proba(features) for features in calls]
    for features, answer in zip(calls, answers, strict=True):
        assert answer.dtype == np.float64 and answer.shape == (len(features),)
        assert np.array_equal(answer, daal4pys(features))
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(backend.predict_proba, calls * 3))
    for features, answer in zip(calls * 3, again, strict=True):
        assert np.array_equal(answer, daal4pys(features))
    with pytest.raises(ValueError, match="Shape of input"):
        backend.predict_proba(loans(2, np.float32)[:, :25])


def test_auto_serves_with_onedal_after_the_probe_agrees(model: LoadedModel) -> None:
    backend, reason = make_backend(model.booster, model.spec)
    assert (backend.name, reason) == ("onedal", None)
    probe = probe_set(model.spec)
    assert np.isnan(probe).any()
    onehot = probe[:, 7:11]  # person_home_ownership block
    assert (onehot.sum(axis=1) == 0).any()  # unknown categories are probed
    assert (onehot.sum(axis=1) == 1).any()


def test_disagreement_falls_back_to_xgboost_with_the_reason(model: LoadedModel) -> None:
    backend, reason = make_backend(model.booster, model.spec, tolerance=-1.0)
    assert backend.name == "xgboost"
    assert reason is not None and reason.cause == "disagreed"
    assert "disagreed with XGBoost" in reason.reason


def test_a_model_onedal_cannot_serve_falls_back(model: LoadedModel) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 26)).astype(np.float32)
    regression = xgb.train(
        {"objective": "reg:squarederror"}, xgb.DMatrix(features, label=features[:, 0]), 5
    )
    backend, reason = make_backend(regression, model.spec)
    assert backend.name == "xgboost"
    assert reason is not None and reason.cause == "failed"
    assert "oneDAL failed on this model" in reason.reason


def test_explicit_choices(model: LoadedModel, trained: tuple[MemoryStorage, str]) -> None:
    backend, reason = make_backend(model.booster, model.spec, choice="xgboost")
    assert (backend.name, reason) == ("xgboost", ("chosen", "xgboost chosen in settings"))
    with pytest.raises(InvalidInput, match="unknown backend"):
        make_backend(model.booster, model.spec, choice="tpu")  # type: ignore[arg-type]
    assert DatasetCatalogue(trained[0]).listing()[0]


def test_the_probe_covers_scaled_and_passthrough_columns_and_onedal_serves(
    model: LoadedModel,
) -> None:
    """The defect of the second wave: a spec with scaled and pass-through numbers (the
    default ``preprocess: none`` of every drafted schema) broke the probe, outside the
    fallback, so no such version could be served."""
    spec = FeatureSpec(
        imputed=(ImputedColumn("a", 1.0),),
        power=(),
        onehot=(OneHotColumn("kind", ("X", "Y")),),
        scaled=(ScaledColumn("b", 0.0, 1.0),),
        passthrough=(PassthroughColumn("c"), PassthroughColumn("d")),
    )
    probe = probe_set(spec)
    assert probe.shape == (256, 6)
    assert np.isnan(probe[:, 1:4]).any(axis=0).all()  # b, c and d are probed missing
    assert not np.isnan(probe[:, 0]).any()  # an imputed column is never missing
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 6)).astype(np.float32)
    features[::5, 2] = np.nan
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4},
        xgb.DMatrix(features, label=features[:, 2] > 0),
        10,
    )
    backend, reason = make_backend(booster, spec)
    assert (backend.name, reason) == ("onedal", None)


def test_any_failure_of_the_check_falls_back_under_auto(model: LoadedModel) -> None:
    """A probe that cannot be built for the booster (here a spec of another width) is a
    failed check, not an error: XGBoost serves, and says why."""
    narrow = FeatureSpec(imputed=(ImputedColumn("a", 0.0),), power=(), onehot=())
    backend, reason = make_backend(model.booster, narrow)
    assert backend.name == "xgboost"
    assert reason is not None and reason.cause == "failed"
