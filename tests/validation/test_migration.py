"""The migration matrix's counts, bandwidths and refusals (the statistics' parity with meliora
and the ECB's formulas is in test_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.errors import InvalidInput
from loanrisk.validation import migration, migration_from_counts
from loanrisk.validation.migration import migration_counts


def test_counts_rows_and_frequencies() -> None:
    found = migration(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 1, 0]), ["A", "B", "C"])
    assert found.counts == [[1, 1, 0], [0, 1, 0], [1, 1, 1]]
    assert found.loans == [2, 1, 3]
    assert found.frequencies[0] == [0.5, 0.5, 0.0]


def test_no_move_has_no_bandwidth_and_the_farthest_moves_have_one() -> None:
    same = migration(np.array([0, 1, 2]), np.array([0, 1, 2]), ["A", "B", "C"])
    assert (same.upper_mwb, same.lower_mwb) == (None, None)
    far = migration(np.array([0, 2]), np.array([2, 0]), ["A", "B", "C"])
    assert (far.upper_mwb, far.lower_mwb) == (1.0, 1.0)


def test_an_empty_row_has_no_frequencies_nor_tests() -> None:
    found = migration_from_counts(np.array([[3, 1], [0, 0]]), ["A", "B"])
    assert found.frequencies[1] == [None, None]
    assert found.z[1] == [None, None]


def test_chunks_of_counts_add_up() -> None:
    a, b = np.array([0, 1, 2, 1]), np.array([1, 1, 0, 2])
    whole = migration_counts(a, b, 3)
    assert (migration_counts(a[:2], b[:2], 3) + migration_counts(a[2:], b[2:], 3) == whole).all()


@pytest.mark.parametrize(
    ("initial", "final", "field"),
    [
        (np.array([0, 3]), np.array([0, 1]), "initial"),
        (np.array([0, 1]), np.array([0, -1]), "final"),
        (np.array([0, 1]), np.array([0]), "final"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "initial"),
    ],
)
def test_bad_grades_are_refused(initial: np.ndarray, final: np.ndarray, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        migration(initial, final, ["A", "B", "C"])
    assert error.value.details["field"] == field


def test_counts_must_fit_the_scale() -> None:
    with pytest.raises(InvalidInput):
        migration_from_counts(np.ones((2, 3), dtype=int), ["A", "B"])
