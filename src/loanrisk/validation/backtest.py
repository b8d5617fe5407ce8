"""A PD backtest per grade and for the portfolio: calibration (Jeffreys, binomial, correlated
binomial, Hosmer-Lemeshow, Spiegelhalter), discrimination (the AUC of the grades against the
development AUC), concentration (Herfindahl), stability (PSI of the grade distribution) and the
heterogeneity of adjacent grades, with a traffic light per grade and for the portfolio.

Bounded: every figure is a function of per-grade counts and sums (loans, defaults, the sum of
the PDs, the sum of the amounts) and three portfolio sums for Spiegelhalter, so
:class:`BacktestAccumulator` takes the loans in chunks of any size and holds O(grades) numbers:
a backtest over any number of loans is exact and needs memory for one chunk. Nothing is
computed on a sample; a caller that could only read a uniform sample of a larger window says so
with ``sampled_from`` and the result carries ``sampled: true``.

The formulas and their sources are in :mod:`loanrisk.validation._stats` and docs/validation.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from loanrisk.errors import InvalidInput
from loanrisk.monitoring.drift import psi
from loanrisk.validation import _stats
from loanrisk.validation._stats import Light


class Levels(BaseModel):
    """The p-values under which a light turns yellow and red."""

    model_config = ConfigDict(frozen=True)

    yellow: float = _stats.YELLOW_BELOW
    red: float = _stats.RED_BELOW


class Calibration(BaseModel):
    """The calibration of a grade or of the portfolio: loans N, defaults D, the observed default
    rate D/N, the mean PD of its loans (the PD tested), the one-sided p-values of the Jeffreys,
    exact binomial and correlated (Vasicek) binomial tests with the asset correlation used, and
    the traffic light (driven by the Jeffreys p-value). Rates, PD, p-values and light are None
    when there are no loans."""

    model_config = ConfigDict(frozen=True)

    loans: int
    defaults: int
    default_rate: float | None
    mean_pd: float | None
    jeffreys_p: float | None
    binomial_p: float | None
    vasicek_p: float | None
    rho: float | None
    light: Light | None


class _Named(BaseModel):
    model_config = ConfigDict(frozen=True)

    grade: str


class GradeResult(Calibration, _Named):
    """One grade's calibration; ``grade`` (first in the JSON) is the grade's name."""


class HosmerLemeshow(BaseModel):
    model_config = ConfigDict(frozen=True)

    statistic: float
    df: int
    p: float


class Spiegelhalter(BaseModel):
    model_config = ConfigDict(frozen=True)

    z: float
    p: float


class Auc(BaseModel):
    """The AUC of the grades now (``current``) with its DeLong standard error ``s``, and, when a
    development AUC is given, the ECB's statistic ``(development - current) / s`` and its
    p-value (small = discrimination fell). ``on`` says the AUC ranks by grade, as the ECB asks."""

    model_config = ConfigDict(frozen=True)

    current: float | None
    development: float | None
    s: float | None
    statistic: float | None
    p: float | None
    on: Literal["grades"] = "grades"


class Herfindahl(BaseModel):
    """Concentration of the loans over the K grades: the ECB's index (0 = even, 1 = one
    grade), the usual index ``sum R_i^2`` (``hhi``), the coefficient of variation; the ECB's
    index weighted by amount when amounts were given; against the development shares, their
    index and CV and the ECB's one-sided test (small p = more concentrated than at
    development)."""

    model_config = ConfigDict(frozen=True)

    index: float | None
    hhi: float | None
    cv: float | None
    exposure_index: float | None = None
    development_index: float | None = None
    development_cv: float | None = None
    statistic: float | None = None
    p: float | None = None


class Heterogeneity(BaseModel):
    """Two adjacent (non-empty) grades' default rates compared: z and the one-sided p-value that
    the worse grade defaults no more often than the better (small = the grades differ)."""

    model_config = ConfigDict(frozen=True)

    better: str
    worse: str
    z: float | None
    p: float | None


class Portfolio(Calibration):
    """The portfolio's calibration and the portfolio-only tests."""

    hosmer_lemeshow: HosmerLemeshow | None
    spiegelhalter: Spiegelhalter | None
    auc: Auc
    herfindahl: Herfindahl
    psi: float | None
    heterogeneity: list[Heterogeneity]


