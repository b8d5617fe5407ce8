"""Training a booster: progress each round, cancellation, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.errors import Cancelled, InvalidInput
from loanrisk.training.train import DEFAULT_PARAMS, RoundProgress, parse_param, train_booster


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2_000, 5)).astype(np.float32)
    labels = (features[:, 0] + rng.normal(size=2_000) > 0.8).astype(np.int8)
    return features, labels


def test_progress_is_reported_every_round_with_an_eta(data: tuple[np.ndarray, np.ndarray]) -> None:
    seen: list[RoundProgress] = []
    outcome = train_booster(
        *data, params=DEFAULT_PARAMS, rounds=12, nthread=1, progress=seen.append
    )
    assert [p.done for p in seen] == list(range(1, 13))
    assert all(p.total == 12 for p in seen)
    assert seen[-1].eta == 0
    assert seen[-1].metrics == {}  # no validation slice: nothing is evaluated per round
    assert outcome.booster.num_boosted_rounds() == 12


def test_continued_training_counts_only_new_rounds(data: tuple[np.ndarray, np.ndarray]) -> None:
    first = train_booster(*data, params=DEFAULT_PARAMS, rounds=5, nthread=1).booster
    seen: list[RoundProgress] = []
    more = train_booster(
        *data, params=DEFAULT_PARAMS, rounds=7, nthread=1, init_model=first, progress=seen.append
    )
    assert more.booster.num_boosted_rounds() == 12
    assert more.rounds == 7
    assert [p.done for p in seen] == list(range(1, 8))


def test_cancelling_stops_the_training_and_raises(data: tuple[np.ndarray, np.ndarray]) -> None:
    seen: list[RoundProgress] = []
    with pytest.raises(Cancelled):
        train_booster(
            *data,
            params=DEFAULT_PARAMS,
            rounds=500,
            nthread=1,
            progress=seen.append,
            should_cancel=lambda: len(seen) >= 3,
        )
    assert len(seen) == 3


def test_early_stopping_records_the_best_iteration(data: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = data
    outcome = train_booster(
        features[:1500],
        labels[:1500],
        params={**DEFAULT_PARAMS, "learning_rate": 0.5},
        rounds=300,
        nthread=1,
        validation=(features[1500:], labels[1500:]),
        early_stopping_rounds=5,
    )
    assert outcome.best_iteration is not None
    assert outcome.rounds < 300
    with pytest.raises(InvalidInput, match="needs a validation slice"):
        train_booster(*data, params=DEFAULT_PARAMS, rounds=5, nthread=1, early_stopping_rounds=2)


def test_parameters_parse_and_bad_ones_are_clear_errors(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    assert parse_param("max_depth=6") == ("max_depth", 6)
    assert parse_param("eta=0.1") == ("eta", 0.1)
    assert parse_param("objective=binary:hinge") == ("objective", "binary:hinge")
    with pytest.raises(InvalidInput, match="key=value"):
        parse_param("max_depth")
    with pytest.raises(InvalidInput, match="XGBoost refused"):
        train_booster(*data, params={**DEFAULT_PARAMS, "max_depth": -1}, rounds=2, nthread=1)
    with pytest.raises(InvalidInput, match="at least 1"):
        train_booster(*data, params=DEFAULT_PARAMS, rounds=0, nthread=1)
