"""A scorecard: the artefact of a ``kind: scorecard`` model version (``scorecard.json``).

A WoE logistic scorecard (Siddiqi, *Credit Risk Scorecards*, 2006, ch. 6 and 9): each
attribute's values fall into bins (fitted on the training split by :mod:`loanrisk.binning`);
each bin has its weight of evidence (WoE); a logistic regression on the WoE values gives one
coefficient per attribute and an intercept; the version's scaling (:mod:`.scaling`) turns the
log-odds of default into points:

    base points = rint(offset - factor * intercept)
    bin points  = rint(-factor * coefficient * woe)

(``offset`` and ``factor`` as :class:`~loanrisk.registry.scaling.Scaling` defines them). The
points are whole, rounded once when the table is built; a loan's score is the base points
plus its bins' points, and the probability of default the scorecard serves is
``scaling.probability_of(score)``, so ``scaling.score_of(pd) == score`` holds exactly (scores
are kept within the range a PD in ``[PD_FLOOR, 1 - PD_FLOOR]`` can stand for).

Bins of an attribute, in order: its regular bins (numbers: the intervals between ``edges``,
each closed on the left, ``[e_i, e_i+1)``, as optbinning splits; categories: groups of
declared categories), one bin for each declared special code, and the missing bin, which also
takes a category the training data never had. JSON only: no pickle, nothing executable.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.registry.scaling import PD_FLOOR, Scaling

FORMAT: Literal["loanrisk.scorecard"] = "loanrisk.scorecard"
BinKind = Literal["range", "categories", "special", "missing"]


def special_keys(code: float | str) -> list[float | str]:
    """The keys a special code as sent may be declared under: its text upper-case and, when
    it reads as a number, the number (``"-1"``, ``-1`` and ``-1.0`` are one code)."""
    if isinstance(code, str):
        text = code.strip().upper()
        try:
            return [text, float(text)]
        except ValueError:
            return [text]
    number = float(code)
    return [number, str(int(number)) if number.is_integer() else repr(number)]


class ScorecardBin(BaseModel):
    """One bin of an attribute: what falls into it, its training counts, WoE and points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BinKind
    label: str = Field(description="The bin as a reader sees it: [0, 2.5), {RENT, OTHER}, ...")
    lower: float | None = Field(None, description="range: inclusive lower edge (None: -inf).")
    upper: float | None = Field(None, description="range: exclusive upper edge (None: +inf).")
    categories: list[str] = Field(default_factory=list, description="categories: the group.")
    code: float | str | None = Field(None, description="special: the declared code.")
    count: int = Field(ge=0, description="Training rows in the bin.")
    events: int = Field(ge=0, description="Training defaults in the bin.")
    woe: float = Field(description="Weight of evidence, as the binning engine gives it.")
    points: int = Field(description="Whole points a loan in this bin scores.")


class Characteristic(BaseModel):
    """One attribute of the scorecard: its bins and its coefficient on their WoE."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["numeric", "categorical"]
    coefficient: float = Field(description="The regression's coefficient on the WoE.")
    edges: list[float] = Field(
        default_factory=list, description="numeric: the inner split points, ascending."
    )
    bins: list[ScorecardBin] = Field(min_length=1)
    iv: float | None = Field(None, description="The attribute's information value (training).")

    @cached_property
    def regular(self) -> int:
        """How many regular bins come first."""
        return sum(b.kind in ("range", "categories") for b in self.bins)

    @cached_property
    def missing_index(self) -> int:
        return next(i for i, b in enumerate(self.bins) if b.kind == "missing")

    @cached_property
    def category_index(self) -> dict[str, int]:
        """Each category's bin (upper-case): the groups' categories, and each text special
        code's own bin (a code declared ``treat: category`` arrives as a category value)."""
        index = {
            key: i
            for i, b in enumerate(self.bins)
            if b.kind == "special" and b.code is not None
            for key in special_keys(b.code)
            if isinstance(key, str)
        }
        index.update({c: i for i, b in enumerate(self.bins) for c in b.categories})
        return index

    @cached_property
    def special_index(self) -> dict[float | str, int]:
        """Each declared special code's bin (numbers as floats, text upper-case)."""
        out: dict[float | str, int] = {}
        for i, b in enumerate(self.bins):
            if b.kind == "special" and b.code is not None:
                key = b.code if isinstance(b.code, str) else float(b.code)
                out[key.upper() if isinstance(key, str) else key] = i
        return out

    @cached_property
    def points_table(self) -> np.ndarray:
        return np.array([b.points for b in self.bins], dtype=np.int64)

    @cached_property
    def best_points(self) -> int:
        """The most points any bin of the attribute gives (reasons count points lost from it)."""
        return max(b.points for b in self.bins)

    def index_of(self, value: float | str | None, special: float | str | None = None) -> int:
        """The bin of one cleaned value (None: missing; ``special``: the declared special code
        the loan held, its value then being None)."""
        if special is not None:
            for key in special_keys(special):
                found = self.special_index.get(key)
                if found is not None:
                    return found
        if value is None:
            return self.missing_index
        if self.type == "numeric":
            return bisect.bisect_right(self.edges, float(value))
        return self.category_index.get(str(value).upper(), self.missing_index)

    def indices(self, values: np.ndarray | Sequence[object]) -> np.ndarray:
        """The bins of many values (numbers: float with NaN for missing; categories: text or
        None), int64; special codes are set by the caller (:meth:`Scorecard.encode`)."""
        if self.type == "numeric":
            numbers = np.asarray(values, dtype=np.float64)
            index = np.searchsorted(np.asarray(self.edges, dtype=np.float64), numbers, "right")
            index[np.isnan(numbers)] = self.missing_index
            return index.astype(np.int64)
        lookup, missing = self.category_index, self.missing_index
        return np.fromiter(
            (
                lookup.get(str(v).upper(), missing) if v is not None and v == v else missing
                for v in values
            ),
            dtype=np.int64,
            count=len(values),
        )


