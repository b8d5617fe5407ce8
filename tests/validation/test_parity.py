"""Every statistic of the backtest held to an independent implementation within 1e-9: meliora
(the field's package) where it implements the test as the ECB defines it, else scipy or a
second transcription of the source's formula. Where meliora differs from the ECB, the test
says how (docs/validation.md)."""

from __future__ import annotations

import math

import meliora.core as meliora
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from loanrisk.monitoring.paired import _placements
from loanrisk.validation import _stats, backtest, migration
from loanrisk.validation.backtest import Backtest

from .conftest import GRADES, Portfolio

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def result(loans: Portfolio) -> Backtest:
    development = np.bincount(loans.later, minlength=len(GRADES))
    return backtest(
        loans.pd,
        loans.defaulted,
        loans.grade,
        GRADES,
        development_auc=0.8,
        development_grade_shares=development,
        amount=loans.amount,
    )


def test_every_grade_of_the_fixture_has_loans_and_defaults(result: Backtest) -> None:
    assert all(g.loans > 0 and g.defaults > 0 for g in result.grades)


def test_jeffreys_p_per_grade_and_portfolio_equals_meliora(
    loans: Portfolio, result: Backtest
) -> None:
    theirs = meliora.jeffreys_test(loans.frame(), "ratings", "default_flag", "predicted_pd")
    assert [g.loans for g in result.grades] == theirs["Total count"].tolist()
    assert [g.defaults for g in result.grades] == theirs["Defaults"].tolist()
    for ours, (p, mean_pd) in zip(
        result.grades, zip(theirs["p_value"], theirs["Predicted PD"], strict=True), strict=True
    ):
        assert ours.mean_pd == pytest.approx(mean_pd, abs=TOLERANCE)
        assert ours.jeffreys_p == pytest.approx(p, abs=TOLERANCE)
    whole = loans.frame().assign(ratings=0)
    portfolio = meliora.jeffreys_test(whole, "ratings", "default_flag", "predicted_pd")
    assert result.portfolio.jeffreys_p == pytest.approx(portfolio["p_value"][0], abs=TOLERANCE)


def test_jeffreys_p_is_scipys_beta_from_the_reported_n_d_and_pd(result: Backtest) -> None:
    for row in [*result.grades, result.portfolio]:
        assert row.mean_pd is not None
        expected = stats.beta.cdf(row.mean_pd, row.defaults + 0.5, row.loans - row.defaults + 0.5)
        assert row.jeffreys_p == pytest.approx(expected, abs=TOLERANCE)


def test_binomial_p_equals_meliora(loans: Portfolio, result: Backtest) -> None:
    theirs = meliora.binomial_test(loans.frame(), "ratings", "default_flag", "predicted_pd")
    for ours, p in zip(result.grades, theirs["p_value"], strict=True):
        assert ours.binomial_p == pytest.approx(p, abs=TOLERANCE)


def test_hosmer_lemeshow_equals_meliora_and_the_bcbs_formula(
    loans: Portfolio, result: Backtest
) -> None:
    p_value, _ = meliora.hosmer_test(loans.frame(), "ratings", "default_flag", "predicted_pd")
    found = result.portfolio.hosmer_lemeshow
    assert found is not None
    assert found.df == len(GRADES)
    assert found.p == pytest.approx(p_value, abs=TOLERANCE)
    statistic = sum(
        (g.defaults - g.loans * g.mean_pd) ** 2 / (g.loans * g.mean_pd * (1 - g.mean_pd))
        for g in result.grades
        if g.mean_pd is not None
    )
    assert found.statistic == pytest.approx(statistic, rel=TOLERANCE)
    assert found.p == pytest.approx(stats.chi2.sf(statistic, len(GRADES)), abs=TOLERANCE)


def test_spiegelhalter_z_equals_meliora_over_loans(loans: Portfolio, result: Backtest) -> None:
    # meliora's spiegelhalter_test passes grade-level rates (swapped); its _spiegelhalter over
    # loans is Spiegelhalter's statistic.
    z, _ = meliora._spiegelhalter(loans.defaulted, loans.pd)
    found = result.portfolio.spiegelhalter
    assert found is not None
    assert found.z == pytest.approx(z, abs=TOLERANCE)
    assert found.p == pytest.approx(2 * stats.norm.sf(abs(z)), abs=TOLERANCE)


