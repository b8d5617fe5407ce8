"""The decision policy: the threshold that labels a loan a default and the risk bands it
falls in, recorded with each model version, and which one a scorer applies.

A version records the policy it was trained with: the training's options, and for those not
given the order below, with the parent's policy in the version's place
(:func:`loanrisk.training.policy.training_policy`). At serve time each of its two parts, the
threshold and the bands, comes from, in order:

1. the setting, when it is set explicitly (``LOANRISK_THRESHOLD``; ``LOANRISK_BAND_CUTOFFS``
   or ``LOANRISK_BAND_NAMES``, which go together: setting either applies the settings'
   cut-offs and names both): an operator's override of every version;
2. the version's recorded policy;
3. the settings' values (their defaults): versions published before policies were recorded.

:func:`served_policy` applies that order and says where each part came from.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loanrisk.errors import InvalidInput
from loanrisk.settings import Settings

DEFAULT_THRESHOLD = 0.5
DEFAULT_BAND_CUTOFFS = (0.2, 0.5)
DEFAULT_BAND_NAMES = ("low", "medium", "high")
#: Most bands a policy may have (a rating scale, not a lookup table).
MAX_BANDS = 20
#: Longest band name: it is written into every scored row.
MAX_BAND_NAME = 40

#: Where a part of a served policy came from: the explicitly set setting, the version's
#: recorded policy, or the settings' default (a version without a policy), or the caller.
PolicySource = Literal["setting", "version", "default", "given"]


def policy_problem(
    threshold: float, band_cutoffs: Sequence[float], band_names: Sequence[str]
) -> tuple[str, str] | None:
    """The first thing wrong with a policy as ``(field, message)``, or None."""
    if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
        return "threshold", f"threshold {threshold!r} is not a probability in (0, 1)"
    if len(band_cutoffs) > MAX_BANDS - 1:
        return "band_cutoffs", f"{len(band_cutoffs)} band cut-offs: at most {MAX_BANDS - 1}"
    for cutoff in band_cutoffs:
        if not (math.isfinite(cutoff) and 0.0 < cutoff < 1.0):
            return "band_cutoffs", f"band cut-off {cutoff!r} is not a probability in (0, 1)"
    for low, high in itertools.pairwise(band_cutoffs):
        if not low < high:
            return "band_cutoffs", f"band cut-offs must increase: {low!r} then {high!r}"
    if len(band_names) != len(band_cutoffs) + 1:
        return "band_names", (
            f"{len(band_cutoffs)} band cut-off(s) make {len(band_cutoffs) + 1} bands: give "
            f"{len(band_cutoffs) + 1} band names, not {len(band_names)}"
        )
    for name in band_names:
        if not name.strip() or len(name) > MAX_BAND_NAME or not name.isprintable():
            return "band_names", (
                f"band name {name[: MAX_BAND_NAME + 1]!r}: printable text of 1 to "
                f"{MAX_BAND_NAME} characters"
            )
    if len(set(band_names)) != len(band_names):
        return "band_names", "band names must differ from one another"
    return None


class DecisionPolicy(BaseModel):
    """A loan is labelled default when its probability of default is over ``threshold``;
    its band is ``band_names[i]`` below ``band_cutoffs[i]`` (the last name at or above the
    last cut-off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(
        DEFAULT_THRESHOLD, description="Label = probability of default > threshold."
    )
    band_cutoffs: tuple[float, ...] = Field(
        DEFAULT_BAND_CUTOFFS, description="Risk band cut-offs, increasing, each in (0, 1)."
    )
    band_names: tuple[str, ...] = Field(
        DEFAULT_BAND_NAMES, description="Risk band names, one more than the cut-offs."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DecisionPolicy:
        problem = policy_problem(self.threshold, self.band_cutoffs, self.band_names)
        if problem is not None:
            raise ValueError(problem[1])
        return self

    @classmethod
    def of_settings(cls, settings: Settings) -> DecisionPolicy:
        """The settings' policy (:class:`InvalidInput` naming the setting when it is not one)."""
        return decision_policy(settings.threshold, settings.band_cutoffs, settings.band_names)


def decision_policy(
    threshold: float, band_cutoffs: Sequence[float], band_names: Sequence[str]
) -> DecisionPolicy:
    """A policy from values a client gave; :class:`InvalidInput` naming the bad field
    (``threshold``, ``band_cutoffs`` or ``band_names``) otherwise."""
    problem = policy_problem(threshold, band_cutoffs, band_names)
    if problem is not None:
        field, message = problem
        raise InvalidInput(message, details={"field": field})
    return DecisionPolicy(
        threshold=threshold, band_cutoffs=tuple(band_cutoffs), band_names=tuple(band_names)
    )


@dataclass(frozen=True)
class ServedPolicy:
    """The policy a scorer applies and where each of its parts came from."""

    policy: DecisionPolicy
    threshold_source: PolicySource
    bands_source: PolicySource

    def describe(self) -> dict[str, PolicySource]:
        return {"threshold": self.threshold_source, "bands": self.bands_source}


def served_policy(recorded: DecisionPolicy | None, settings: Settings) -> ServedPolicy:
    """The policy to score a version with (see the module's docstring for the order):
    ``recorded`` is the version's (None for versions published before policies)."""
    explicit = settings.model_fields_set
    threshold_source: PolicySource
    bands_source: PolicySource
    if "threshold" in explicit:
        threshold, threshold_source = settings.threshold, "setting"
    elif recorded is not None:
        threshold, threshold_source = recorded.threshold, "version"
    else:
        threshold, threshold_source = settings.threshold, "default"
    if explicit & {"band_cutoffs", "band_names"}:
        cutoffs, names, bands_source = settings.band_cutoffs, settings.band_names, "setting"
    elif recorded is not None:
        cutoffs, names, bands_source = recorded.band_cutoffs, recorded.band_names, "version"
    else:
        cutoffs, names, bands_source = settings.band_cutoffs, settings.band_names, "default"
    policy = decision_policy(threshold, cutoffs, names)
    return ServedPolicy(policy, threshold_source, bands_source)