class Backtest(BaseModel):
    """A backtest: per grade (best first) and for the portfolio. ``rows`` loans were counted;
    ``sampled`` says whether they were a sample of ``sampled_from`` loans. ``light_test`` names
    the p-value behind the lights, ``levels`` its thresholds; ``rho`` is the configured asset
    correlation, None for Basel's other-retail correlation of each grade's PD."""

    model_config = ConfigDict(frozen=True)

    grades: list[GradeResult]
    portfolio: Portfolio
    rows: int
    sampled: bool = False
    sampled_from: int | None = None
    light_test: Literal["jeffreys"] = "jeffreys"
    levels: Levels = Levels()
    rho: float | None = None


def _array(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional", details={"field": name})
    return array


class BacktestAccumulator:
    """Per-grade counts and sums, fed in chunks (:meth:`add`), turned into a :class:`Backtest`
    (:meth:`result`). Memory: O(grades), whatever the number of loans."""

    def __init__(self, grade_names: Sequence[str]) -> None:
        names = [str(name) for name in grade_names]
        if len(names) < 2:
            raise InvalidInput(
                "a backtest needs at least two grades", details={"field": "grade_names"}
            )
        if len(set(names)) != len(names):
            raise InvalidInput("grade names must differ", details={"field": "grade_names"})
        self.grade_names = names
        g = len(names)
        self.loans = np.zeros(g, dtype=np.int64)
        self.defaults = np.zeros(g, dtype=np.int64)
        self.pd_sum = np.zeros(g)
        self.amount_sum = np.zeros(g)
        self.amounts = False
        self.squared_error = 0.0
        self.variance = 0.0
        self.variance_of_error = 0.0

    def add(
        self,
        pd: np.ndarray,
        defaulted: np.ndarray,
        grade: np.ndarray,
        *,
        amount: np.ndarray | None = None,
    ) -> None:
        """Count one chunk of loans: ``pd`` their PDs (strictly between 0 and 1), ``defaulted``
        1/0 (or True/False), ``grade`` the grade index (0 = best .. G-1), ``amount`` optional
        non-negative exposures (the exposure-weighted Herfindahl index). Raises
        :class:`InvalidInput` naming the field on a bad value; nothing is counted then."""
        p = _array(pd, "pd").astype(np.float64, copy=False)
        y = _array(defaulted, "defaulted")
        g = _array(grade, "grade")
        if not p.size == y.size == g.size:
            raise InvalidInput(
                f"pd, defaulted and grade differ in length ({p.size}, {y.size}, {g.size})",
                details={"field": "defaulted" if p.size != y.size else "grade"},
            )
        if p.size and not np.all((p > 0.0) & (p < 1.0)):
            raise InvalidInput(
                "every pd must lie strictly between 0 and 1", details={"field": "pd"}
            )
        if y.dtype != np.bool_ and (y.size and not np.all((y == 0) | (y == 1))):
            raise InvalidInput("defaulted must be 0 or 1", details={"field": "defaulted"})
        if not (np.issubdtype(g.dtype, np.integer) or g.size == 0):
            raise InvalidInput("grade must be an integer grade index", details={"field": "grade"})
        size = len(self.grade_names)
        if g.size and (int(g.min()) < 0 or int(g.max()) >= size):
            raise InvalidInput(
                f"grade must lie in 0..{size - 1} (one of {size} grades)",
                details={"field": "grade"},
            )
        weights = None
        if amount is not None:
            weights = _array(amount, "amount").astype(np.float64, copy=False)
            if weights.size != p.size or not np.all(np.isfinite(weights) & (weights >= 0)):
                raise InvalidInput(
                    "amount must be one non-negative number per loan", details={"field": "amount"}
                )
        self._count(p, y.astype(np.float64), g.astype(np.intp, copy=False), weights)

    def _count(
        self, p: np.ndarray, y: np.ndarray, g: np.ndarray, amount: np.ndarray | None
    ) -> None:
        size = len(self.grade_names)
        self.loans += np.bincount(g, minlength=size)
        self.defaults += np.rint(np.bincount(g, weights=y, minlength=size)).astype(np.int64)
        self.pd_sum += np.bincount(g, weights=p, minlength=size)
        if amount is not None:
            self.amounts = True
            self.amount_sum += np.bincount(g, weights=amount, minlength=size)
        variance = p * (1.0 - p)
        self.squared_error += float(np.sum((y - p) ** 2))
        self.variance += float(np.sum(variance))
        self.variance_of_error += float(np.sum((1.0 - 2.0 * p) ** 2 * variance))

    def result(
        self,
        *,
        rho: float | None = None,
        development_auc: float | None = None,
        development_grade_shares: Sequence[float] | None = None,
        sampled_from: int | None = None,
    ) -> Backtest:
        """The backtest of the loans counted so far (see :func:`backtest` for the options)."""
        if rho is not None and not 0.0 <= rho < 1.0:
            raise InvalidInput("rho must lie in [0, 1)", details={"field": "rho"})
        if development_auc is not None and not 0.0 <= development_auc <= 1.0:
            raise InvalidInput(
                "development_auc must lie in [0, 1]", details={"field": "development_auc"}
            )
        shares = _development_shares(development_grade_shares, len(self.grade_names))
        rows = int(self.loans.sum())
        if sampled_from is not None and sampled_from < rows:
            raise InvalidInput(
                "sampled_from must be at least the rows counted", details={"field": "sampled_from"}
            )
        grades = [
            GradeResult(grade=name, **_calibration(int(n), int(d), s, rho))
            for name, n, d, s in zip(
                self.grade_names, self.loans, self.defaults, self.pd_sum, strict=True
            )
        ]
        portfolio = Portfolio(
            **_calibration(rows, int(self.defaults.sum()), float(self.pd_sum.sum()), rho),
            hosmer_lemeshow=self._hosmer_lemeshow(),
            spiegelhalter=self._spiegelhalter(),
            auc=self._auc(development_auc),
            herfindahl=self._herfindahl(shares),
            psi=psi(shares, self.loans) if shares is not None and rows else None,
            heterogeneity=self._heterogeneity(),
        )
        return Backtest(
            grades=grades,
            portfolio=portfolio,
            rows=rows,
            sampled=sampled_from is not None and sampled_from > rows,
            sampled_from=sampled_from,
            rho=rho,
        )

    def _hosmer_lemeshow(self) -> HosmerLemeshow | None:
        loans = self.loans.astype(np.float64)
        mean_pd = np.divide(self.pd_sum, loans, out=np.zeros_like(loans), where=loans > 0)
        found = _stats.hosmer_lemeshow(mean_pd, self.defaults.astype(np.float64), loans)
        return (
            None if found is None else HosmerLemeshow(statistic=found[0], df=found[1], p=found[2])
        )

    def _spiegelhalter(self) -> Spiegelhalter | None:
        found = _stats.spiegelhalter(self.squared_error, self.variance, self.variance_of_error)
        return None if found is None else Spiegelhalter(z=found[0], p=found[1])

    def _auc(self, development: float | None) -> Auc:
        found = _stats.grade_auc(self.defaults, self.loans - self.defaults)
        if found is None:
            return Auc(current=None, development=development, s=None, statistic=None, p=None)
        current, s = found
        test = None if development is None else _stats.auc_decline(current, development, s)
        return Auc(
            current=current,
            development=development,
            s=s,
            statistic=None if test is None else test[0],
            p=None if test is None else test[1],
        )

    def _herfindahl(self, development: np.ndarray | None) -> Herfindahl:
        k = len(self.grade_names)
        total = int(self.loans.sum())
        if total == 0:
            return Herfindahl(index=None, hhi=None, cv=None)
        shares = self.loans / total
        cv = _stats.coefficient_of_variation(shares)
        exposure = None
        if self.amounts and self.amount_sum.sum() > 0:
            exposure_cv = _stats.coefficient_of_variation(self.amount_sum / self.amount_sum.sum())
            exposure = _stats.ecb_herfindahl(exposure_cv, k)
        found = Herfindahl(
            index=_stats.ecb_herfindahl(cv, k),
            hhi=float(np.sum(shares**2)),
            cv=cv,
            exposure_index=exposure,
        )
        if development is None:
            return found
        development_cv = _stats.coefficient_of_variation(development)
        z, p = _stats.herfindahl_test(cv, development_cv, k)
        return found.model_copy(
            update={
                "development_index": _stats.ecb_herfindahl(development_cv, k),
                "development_cv": development_cv,
                "statistic": z,
                "p": p,
            }
        )

    def _heterogeneity(self) -> list[Heterogeneity]:
        filled = [i for i in range(len(self.grade_names)) if self.loans[i] > 0]
        pairs = []
        for better, worse in itertools.pairwise(filled):
            found = _stats.two_proportion(
                int(self.defaults[better]),
                int(self.loans[better]),
                int(self.defaults[worse]),
                int(self.loans[worse]),
            )
            pairs.append(
                Heterogeneity(
                    better=self.grade_names[better],
                    worse=self.grade_names[worse],
                    z=None if found is None else found[0],
                    p=None if found is None else found[1],
                )
            )
        return pairs


def _development_shares(shares: Sequence[float] | None, size: int) -> np.ndarray | None:
    if shares is None:
        return None
    array = np.asarray(shares, dtype=np.float64)
    if array.shape != (size,) or not np.all(np.isfinite(array) & (array >= 0)) or array.sum() <= 0:
        raise InvalidInput(
            f"development_grade_shares must be {size} non-negative numbers, not all 0",
            details={"field": "development_grade_shares"},
        )
    normalised: np.ndarray = array / array.sum()
    return normalised


def _calibration(n: int, d: int, pd_sum: float, rho: float | None) -> dict[str, object]:
    if n == 0:
        return {
            "loans": 0,
            "defaults": 0,
            "default_rate": None,
            "mean_pd": None,
            "jeffreys_p": None,
            "binomial_p": None,
            "vasicek_p": None,
            "rho": None,
            "light": None,
        }
    mean_pd = pd_sum / n
    correlation = _stats.basel_retail_rho(mean_pd) if rho is None else rho
    jeffreys = _stats.jeffreys_p(mean_pd, d, n)
    return {
        "loans": n,
        "defaults": d,
        "default_rate": d / n,
        "mean_pd": mean_pd,
        "jeffreys_p": jeffreys,
        "binomial_p": _stats.binomial_p(mean_pd, d, n),
        "vasicek_p": _stats.vasicek_p(mean_pd, d, n, correlation),
        "rho": correlation,
        "light": _stats.light(jeffreys),
    }


def backtest(
    pd: np.ndarray,
    defaulted: np.ndarray,
    grade: np.ndarray,
    grade_names: Sequence[str],
    *,
    rho: float | None = None,
    development_auc: float | None = None,
    development_grade_shares: Sequence[float] | None = None,
    amount: np.ndarray | None = None,
    sampled_from: int | None = None,
) -> Backtest:
    """Backtest loans' PDs against their outcomes, per grade and for the portfolio.

    ``pd``: each loan's PD, strictly in (0, 1); ``defaulted``: 1/0 or True/False;
    ``grade``: each loan's grade index, 0 = the best, into ``grade_names`` (at least two,
    distinct); all three one-dimensional and of one length.
    ``rho``: the asset correlation of the correlated binomial test, in [0, 1); None (the
    default) takes Basel II's other-retail correlation of each grade's mean PD
    (:func:`loanrisk.validation._stats.basel_retail_rho`).
    ``development_auc``: the AUC of the grades on the development sample (the
    ``portfolio.auc.current`` of the backtest at training); with it, the ECB's AUC test.
    ``development_grade_shares``: the development sample's loans per grade (counts or shares,
    one per grade); with them, the PSI of the grade distribution and the ECB's Herfindahl test.
    ``amount``: optional exposure per loan, for the exposure-weighted Herfindahl index.
    ``sampled_from``: when the loans given are a uniform sample of a larger window, its size.

    The lights follow the Jeffreys p-value: red below 0.001, yellow below 0.05, else green.
    Raises :class:`InvalidInput` naming the field for a bad input. For more loans than fit in
    memory, feed :class:`BacktestAccumulator` in chunks: the result is the same.
    """
    accumulator = BacktestAccumulator(grade_names)
    accumulator.add(pd, defaulted, grade, amount=amount)
    return accumulator.result(
        rho=rho,
        development_auc=development_auc,
        development_grade_shares=development_grade_shares,
        sampled_from=sampled_from,
    )