def test_herfindahl_equals_meliora_and_the_ecb_index(loans: Portfolio, result: Backtest) -> None:
    cv, hhi = meliora.herfindahl_test(loans.frame(), "ratings")
    found = result.portfolio.herfindahl
    assert found.cv == pytest.approx(cv, abs=TOLERANCE)
    assert found.hhi == pytest.approx(hhi, abs=TOLERANCE)
    # The ECB's index is the usual one rescaled to [0, 1] (meliora returns the usual one).
    k = len(GRADES)
    assert found.index == pytest.approx(1 + math.log(hhi) / math.log(k), abs=TOLERANCE)
    table = meliora.herfindahl_multiple_period_test(
        loans.frame().assign(ratings=loans.later), loans.frame(), "ratings"
    )
    assert found.p == pytest.approx(table.loc["total", "p_value"], abs=TOLERANCE)


def test_exposure_weighted_herfindahl_follows_the_ecb(loans: Portfolio, result: Backtest) -> None:
    exposure = np.bincount(loans.grade, weights=loans.amount, minlength=len(GRADES))
    shares = exposure / exposure.sum()
    cv = math.sqrt(len(GRADES) * sum((r - 1 / len(GRADES)) ** 2 for r in shares))
    expected = 1 + math.log((cv**2 + 1) / len(GRADES)) / math.log(len(GRADES))
    assert result.portfolio.herfindahl.exposure_index == pytest.approx(expected, abs=TOLERANCE)


def test_grade_auc_and_its_variance_equal_the_placements_and_sklearn(
    loans: Portfolio, result: Backtest
) -> None:
    auc, positive, negative = _placements(loans.defaulted, loans.grade.astype(np.float64))
    s = math.sqrt(positive.var(ddof=1) / positive.size + negative.var(ddof=1) / negative.size)
    found = result.portfolio.auc
    assert found.current == pytest.approx(auc, abs=TOLERANCE)
    assert found.current == pytest.approx(
        roc_auc_score(loans.defaulted, loans.grade), abs=TOLERANCE
    )
    assert found.s == pytest.approx(s, abs=TOLERANCE)
    statistic = (0.8 - auc) / s
    assert found.statistic == pytest.approx(statistic, abs=1e-6)
    assert found.p == pytest.approx(1 - stats.norm.cdf(statistic), abs=TOLERANCE)


def test_grade_auc_is_the_ecbs_mann_whitney_u() -> None:
    rng = np.random.default_rng(3)
    grade = rng.integers(0, 4, 300)
    defaulted = (rng.random(300) < 0.05 + 0.08 * grade).astype(int)
    a, b = grade[defaulted == 1], grade[defaulted == 0]
    u = np.where(a[:, None] > b[None, :], 1.0, np.where(a[:, None] == b[None, :], 0.5, 0.0))
    v10, v01 = u.mean(axis=1), u.mean(axis=0)
    expected_s = math.sqrt(v10.var(ddof=1) / a.size + v01.var(ddof=1) / b.size)
    found = _stats.grade_auc(np.bincount(a, minlength=4), np.bincount(b, minlength=4))
    assert found is not None
    assert found[0] == pytest.approx(u.sum() / (a.size * b.size), abs=TOLERANCE)
    assert found[1] == pytest.approx(expected_s, abs=TOLERANCE)


def test_heterogeneity_equals_scipys_two_by_two_chi_square(result: Backtest) -> None:
    rows = {g.grade: g for g in result.grades}
    assert len(result.portfolio.heterogeneity) == len(GRADES) - 1
    for pair in result.portfolio.heterogeneity:
        better, worse = rows[pair.better], rows[pair.worse]
        table = [
            [better.defaults, better.loans - better.defaults],
            [worse.defaults, worse.loans - worse.defaults],
        ]
        chi2, p_two, _, _ = stats.chi2_contingency(table, correction=False)
        assert pair.z is not None
        assert pair.z**2 == pytest.approx(chi2, rel=TOLERANCE)
        one_sided = p_two / 2 if pair.z > 0 else 1 - p_two / 2
        assert pair.p == pytest.approx(one_sided, abs=TOLERANCE)


def test_psi_of_the_grades_is_the_formula(loans: Portfolio, result: Backtest) -> None:
    expected = np.bincount(loans.later, minlength=len(GRADES)) / loans.later.size
    actual = np.bincount(loans.grade, minlength=len(GRADES)) / loans.grade.size
    psi = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert result.portfolio.psi == pytest.approx(psi, abs=TOLERANCE)


