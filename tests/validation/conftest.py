"""Shared fixtures: a seeded portfolio graded on a six-grade scale, its outcomes drawn from the
PDs, and a second grading of the same loans (a migration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

#: The fixture's scale: upper PD bounds of grades A..E; F takes the rest.
EDGES = np.array([0.01, 0.02, 0.05, 0.1, 0.2])
GRADES = ["A", "B", "C", "D", "E", "F"]


@dataclass(frozen=True)
class Portfolio:
    pd: np.ndarray
    defaulted: np.ndarray
    grade: np.ndarray
    amount: np.ndarray
    later: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The loans as meliora reads them (ratings are the grade indices, best first)."""
        return pd.DataFrame(
            {
                "ratings": self.grade,
                "default_flag": self.defaulted,
                "predicted_pd": self.pd,
                "period_1_ratings": self.grade,
                "period_2_ratings": self.later,
            }
        )


def grade_of(pd_: np.ndarray) -> np.ndarray:
    grades: np.ndarray = np.searchsorted(EDGES, pd_, side="right")
    return grades


def make_portfolio(seed: int, size: int) -> Portfolio:
    rng = np.random.default_rng(seed)
    pd_ = np.clip(rng.beta(1.0, 15.0, size), 1e-4, 0.9)
    grade = grade_of(pd_)
    # A later grading: most loans keep their grade, some move one or two grades.
    move = rng.choice([-2, -1, 0, 1, 2], size=size, p=[0.03, 0.1, 0.74, 0.1, 0.03])
    return Portfolio(
        pd=pd_,
        defaulted=(rng.random(size) < pd_).astype(np.int64),
        grade=grade,
        amount=rng.lognormal(9.0, 1.0, size),
        later=np.clip(grade + move, 0, len(GRADES) - 1),
    )


@pytest.fixture(scope="session")
def loans() -> Portfolio:
    return make_portfolio(seed=7, size=12_000)
