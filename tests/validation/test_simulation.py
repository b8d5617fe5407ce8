"""Outcomes drawn from the PDs themselves light red and yellow at about their nominal rates;
a grade whose true default rate is three times its PD turns red, and only that grade."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.validation import _stats, backtest

from .conftest import GRADES, make_portfolio


def test_red_and_yellow_lights_come_at_their_nominal_rates_when_the_pds_are_right() -> None:
    # 6 grades x 2,000 draws of each grade's defaults, Bin(N, PD): the Jeffreys p-value is then
    # nearly uniform, so about 5% of lights are yellow or red and about 0.1% red.
    rng = np.random.default_rng(11)
    sizes, pds = [2800, 2500, 5400, 5100, 3400, 760], [0.005, 0.015, 0.034, 0.072, 0.14, 0.25]
    lights = [
        _stats.light(_stats.jeffreys_p(pd_, int(d), n))
        for n, pd_ in zip(sizes, pds, strict=True)
        for d in rng.binomial(n, pd_, 2000)
    ]
    flagged = sum(light != "green" for light in lights) / len(lights)
    red = sum(light == "red" for light in lights) / len(lights)
    assert 0.035 <= flagged <= 0.065
    assert red <= 0.003


@pytest.fixture(scope="module")
def backtests_from_the_pds() -> list[list[str | None]]:
    found = []
    for seed in range(8):
        loans = make_portfolio(seed=100 + seed, size=6000)
        result = backtest(loans.pd, loans.defaulted, loans.grade, GRADES)
        found.append([g.light for g in result.grades] + [result.portfolio.light])
    return found


def test_loans_drawn_from_their_pds_light_no_red(
    backtests_from_the_pds: list[list[str | None]],
) -> None:
    lights = [light for row in backtests_from_the_pds for light in row]
    assert "red" not in lights
    assert sum(light == "yellow" for light in lights) / len(lights) <= 0.12


@pytest.mark.parametrize("tripled", range(len(GRADES)))
def test_a_grade_defaulting_three_times_its_pd_turns_red_alone(tripled: int) -> None:
    loans = make_portfolio(seed=5, size=12_000)
    rng = np.random.default_rng(50 + tripled)
    true_rate = np.where(loans.grade == tripled, np.minimum(3 * loans.pd, 1.0), loans.pd)
    defaulted = (rng.random(loans.pd.size) < true_rate).astype(int)
    found = backtest(loans.pd, defaulted, loans.grade, GRADES)
    assert [g.light == "red" for g in found.grades] == [i == tripled for i in range(len(GRADES))]
