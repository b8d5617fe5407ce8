"""The scorecard kind at work: raw values -> bin index -> points -> score -> PD.

The input a scorecard scores is one bin index per attribute (:meth:`Scorecard.encode_record`
for one loan, in plain Python; :class:`ScorecardEncoder` for a frame, in numpy). The score is
the base points plus each bin's whole points, and the PD is ``scaling.probability_of(score)``
(:class:`ScorecardBackend`), so the score every result carries
(``scaling.score_of(probability)``) is the table's sum exactly.

Reasons follow the classic scorecard method (Siddiqi, 2006, ch. 12; the US adverse-action
practice it describes): per attribute, the points the loan's bin scores below the attribute's
best bin; the attributes that lost the most points, largest first (ties in attribute order),
each with the version's reason catalog entry for the loan's value (as for XGBoost; a
declared special code is stated by its meaning). A reason's ``points`` are its bin's points
in the table, and its ``contribution`` the regression's term (coefficient x WoE, log-odds of
default), so, as for XGBoost, ``points`` is about ``-factor * contribution`` (whole points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loanrisk.inference.kinds import Runtime, SpecialCodes
from loanrisk.inference.reasons import reason_of
from loanrisk.inference.records import CleanRecord, ReasonValues, SpecialCode
from loanrisk.inference.results import Reason
from loanrisk.registry.models import LoadedModel
from loanrisk.registry.reasons import ReasonCatalog, derived_catalog
from loanrisk.registry.scorecard import Characteristic, Scorecard
from loanrisk.schema import LoanSchema, Validated

#: The backend name a scorecard version's results and metrics carry.
BACKEND_NAME = "scorecard"


def feature_values(column: pd.Series, *, numeric: bool) -> np.ndarray:
    """A validated column as :meth:`Characteristic.indices` takes it: floats with NaN for
    missing, or objects with None for missing."""
    if numeric:
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return column.astype(object).where(column.notna(), None).to_numpy()


def frame_bins(
    scorecard: Scorecard, frame: pd.DataFrame, special: pd.DataFrame | None = None
) -> np.ndarray:
    """The bins of a frame of validated loans (float32, rows x attributes): what a stored
    split or a validated batch holds, where special codes are missing values. ``special``
    (aligned with ``frame``: a split's
    :meth:`~loanrisk.data.datasets.DatasetCatalogue.load_special`) names the code each loan
    held, which takes its code's bin (the missing bin where the scorecard has none)."""
    out = np.empty((len(frame), len(scorecard.characteristics)), dtype=np.float32)
    held = special if special is not None else pd.DataFrame()
    for j, c in enumerate(scorecard.characteristics):
        out[:, j] = c.indices(feature_values(frame[c.name], numeric=c.type == "numeric"))
        codes = held.get(c.name)
        if codes is not None:
            bins = {code: c.index_of(None, code) for code in codes.cat.categories}
            for code, index in bins.items():
                out[(codes == code).to_numpy(dtype=bool, na_value=False), j] = index
    return out


@dataclass(frozen=True)
class ScorecardEncoder:
    """Loans as bin indices, one column per attribute of the scorecard (float32)."""

    scorecard: Scorecard

    def encode_record(self, clean: CleanRecord) -> list[float]:
        special = {k: v.code for k, v in clean.special.items()}
        return self.scorecard.encode_record(clean.values, special)

    def encode_frame(self, loans: Validated, special: SpecialCodes) -> np.ndarray:
        out = frame_bins(self.scorecard, loans.frame)
        codes: Mapping[str, Mapping[int, SpecialCode]] = (
            special() if any(c.special_index for c in self.scorecard.characteristics) else {}
        )
        for j, c in enumerate(self.scorecard.characteristics):
            for i, code in codes.get(c.name, {}).items():
                out[i, j] = c.index_of(None, code.code)
        return out


class ScorecardBackend:
    """Bin indices -> probability of default, through the points table."""

    name = BACKEND_NAME

    def __init__(self, scorecard: Scorecard) -> None:
        self.scorecard = scorecard

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 1:  # one loan: plain Python beats numpy's per-call cost
            return np.array([self.scorecard.probability_of_row(features[0].tolist())])
        return self.scorecard.probabilities(features)


def _above_best(c: Characteristic, index: int) -> bool | None:
    """Whether a loan's bin of a numeric attribute lies above its best regular bin (the
    direction a reason states); None for other attributes."""
    if c.type != "numeric" or index >= c.regular:
        return None
    best = max(range(c.regular), key=lambda i: c.bins[i].points)
    return index > best


def scorecard_reasons(
    scorecard: Scorecard,
    bins: np.ndarray,
    values: Sequence[ReasonValues],
    *,
    top_k: int = 4,
    schema: LoanSchema,
    catalog: ReasonCatalog | None = None,
) -> list[list[Reason]]:
    """Per row of bin indices ``bins`` (raw ``values``), up to ``top_k`` attributes that lost
    points against their best bin, the most first (none for an attribute in its best bin)."""
    catalog = catalog or derived_catalog(schema)
    entries, by_value = catalog.lookup(), catalog.value_lookup()
    characteristics = scorecard.characteristics
    index = np.asarray(bins, dtype=np.int64)
    lost, points = scorecard.points_lost(index), scorecard.points(index)
    out: list[list[Reason]] = []
    for r, record in enumerate(values):
        order = np.argsort(-lost[r], kind="stable")
        reasons: list[Reason] = []
        for j in [int(j) for j in order if lost[r, j] > 0][:top_k]:
            c = characteristics[j]
            raw = record.get(c.name)
            special, value = (raw, None) if isinstance(raw, SpecialCode) else (None, raw)
            way, entry = reason_of(
                schema, entries, by_value, c.name, value, _above_best(c, int(index[r, j]))
            )
            title = schema.column(c.name).label_text
            if special is not None:
                statement = f"{title}: {special.meaning}"
            else:
                statement = entry.says(value) if entry else f"{c.name} raised the risk"
            woe = c.bins[int(index[r, j])].woe
            reasons.append(
                Reason(
                    feature=c.name,
                    name=title,
                    value=special.code if special is not None else value,
                    direction="special" if special is not None else way,
                    code=entry.code if entry else None,
                    reason=statement,
                    contribution=round(c.coefficient * woe, 6),
                    points=float(points[r, j]),
                )
            )
        out.append(reasons)
    return out


def missing_treatment(scorecard: Scorecard) -> dict[str, str]:
    """What a missing value of each attribute is scored as (the words after "missing, ")."""
    return {
        c.name: f"scored in the missing bin ({c.bins[c.missing_index].points} points)"
        for c in scorecard.characteristics
    }


def scorecard_runtime(model: LoadedModel, scorecard: Scorecard) -> Runtime:
    """The scorecard kind's runtime for ``model``."""
    schema, catalog = model.schema, model.reasons

    def explain(
        features: np.ndarray, values: Sequence[ReasonValues], *, top_k: int
    ) -> list[list[Reason]]:
        return scorecard_reasons(
            scorecard, features, values, top_k=top_k, schema=schema, catalog=catalog
        )

    return Runtime(
        ScorecardEncoder(scorecard),
        ScorecardBackend(scorecard),
        None,
        explain,
        missing_as=missing_treatment(scorecard),
    )