class Scorecard(BaseModel):
    """A scorecard version's artefact: scaling, regression, and each attribute's points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["loanrisk.scorecard"] = FORMAT
    version: Literal[1] = 1
    scaling: Scaling
    intercept: float = Field(description="The regression's intercept (log-odds of default).")
    base_points: int = Field(description="Whole points every loan starts from.")
    regularisation: dict[str, float | str] = Field(
        default_factory=dict, description="The regression's penalty, as sklearn was given it."
    )
    characteristics: list[Characteristic] = Field(min_length=1)

    @cached_property
    def by_name(self) -> dict[str, Characteristic]:
        return {c.name: c for c in self.characteristics}

    @cached_property
    def _offsets(self) -> np.ndarray:
        sizes = [len(c.bins) for c in self.characteristics]
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @cached_property
    def _flat_points(self) -> np.ndarray:
        return np.concatenate([c.points_table for c in self.characteristics])

    @cached_property
    def score_range(self) -> tuple[int, int]:
        """The lowest and highest score served: what a PD in ``[PD_FLOOR, 1 - PD_FLOOR]``
        stands for, so every served score equals ``scaling.score_of(pd)``."""
        s = self.scaling
        low = s.offset + s.factor * (math.log(PD_FLOOR) - math.log1p(-PD_FLOOR))
        return math.ceil(low), math.floor(2 * s.offset - low)

    def encode_record(
        self, values: Mapping[str, float | str | None], special: Mapping[str, float | str]
    ) -> list[float]:
        """One cleaned loan's bin per attribute (in :attr:`characteristics` order)."""
        return [
            float(c.index_of(values.get(c.name), special.get(c.name))) for c in self.characteristics
        ]

    def scores(self, bins: np.ndarray) -> np.ndarray:
        """The score (int64) of each row of bin indices (``n x attributes``)."""
        index = np.asarray(bins, dtype=np.int64) + self._offsets
        total = self.base_points + self._flat_points[index].sum(axis=1)
        low, high = self.score_range
        scores: np.ndarray = np.clip(total, low, high).astype(np.int64)
        return scores

    @cached_property
    def _probability_table(self) -> np.ndarray:
        """``scaling.probability_of`` of every score in :attr:`score_range`, in order."""
        low, high = self.score_range
        return np.array([self.scaling.probability_of(s) for s in range(low, high + 1)])

    def probabilities(self, bins: np.ndarray) -> np.ndarray:
        """The PD each row of bin indices stands for: ``scaling.probability_of(score)``,
        exactly (a lookup of the scaling's own values)."""
        out: np.ndarray = self._probability_table[self.scores(bins) - self.score_range[0]]
        return out

    @cached_property
    def _plain_tables(self) -> list[list[int]]:
        return [[b.points for b in c.bins] for c in self.characteristics]

    @cached_property
    def _plain_probabilities(self) -> list[float]:
        return [float(p) for p in self._probability_table]

    def probability_of_row(self, bins: Sequence[float]) -> float:
        """:meth:`probabilities` of one row, in plain Python (one loan: no numpy call)."""
        total = self.base_points
        for table, index in zip(self._plain_tables, bins, strict=True):
            total += table[int(index)]
        low, high = self.score_range
        return self._plain_probabilities[min(max(total, low), high) - low]

    def points(self, bins: np.ndarray) -> np.ndarray:
        """Each row's points per attribute (int64, ``n x attributes``)."""
        index = np.asarray(bins, dtype=np.int64) + self._offsets
        table: np.ndarray = self._flat_points[index]
        return table

    def points_lost(self, bins: np.ndarray) -> np.ndarray:
        """Per row and attribute, the points below the attribute's best bin (int64, >= 0)."""
        best = np.array([c.best_points for c in self.characteristics], dtype=np.int64)
        lost: np.ndarray = best - self.points(bins)
        return lost

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"
