"""The statistics of a PD backtest, each a pure function of counts and sums.

Every function here takes what a grade or a portfolio reduces to (loans ``n``, defaults ``d``,
the PD tested ``pd``, per-grade count vectors) so a backtest over any number of loans streams:
the loans are summed once, the tests run on the sums. Sources are named per function; the
formulas are transcribed in docs/validation.md, and tests/validation/ holds each to meliora,
scipy or a second transcription of the formula.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import integrate, special, stats

#: The traffic light's levels: red below 0.1% (the 99.9% level), yellow below 5% (the 95% level).
RED_BELOW = 0.001
YELLOW_BELOW = 0.05

Light = Literal["green", "yellow", "red"]

#: The systematic factor is integrated over [-FACTOR_RANGE, FACTOR_RANGE]: the standard normal
#: mass outside is below 2e-23.
FACTOR_RANGE = 10.0
SQRT_2PI = math.sqrt(2.0 * math.pi)


def light(p: float | None) -> Light | None:
    """The traffic light of a one-sided p-value (small = PD underestimated): ``red`` below
    :data:`RED_BELOW` (rejected at the 99.9% level), ``yellow`` below :data:`YELLOW_BELOW`
    (rejected at 95% but not 99.9%), else ``green``; None when there is no p-value."""
    if p is None:
        return None
    if p < RED_BELOW:
        return "red"
    if p < YELLOW_BELOW:
        return "yellow"
    return "green"


def jeffreys_p(pd: float, d: int, n: int) -> float:
    """The Jeffreys test's p-value: the Beta(D + 1/2, N - D + 1/2) distribution function at the
    PD (ECB, "Instructions for reporting the validation results of internal models", IRB Pillar
    I models for credit risk, February 2019, section 2.5.3.1; Brown, Cai and DasGupta 2001).
    One-sided: small when D is large for the PD, i.e. when the PD is underestimated."""
    return float(stats.beta.cdf(pd, d + 0.5, n - d + 0.5))


def binomial_p(pd: float, d: int, n: int) -> float:
    """The exact binomial test's one-sided p-value ``P(Bin(N, PD) >= D)`` (BCBS Working Paper
    14, "Studies on the validation of internal rating systems", 2005, p. 47): defaults are
    independent under H0 (PD correct), the alternative is a PD that is underestimated."""
    return float(stats.binom.sf(d - 1, n, pd))


def basel_retail_rho(pd: float) -> float:
    """The asset correlation Basel II sets for "other retail" exposures (BCBS, "International
    convergence of capital measurement and capital standards", June 2006, paragraph 330):
    ``0.03 w + 0.16 (1 - w)`` with ``w = (1 - exp(-35 PD)) / (1 - exp(-35))``: 16% for the
    best PDs falling to 3% for the worst."""
    w = -math.expm1(-35.0 * pd) / -math.expm1(-35.0)
    return 0.03 * w + 0.16 * (1.0 - w)


def vasicek_p(pd: float, d: int, n: int, rho: float) -> float:
    """The binomial test under the one-factor (Vasicek) model with asset correlation ``rho``:
    ``P(D_N >= D) = integral of P(Bin(N, p(x)) >= D) phi(x) dx`` with the conditional PD
    ``p(x) = Phi((Phi^-1(PD) - sqrt(rho) x) / sqrt(1 - rho))`` (BCBS WP14, 2005, pp. 48-49,
    the "exact" correlated test computed by numerical integration). One-sided as
    :func:`binomial_p`, to which it reduces at ``rho = 0``; larger p-values for any rho > 0."""
    if d <= 0:
        return 1.0
    if rho == 0.0:
        return binomial_p(pd, d, n)
    gamma = stats.norm.ppf(pd)
    root, rest = math.sqrt(rho), math.sqrt(1.0 - rho)

    # scipy.special's ufuncs, not scipy.stats' objects: quad calls this thousands of times.
    # bdtrc(k, n, p) = P(Bin(n, p) > k); ndtr = Phi.
    def integrand(x: float) -> float:
        conditional = special.ndtr((gamma - root * x) / rest)
        density = math.exp(-0.5 * x * x) / SQRT_2PI
        return float(special.bdtrc(d - 1, n, conditional)) * density

    # The integrand falls from ~1 to ~0 around the factor x* whose conditional PD is D/N, a
    # step that narrows as N grows: splitting the range there lets quad find it.
    share = min(max(d / n, 1e-300), 1.0 - 1e-16)
    pivot = (gamma - rest * stats.norm.ppf(share)) / root
    pivot = min(max(pivot, -FACTOR_RANGE), FACTOR_RANGE)
    total = 0.0
    for low, high in ((-FACTOR_RANGE, pivot), (pivot, FACTOR_RANGE)):
        if high > low:
            value, _ = integrate.quad(integrand, low, high, epsabs=1e-14, epsrel=1e-12, limit=200)
            total += value
    return min(max(total, 0.0), 1.0)


def hosmer_lemeshow(
    pd: np.ndarray, d: np.ndarray, n: np.ndarray
) -> tuple[float, int, float] | None:
    """Hosmer-Lemeshow over grades: ``T = sum (D_g - N_g PD_g)^2 / (N_g PD_g (1 - PD_g))``,
    chi-square with as many degrees of freedom as grades (BCBS WP14, 2005, p. 52: the PDs are
    not fitted on the tested sample, so no degree of freedom is spent; Hosmer and Lemeshow,
    "Applied logistic regression", 2000, for the statistic). Grades with no loans are left
    out. Returns (statistic, df, p) or None when no grade has loans."""
    keep = n > 0
    if not keep.any():
        return None
    p, defaults, loans = pd[keep], d[keep], n[keep]
    expected = loans * p
    statistic = float(np.sum((defaults - expected) ** 2 / (expected * (1.0 - p))))
    df = int(keep.sum())
    return statistic, df, float(stats.chi2.sf(statistic, df))


def spiegelhalter(
    squared_error: float, variance: float, variance_of_error: float
) -> tuple[float, float] | None:
    """Spiegelhalter's z over loans (Spiegelhalter 1986, "Probabilistic prediction in patient
    management and clinical trials", Statistics in Medicine 5): with outcomes y and PDs p,
    ``z = (sum (y - p)^2 - sum p (1 - p)) / sqrt(sum (1 - 2p)^2 p (1 - p))``, standard normal
    when the PDs are the true ones. Takes the three sums; returns (z, two-sided p)."""
    if variance_of_error <= 0.0:
        return None
    z = (squared_error - variance) / math.sqrt(variance_of_error)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def grade_auc(defaults: np.ndarray, goods: np.ndarray) -> tuple[float, float] | None:
    """The AUC of the grades (grade 0 the best) and its standard error ``s``, from the defaults
    and non-defaults per grade (ECB instructions 2019, annex 3.1: Mann-Whitney U with ties
    counting one half, ``s^2 = var(V10) / |A| + var(V01) / |B|`` with the unbiased variances of
    the placements; DeLong, DeLong and Clarke-Pearson 1988). Every loan of a grade shares one
    placement, so the sums run over grades, not loans: exact for any number of loans.
    None unless there are defaults and non-defaults."""
    d = np.asarray(defaults, dtype=np.float64)
    g = np.asarray(goods, dtype=np.float64)
    total_d, total_g = float(d.sum()), float(g.sum())
    if total_d == 0 or total_g == 0:
        return None
    # A default in grade k outranks the non-defaults in better grades (< k), ties one half.
    goods_better = np.cumsum(g) - g
    v10 = (goods_better + 0.5 * g) / total_g
    # A non-default in grade k is outranked by the defaults in worse grades (> k).
    defaults_worse = total_d - np.cumsum(d)
    v01 = (defaults_worse + 0.5 * d) / total_d
    auc = float(np.sum(d * v10) / total_d)
    var10 = float(np.sum(d * (v10 - auc) ** 2) / (total_d - 1)) if total_d > 1 else 0.0
    var01 = float(np.sum(g * (v01 - auc) ** 2) / (total_g - 1)) if total_g > 1 else 0.0
    return auc, math.sqrt(var10 / total_d + var01 / total_g)


def auc_decline(current: float, development: float, s: float) -> tuple[float, float] | None:
    """The ECB's AUC test (instructions 2019, section 2.5.4.1): ``S = (AUC_init - AUC_curr) /
    s`` and the p-value ``1 - Phi(S)``; small when the AUC fell significantly since
    development. None when ``s`` is 0."""
    if s <= 0.0:
        return None
    statistic = (development - current) / s
    return statistic, float(stats.norm.sf(statistic))


def coefficient_of_variation(shares: np.ndarray) -> float:
    """The ECB's coefficient of variation of the grade shares R_i over K grades
    (instructions 2019, section 2.5.5.3): ``CV = sqrt(K sum (R_i - 1/K)^2)``."""
    k = shares.size
    return math.sqrt(k * float(np.sum((shares - 1.0 / k) ** 2)))


def ecb_herfindahl(cv: float, k: int) -> float:
    """The ECB's Herfindahl index ``HI = 1 + log((CV^2 + 1) / K) / log(K)`` (instructions 2019,
    section 2.5.5.3): 0 for grades equally filled, 1 for all loans in one grade. It is the
    usual index ``sum R_i^2`` rescaled: ``(CV^2 + 1) / K = sum R_i^2``."""
    return 1.0 + math.log((cv * cv + 1.0) / k) / math.log(k)


def herfindahl_test(cv_current: float, cv_development: float, k: int) -> tuple[float, float]:
    """The ECB's concentration test (instructions 2019, section 2.5.5.3, after Miller 1991):
    ``z = sqrt(K - 1) (CV_curr - CV_init) / sqrt(CV_curr^2 (0.5 + CV_curr^2))`` and the p-value
    ``1 - Phi(z)``; small when the grades are significantly more concentrated than at
    development. Returns (z, p); z is 0 when both are 0 (no concentration at all)."""
    denominator = math.sqrt(cv_current**2 * (0.5 + cv_current**2))
    if denominator == 0.0:
        z = 0.0 if cv_current == cv_development else -math.inf
    else:
        z = math.sqrt(k - 1) * (cv_current - cv_development) / denominator
    return z, float(stats.norm.sf(z))


def two_proportion(d1: int, n1: int, d2: int, n2: int) -> tuple[float, float] | None:
    """The pooled two-proportion z-test that grade 2 (the worse) has a higher default rate than
    grade 1: ``z = (DR_2 - DR_1) / sqrt(p (1 - p) (1/N_1 + 1/N_2))`` with the pooled rate p, and
    the one-sided p-value ``1 - Phi(z)`` (small = the grades differ in risk, as EBA GL/2017/16
    asks of a rating scale's grades). None when either grade is empty or the pooled rate is
    0 or 1."""
    if n1 == 0 or n2 == 0:
        return None
    pooled = (d1 + d2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return None
    z = (d2 / n2 - d1 / n1) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    return z, float(stats.norm.sf(z))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (Benjamini and Hochberg 1995, "Controlling the
    false discovery rate", JRSS B 57): ``p_(i) m / i``, made monotone from the largest down,
    capped at 1. Same order as given."""
    m = len(p_values)
    if m == 0:
        return []
    order = np.argsort(p_values)
    ranked = np.asarray(p_values, dtype=np.float64)[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]
