"""The chance level of a stability index (``loanrisk.monitoring.drift.chance_level``): the
index windows of a given size reach 5% of the time when nothing shifted, held to windows drawn
independently here and to the chi-square approximation (scipy) where it applies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from loanrisk.monitoring.drift import CHANCE_DRAWS, Stability, chance_level, psi

#: Training counts over ten deciles, an "other" bin no training row fell in, and a small
#: missing bin (the shape of a profile's numeric bins).
TRAINING = np.array([2400, 2300, 2500, 2450, 2600, 2350, 2500, 2400, 2480, 2520, 0, 60])


def _unshifted_indexes(rows: int, draws: int, seed: int) -> np.ndarray:
    """PSI of ``draws`` windows of ``rows`` loans drawn from the training shares, each against
    a fresh training sample of the same size (nothing shifted)."""
    rng = np.random.default_rng(seed)
    shares = TRAINING / TRAINING.sum()
    return np.array(
        [
            psi(
                rng.multinomial(int(TRAINING.sum()), shares),
                rng.multinomial(rows, shares),
            )
            for _ in range(draws)
        ]
    )


@pytest.mark.parametrize("rows", [5, 40, 300, 5_000])
def test_about_one_unshifted_window_in_twenty_exceeds_the_chance_level(rows: int) -> None:
    level = chance_level(TRAINING, rows)
    assert level is not None
    exceeded = float(np.mean(_unshifted_indexes(rows, 2_000, seed=rows) > level))
    # 5% expected; 2,000 draws give a standard error of 0.5%
    assert 0.03 <= exceeded <= 0.07, (rows, level, exceeded)


def test_a_large_window_s_level_is_the_chi_square_approximation() -> None:
    rows, total = 30_000, int(TRAINING.sum())  # every bin expects at least five loans
    bins = np.count_nonzero(TRAINING)
    expected = chi2.ppf(0.95, bins - 1) * (1 / rows + 1 / total)
    assert chance_level(TRAINING, rows) == pytest.approx(expected, rel=1e-12)


def test_small_windows_reach_a_shift_by_chance_and_a_real_shift_is_beyond_it() -> None:
    assert chance_level(TRAINING, 5) > 0.25  # five loans: any "shift" may be noise
    assert chance_level(TRAINING, 5) > chance_level(TRAINING, 50) > chance_level(TRAINING, 500)
    rng = np.random.default_rng(7)
    shifted = np.array([0.02, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.18, 0.22, 0.0, 0.0])
    window = rng.multinomial(2_000, shifted)
    index = psi(TRAINING, window)
    assert index > 0.25 and index > chance_level(TRAINING, 2_000)


def test_the_level_is_seeded_and_none_without_loans_or_bins() -> None:
    assert chance_level(TRAINING, 12) == chance_level(TRAINING, 12)
    assert CHANCE_DRAWS >= 1_000
    assert chance_level(TRAINING, 0) is None
    assert chance_level(np.array([0, 500, 0]), 10) is None  # one bin: nothing can move


def test_an_index_within_chance_is_read_so_whatever_its_band() -> None:
    noisy = Stability(name="x", index=0.9, band="shift", bins=[], chance=1.2)
    real = Stability(name="x", index=0.9, band="shift", bins=[], chance=0.05)
    old = Stability.model_validate({"name": "x", "index": 0.9, "band": "shift", "bins": []})
    assert noisy.within_chance and noisy.reading == "shift (within chance)"
    assert real.within_chance is False and real.reading == "shift"
    assert old.within_chance is None and old.reading == "shift"  # a report from before
    assert noisy.model_dump(mode="json")["within_chance"] is True
