"""Reference profiles: how a model version's training data fell into bins, per feature and
for the probability of default, stored in the version (``profile.json``) so later loans can
be compared.

Numbers (and booleans) get decile edges of the training values (fewer where values repeat)
and a bin of their own for missing values; categories get one bin each, an ``other`` bin for
values the schema does not list and a missing bin; the probability gets decile edges of the
probabilities the version gives a sample of its training rows. Bins are right-closed
intervals: ``(-inf, e1], (e1, e2], ..., (e_k, inf)``. ``points`` holds the same rows' scores
(whole points of the version's scaling) over the system-stability bins of
:mod:`.score_bins` (None in profiles written before they were recorded: the points report
then reads the probability's bins through the scaling, :mod:`.points`).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.monitoring.score_bins import ScoreBins, score_bins
from loanrisk.registry.calibration import Calibration
from loanrisk.registry.scaling import Scaling
from loanrisk.schema import LoanSchema

FORMAT: Literal["loanrisk.profile"] = "loanrisk.profile"
MISSING = "(missing)"
OTHER = "(other)"
#: Training rows scored for the score's bins (a seeded sample beyond this).
SCORE_SAMPLE_ROWS = 100_000


class Bins(BaseModel):
    """One variable's bins and the training counts in each (the last count: missing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["numeric", "categorical"]
    edges: list[float] = Field(default_factory=list, description="Numeric: inner edges.")
    categories: list[str] = Field(default_factory=list, description="Categorical: the values.")
    counts: list[int] = Field(description="Per bin, then other (categorical), then missing.")

    @property
    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [*self.categories, OTHER, MISSING]
        bounds = ["-inf", *(f"{e:g}" for e in self.edges), "inf"]
        return [f"({a}, {b}]" for a, b in itertools.pairwise(bounds)] + [MISSING]

    def count(self, values: Any) -> np.ndarray:
        """Counts of ``values`` in these bins (numbers as floats with NaN for missing;
        categories as text with None/NaN for missing)."""
        if self.kind == "numeric":
            numbers = np.asarray(values, dtype=np.float64)
            missing = np.isnan(numbers)
            index = np.searchsorted(np.asarray(self.edges), numbers[~missing], side="left")
            numeric: np.ndarray = np.bincount(index, minlength=len(self.edges) + 1)
            return np.append(numeric, int(missing.sum()))
        text = pd.Series(values, dtype="string")
        missing = text.isna().to_numpy()
        present = text[~missing].str.upper()
        known = {c: i for i, c in enumerate(self.categories)}
        codes = present.map(known).fillna(len(self.categories)).to_numpy(dtype=np.int64)
        counts: np.ndarray = np.bincount(codes, minlength=len(self.categories) + 1)
        return np.append(counts, int(missing.sum()))


def numeric_bins(values: np.ndarray, *, bins: int = 10) -> Bins:
    """Decile (or fewer, where values repeat) edges of ``values`` and their counts."""
    numbers = np.asarray(values, dtype=np.float64)
    present = numbers[~np.isnan(numbers)]
    edges: list[float] = []
    if present.size:
        quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
        edges = [float(e) for e in np.unique(quantiles)]
    empty = Bins(kind="numeric", edges=edges, counts=[0] * (len(edges) + 2))
    return empty.model_copy(update={"counts": [int(c) for c in empty.count(numbers)]})


def categorical_bins(values: Any, categories: list[str]) -> Bins:
    empty = Bins(kind="categorical", categories=categories, counts=[0] * (len(categories) + 2))
    return empty.model_copy(update={"counts": [int(c) for c in empty.count(values)]})


class Profile(BaseModel):
    """A version's reference profile: the bins of each feature and of the probability of
    default (read from ``score_rows`` and ``score`` too, their names before "score" meant
    points)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["loanrisk.profile"] = FORMAT
    version: Literal[1] = 1
    rows: int = Field(description="Training rows the feature bins were counted on.")
    probability_rows: int = Field(
        description="Training rows scored for the probability's bins.",
        validation_alias=AliasChoices("probability_rows", "score_rows"),
    )
    features: dict[str, Bins]
    probability: Bins = Field(validation_alias=AliasChoices("probability", "score"))
    points: ScoreBins | None = Field(
        None, description="The scores (points) over the system-stability bins (None: older)."
    )


def feature_values(frame: pd.DataFrame, name: str) -> Any:
    """A validated column as :meth:`Bins.count` takes it."""
    column = frame[name]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype("string")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def build_profile(
    frame: pd.DataFrame,
    schema: LoanSchema,
    probability: np.ndarray,
    *,
    scaling: Scaling | None = None,
) -> Profile:
    """The profile of validated training rows ``frame`` and the probabilities of (a sample
    of) them; with the version's ``scaling`` (and ``frame`` holding the label), also their
    scores over the system-stability bins (``points``)."""
    features = {}
    for column in schema.features:
        values = feature_values(frame, column.name)
        if column.type in ("categorical", "ordinal"):
            features[column.name] = categorical_bins(values, list(column.categories or ()))
        else:
            features[column.name] = numeric_bins(values)
    return Profile(
        rows=len(frame),
        probability_rows=len(probability),
        features=features,
        probability=numeric_bins(probability),
        points=(
            score_bins(scaling.scores_of(probability), frame[schema.label_name].to_numpy())
            if scaling is not None
            and schema.label_name in frame.columns
            and len(frame) == len(probability)
            else None
        ),
    )


def sample_rows(total: int, *, seed: int = 0) -> np.ndarray | None:
    """The ascending positions, among ``total`` rows, of :func:`profile_sample`'s rows
    (None: all of them)."""
    if total <= SCORE_SAMPLE_ROWS:
        return None
    rows = np.random.default_rng([seed, 2]).choice(total, SCORE_SAMPLE_ROWS, replace=False)
    return np.sort(rows)


def profile_sample(frame: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of at most :data:`SCORE_SAMPLE_ROWS` rows (all of them, below that):
    what a profile is counted on. A training keeps it before it lets its rows go."""
    rows = sample_rows(len(frame), seed=seed)
    return frame if rows is None else frame.take(rows).reset_index(drop=True)


def profile_of(
    frame: pd.DataFrame,
    schema: LoanSchema,
    spec: FeatureSpec,
    booster: xgb.Booster,
    *,
    seed: int = 0,
    nthread: int = 1,
    calibration: Calibration | None = None,
    scaling: Scaling | None = None,
) -> Profile:
    """The profile of a version: :func:`profile_sample` of its validated training rows,
    binned, and scored by ``booster`` (then ``calibration``) for the score's bins (and, with
    the version's ``scaling``, the points' bins)."""
    frame = profile_sample(frame, seed=seed)
    features = FeatureTransformer(spec).transform(frame, dtype=np.float32)
    probability = booster.predict(xgb.DMatrix(features, nthread=nthread))
    if calibration is not None:
        probability = calibration.apply(probability)
    return build_profile(frame, schema, probability, scaling=scaling)
