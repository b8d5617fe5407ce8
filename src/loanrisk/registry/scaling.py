"""A scorecard scaling: how a probability of default becomes points.

A version records its scaling (``scaling.json``, hashed in its manifest like its other
files); every loan it scores carries its ``score`` in points. The scaling is the classic
"points to double the odds" one (Siddiqi, *Credit Risk Scorecards*, 2006, ch. 9): with the
good:bad odds ``(1 - pd) / pd``,

    score  = offset + factor * ln(odds)
    factor = pdo / ln 2
    offset = points - factor * ln(reference_odds)

so a loan at the reference odds scores ``points``, and every ``pdo`` points more doubles its
odds of being good. A higher score is a lower risk.

Scores are whole points: the exact value rounded half to even (``numpy.rint``), the way a
policy cut-off ("620") is written. A PD of 0 or 1 is clipped to ``[PD_FLOOR, 1 - PD_FLOOR]``
first, so every score is finite. :meth:`Scaling.points_of_log_odds` turns a contribution to the
log-odds of default into points (``-factor * contribution``, unrounded), which is how a
loan's per-attribute points are read from the model's log-odds contributions.

The default (:data:`DEFAULT_SCALING`) is 600 points at good:bad odds of 50:1 and 20 points to
double the odds; docs/scorecard.md sets it beside the conventions of other tools.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # numpy is loaded when arrays are scaled, not with the training request
    import numpy as np

#: The smallest PD (and 1 minus the largest) a score is computed from.
PD_FLOOR = 1e-12


class Scaling(BaseModel):
    """Points at reference odds, the odds (good:bad) and the points to double them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: float = Field(
        600.0, ge=0, le=100_000, allow_inf_nan=False, description="Points at the reference odds."
    )
    odds: float = Field(
        50.0,
        gt=0,
        le=1e9,
        allow_inf_nan=False,
        description="The reference odds, good:bad (50 means 50 goods to 1 bad: a PD of 1/51).",
    )
    pdo: float = Field(
        20.0, gt=0, le=10_000, allow_inf_nan=False, description="Points to double the odds."
    )

    @property
    def factor(self) -> float:
        """Points per unit of log-odds: ``pdo / ln 2``."""
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        """The score at even odds (PD 0.5): ``points - factor * ln(odds)``."""
        return self.points - self.factor * math.log(self.odds)

    def exact_scores(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's score before rounding (float64)."""
        import numpy as np

        pd = np.clip(np.asarray(probability, dtype=np.float64), PD_FLOOR, 1 - PD_FLOOR)
        exact: np.ndarray = self.offset + self.factor * (np.log1p(-pd) - np.log(pd))
        return exact

    def scores_of(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's score in whole points (int64), rounded half to even."""
        import numpy as np

        scores: np.ndarray = np.rint(self.exact_scores(probability)).astype(np.int64)
        return scores

    def score_of(self, probability: float) -> int:
        """One PD's score in whole points (as :meth:`scores_of`)."""
        pd = min(max(float(probability), PD_FLOOR), 1 - PD_FLOOR)
        return round(self.offset + self.factor * (math.log1p(-pd) - math.log(pd)))

    def scorer(self) -> Callable[[float], int]:
        """:meth:`score_of` with this scaling's constants bound: the same arithmetic, so the
        same points for every PD, at a fifth of the cost per call (the per-loan path)."""
        offset, factor = self.offset, self.factor
        low, high = PD_FLOOR, 1 - PD_FLOOR
        log, log1p = math.log, math.log1p

        def score(probability: float) -> int:
            pd = probability if low <= probability <= high else min(max(probability, low), high)
            return round(offset + factor * (log1p(-pd) - log(pd)))

        return score

    def probability_of(self, score: float) -> float:
        """The PD a score stands for (the inverse of the exact score)."""
        return 1.0 / (1.0 + math.exp((score - self.offset) / self.factor))

    def points_of_log_odds(self, contribution: np.ndarray) -> np.ndarray:
        """Contributions to the log-odds of default as points (unrounded): ``-factor * c``."""
        import numpy as np

        points: np.ndarray = -self.factor * np.asarray(contribution, dtype=np.float64)
        return points

    def to_json(self) -> str:
        """The scaling as a version stores it (``scaling.json``)."""
        return self.model_dump_json(indent=2) + "\n"


#: The default scaling: 600 points at 50:1 good:bad, 20 points to double the odds.
DEFAULT_SCALING = Scaling()


class ScalingOptions(BaseModel):
    """A scaling as a training asks for one: each field not given (None) is taken from the
    parent's scaling (a continued training), else from :data:`DEFAULT_SCALING`
    (:meth:`over`). The bounds are :class:`Scaling`'s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: float | None = Field(
        None,
        ge=0,
        le=100_000,
        allow_inf_nan=False,
        description="Points at the reference odds, in [0, 100000].",
    )
    odds: float | None = Field(
        None,
        gt=0,
        le=1e9,
        allow_inf_nan=False,
        description="The reference odds, good:bad, in (0, 1e9] (50: a PD of 1/51).",
    )
    pdo: float | None = Field(
        None,
        gt=0,
        le=10_000,
        allow_inf_nan=False,
        description="Points to double the odds, in (0, 10000].",
    )

    def over(self, base: Scaling) -> Scaling:
        """``base`` with the fields given here in its place."""
        return base.model_copy(update=self.model_dump(exclude_none=True))