def test_vasicek_p_equals_a_trapezoid_integral_of_the_bcbs_formula() -> None:
    x = np.linspace(-12, 12, 400_001)
    for pd_, d, n, rho in [(0.01, 14, 1000, 0.05), (0.03, 40, 900, 0.12), (0.2, 30, 120, 0.03)]:
        conditional = stats.norm.cdf(
            (stats.norm.ppf(pd_) - math.sqrt(rho) * x) / math.sqrt(1 - rho)
        )
        integrand = stats.binom.sf(d - 1, n, conditional) * stats.norm.pdf(x)
        expected = float(np.sum((integrand[1:] + integrand[:-1]) / 2 * np.diff(x)))
        assert _stats.vasicek_p(pd_, d, n, rho) == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("pd_", "n", "rho", "critical"),
    [
        # BCBS WP14 (2005), p. 50, examples 1 and 3: the exact critical numbers of defaults k*
        # at q = 99% (the smallest k with P(D >= k) <= 1%).
        (0.01, 100, 0.0, 5),
        (0.01, 100, 0.05, 6),
        (0.01, 100, 0.20, 10),
        (0.01, 1000, 0.0, 19),
        (0.01, 1000, 0.05, 35),
        (0.01, 1000, 0.10, 49),
    ],
)
def test_vasicek_critical_defaults_match_the_bcbs_tables(
    pd_: float, n: int, rho: float, critical: int
) -> None:
    k = next(k for k in range(n + 1) if _stats.vasicek_p(pd_, k, n, rho) <= 0.01)
    assert k == critical


def test_basel_retail_correlation_runs_from_16_to_3_percent() -> None:
    assert _stats.basel_retail_rho(1e-9) == pytest.approx(0.16, abs=1e-6)
    assert _stats.basel_retail_rho(0.5) == pytest.approx(0.03, abs=1e-6)
    pd_ = 0.02
    w = (1 - math.exp(-35 * pd_)) / (1 - math.exp(-35))
    assert _stats.basel_retail_rho(pd_) == pytest.approx(0.03 * w + 0.16 * (1 - w), abs=1e-15)


def test_benjamini_hochberg_equals_scipy() -> None:
    p = [0.001, 0.2, 0.04, 0.03, 0.5, 0.0401, 1.0]
    expected = stats.false_discovery_control(p, method="bh")
    assert _stats.benjamini_hochberg(p) == pytest.approx(list(expected), abs=TOLERANCE)


def test_migration_z_and_p_equal_meliora(loans: Portfolio) -> None:
    found = migration(loans.grade, loans.later, GRADES)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where z is undefined
        z, phi = meliora.migration_matrix_stability(
            loans.frame(), "period_1_ratings", "period_2_ratings"
        )
    defined = 0
    for i in range(len(GRADES)):
        for j in range(len(GRADES)):
            if i == j or not np.isfinite(z.iloc[i, j]):
                # The ECB reports an undefined z as missing.
                assert found.z[i][j] is None
                continue
            defined += 1
            assert found.z[i][j] == pytest.approx(z.iloc[i, j], abs=TOLERANCE)
            assert found.p[i][j] == pytest.approx(phi.iloc[i, j], abs=TOLERANCE)
    assert defined >= 2 * (len(GRADES) - 1)


def _ecb_mwb(counts: np.ndarray) -> tuple[float, float]:
    """The ECB's formulas (2019, section 2.5.5.1) word for word, 1-based."""
    k = counts.shape[0]
    n = counts.sum(axis=1)
    p = counts / n[:, None]
    upper = sum(
        abs(i - j) * n[i - 1] * p[i - 1, j - 1] for i in range(1, k) for j in range(i + 1, k + 1)
    )
    lower = sum(
        abs(i - j) * n[i - 1] * p[i - 1, j - 1] for i in range(2, k + 1) for j in range(1, i)
    )
    norm_u = sum(
        max(abs(i - k), abs(i - 1)) * n[i - 1] * sum(p[i - 1, j - 1] for j in range(i + 1, k + 1))
        for i in range(1, k)
    )
    norm_l = sum(
        max(abs(i - k), abs(i - 1)) * n[i - 1] * sum(p[i - 1, j - 1] for j in range(1, i))
        for i in range(2, k + 1)
    )
    return upper / norm_u, lower / norm_l


def test_mwb_follows_the_ecb_where_meliora_does_not(loans: Portfolio) -> None:
    found = migration(loans.grade, loans.later, GRADES)
    upper, lower = _ecb_mwb(np.asarray(found.counts))
    assert found.upper_mwb == pytest.approx(upper, abs=TOLERANCE)
    assert found.lower_mwb == pytest.approx(lower, abs=TOLERANCE)
    # meliora 0.1.2 normalises by max(i - K, i - 1) once per cell and sums the upper triangle
    # for both: its bandwidths differ (docs/validation.md).
    theirs = meliora.migration_matrices_statistics(
        loans.frame(), "period_1_ratings", "period_2_ratings"
    )
    assert theirs[0] != pytest.approx(upper, abs=1e-3)
