"""Split: 75/25, stratified, seeded, disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.data.split import split_frame, split_indices
from loanrisk.schema import Validated
from tests.builtin import LABEL


def test_split_is_75_25_stratified_and_disjoint(real_loans: Validated) -> None:
    train, test = split_frame(real_loans.frame)
    assert len(train) + len(test) == 32_581
    assert len(test) == pytest.approx(32_581 * 0.25, abs=1)
    rate = real_loans.frame[LABEL].mean()
    assert abs(train[LABEL].mean() - rate) < 1e-3
    assert abs(test[LABEL].mean() - rate) < 1e-3
    assert list(train.index) == list(range(len(train)))


def test_indices_cover_every_row_once_and_depend_on_the_seed() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    train, test = split_indices(labels, 100, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert labels[test].sum() == round(0.25 * 10)
    again, _ = split_indices(labels, 100, seed=3)
    other, _ = split_indices(labels, 100, seed=4)
    assert np.array_equal(train, again)
    assert not np.array_equal(train, other)


def test_unstratified_split_and_bad_arguments() -> None:
    train, test = split_indices(None, 8, test_fraction=0.5)
    assert len(train) == len(test) == 4
    with pytest.raises(ValueError, match="too few"):
        split_indices(np.array([1]), 1)
    with pytest.raises(ValueError, match="strictly between"):
        split_indices(None, 10, test_fraction=1.0)
