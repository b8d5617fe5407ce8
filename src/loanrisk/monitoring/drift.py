"""Drift: the population stability index (PSI) of the probability of default and the
characteristic stability index (CSI, the same formula) of each feature, for a window of the
prediction log against the version's reference profile. (The PD's entry is named
``probability``: "score" means a loan's points, :mod:`loanrisk.registry.scaling`.)

``PSI = sum over bins of (a - e) * ln(a / e)``, with ``e`` the bin's share of the training
rows and ``a`` its share of the window's loans. A share of 0 would make the logarithm
infinite: shares below :data:`EPSILON` are raised to it (in both distributions) before the
sum. The usual reading: below 0.1 stable, 0.1 to 0.25 investigate, above 0.25 a shift.

Those bands ignore how many loans the window holds, and a small window's PSI is large by
chance alone: five loans leave at least half of ten bins empty, and each empty bin adds about
``e * ln(e / EPSILON)``. So each index comes with its **chance level**: the PSI that windows of
the same size, drawn from the training shares themselves (nothing shifted), exceed
:data:`CHANCE` (5%) of the time. For a window where every bin expects at least five loans it is
the two-sample chi-square approximation of the PSI, ``chi2(1 - 0.05; B - 1) * (1/n + 1/N)``
for ``B`` bins, ``n`` window and ``N`` training loans (B. Yurdakul, *Statistical properties
of population stability index*, Western Michigan University, 2018: for small differences the
PSI is about ``sum (a - e)^2 / e``, Pearson's two-sample statistic times ``1/n + 1/N``). For a
smaller window, where that approximation fails (the floor at :data:`EPSILON` dominates), it is
a parametric bootstrap of this very formula: :data:`CHANCE_DRAWS` seeded multinomial windows
of the window's size against multinomial training samples of the training's size. The tests
hold both to windows drawn independently. An index at or below its chance level is reported
as within chance whatever its band: the window cannot tell a shift from its own noise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer, computed_field
from scipy.stats import chi2

from loanrisk.monitoring.log.personal import readable_schema
from loanrisk.monitoring.log.reader import logged_features
from loanrisk.monitoring.profile import Bins, Profile, feature_values
from loanrisk.schema import LoanSchema, validate_frame
from loanrisk.storage.problems import Problem

EPSILON = 1e-4
STABLE, SHIFT = 0.1, 0.25
#: The share of unshifted windows whose PSI exceeds the chance level.
CHANCE = 0.05
#: Windows drawn to find a small window's chance level.
CHANCE_DRAWS = 1000
#: Loans each bin must expect for the chi-square approximation of the chance level.
CHI2_MIN_EXPECTED = 5


def band(index: float) -> str:
    """``stable`` below 0.1, ``investigate`` to 0.25, ``shift`` above."""
    return "stable" if index < STABLE else "investigate" if index <= SHIFT else "shift"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two count vectors over the same bins (see the module's formula)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0
    e = np.maximum(e / e.sum(), EPSILON)
    a = np.maximum(a / a.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def chance_level(expected: np.ndarray, rows: int, *, seed: int = 0) -> float | None:
    """The PSI that a window of ``rows`` loans drawn from the shares of ``expected`` (training
    counts per bin) exceeds with probability :data:`CHANCE`. Where every bin holding training
    rows expects at least :data:`CHI2_MIN_EXPECTED` of the window's loans (Cochran's rule for
    the chi-square approximation), ``chi2(1 - CHANCE; B - 1) * (1/n + 1/N)``; otherwise the
    95th percentile of :func:`psi` over :data:`CHANCE_DRAWS` seeded multinomial draws of both
    samples, the floor at :data:`EPSILON` included. None without loans or with fewer than two
    bins holding training rows."""
    e = np.asarray(expected, dtype=np.float64)
    total = int(e.sum())
    if rows <= 0 or total <= 0 or np.count_nonzero(e) < 2:
        return None
    shares = e / total
    held = shares[shares > 0]
    if rows * held.min() >= CHI2_MIN_EXPECTED:
        return float(chi2.ppf(1 - CHANCE, len(held) - 1) * (1 / rows + 1 / total))
    rng = np.random.default_rng(seed)
    a = np.maximum(rng.multinomial(rows, shares, size=CHANCE_DRAWS) / rows, EPSILON)
    t = np.maximum(rng.multinomial(total, shares, size=CHANCE_DRAWS) / total, EPSILON)
    return float(np.quantile(np.sum((a - t) * np.log(a / t), axis=1), 1 - CHANCE))


#: A float as reports write it: six decimals.
Rounded = Annotated[float, PlainSerializer(lambda value: round(value, 6), return_type=float)]
#: A moment as reports write it: ISO 8601 with its UTC offset (``+00:00``).
Moment = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str)]


class StabilityBin(BaseModel):
    """One bin's share of the training rows (``expected``) and of the window's (``actual``)."""

    model_config = ConfigDict(frozen=True)

    bin: str
    expected: Rounded
    actual: Rounded


class Stability(BaseModel):
    """One variable's index, its band, its chance level, and the shares per bin."""

    model_config = ConfigDict(frozen=True)

    name: str
    index: Rounded
    band: str
    bins: list[StabilityBin]
    chance: Rounded | None = Field(
        None,
        description="The index that windows of this many loans exceed 5% of the time when "
        "nothing shifted (None: reports written before it was measured, or no loans).",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def within_chance(self) -> bool | None:
        """Whether the index is at or below its chance level: the window is too small to
        tell this index from sampling noise, whatever its band (None: no chance level)."""
        return None if self.chance is None else self.index <= self.chance

    @property
    def chance_only(self) -> bool:
        """Whether the band calls for a look (investigate or shift) but the index is within
        chance."""
        return bool(self.within_chance) and self.band != "stable"

    @property
    def reading(self) -> str:
        """The band, or the band marked within chance."""
        return f"{self.band} (within chance)" if self.chance_only else self.band


def _shares(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total for c in counts] if total else [0.0] * len(counts)


def _stability(name: str, bins: Bins, actual: np.ndarray) -> Stability:
    expected = np.asarray(bins.counts, dtype=np.float64)
    index = psi(expected, actual)
    shares = zip(bins.labels, _shares(expected), _shares(actual), strict=True)
    return Stability(
        name=name,
        index=index,
        band=band(index),
        bins=[StabilityBin(bin=b, expected=e, actual=a) for b, e, a in shares],
        chance=chance_level(expected, int(np.asarray(actual).sum())),
    )


class Bands(BaseModel):
    """The reading of an index, as reports state it."""

    model_config = ConfigDict(frozen=True)

    stable: str = f"< {STABLE}"
    investigate: str = f"{STABLE} to {SHIFT}"
    shift: str = f"> {SHIFT}"


class DriftReport(BaseModel):
    """PSI of the probability of default (``probability``) and CSI per feature (worst
    first) for a window of logged loans; ``model_dump(mode="json")`` gives the report the API,
    the CLI and the stored file hold (reports written before the rename, whose PSI entry was
    ``score``, still read)."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    since: Moment | None
    until: Moment | None
    rows: int
    #: The rows the shares come from, when a sample of ``rows`` (None: all of them).
    sampled: int | None = None
    rejected: int
    bands: Bands = Bands()
    epsilon: float = EPSILON
    probability: Stability | None = Field(
        validation_alias=AliasChoices("probability", "score"),
        description="The PSI of the probability of default (None: no loans in the window).",
    )
    features: list[Stability] = []
    left_out: list[str] = Field(
        default_factory=list,
        description="Features the schema declares personal (pii: true): the log holds them "
        "hashed or not at all, so their drift is not measured.",
    )
    #: Stored items skipped (unreadable log files, a corrupt profile): the report is of
    #: the rest.
    problems: list[Problem] = []


def drift_report(
    log: pd.DataFrame,
    profile: Profile,
    schema: LoanSchema,
    *,
    model: str,
    version: int,
    since: datetime | None = None,
    until: datetime | None = None,
    rows: int | None = None,
    problems: list[Problem] | None = None,
) -> DriftReport:
    """The drift of the logged loans ``log`` (rows of
    :func:`~loanrisk.monitoring.log.reader.read_log` for one version) against ``profile``;
    ``rows``: how many loans ``log`` is a sample of. Loans are read back through the version's
    schema, as they were scored; the few that no longer validate are counted in ``rejected``
    (among those read). Personal features (``pii: true``) are logged hashed or dropped: they
    are read as ignored columns and named in ``left_out``."""
    total = len(log) if rows is None else rows
    rejected, stability, features = 0, None, []
    readable, left_out = readable_schema(schema)
    if not log.empty and readable is not None:
        loans = validate_frame(
            logged_features(log["features"]), schema=readable, mode="score", on_error="drop"
        )
        rejected = len(log) - len(loans.frame)
        features = [
            _stability(name, bins, bins.count(feature_values(loans.frame, name)))
            for name, bins in profile.features.items()
            if name in loans.frame.columns and name not in left_out
        ]
        features.sort(key=lambda s: s.index, reverse=True)
    if not log.empty:
        probability = log["probability"].to_numpy(dtype=np.float64)
        stability = _stability(
            "probability", profile.probability, profile.probability.count(probability)
        )
    return DriftReport(
        model=model,
        version=version,
        since=since,
        until=until,
        rows=total,
        sampled=len(log) if total > len(log) else None,
        rejected=rejected,
        probability=stability,
        features=features,
        problems=problems or [],
        left_out=left_out,
    )
