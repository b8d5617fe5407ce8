"""The search for a less discriminatory alternative (LDA): ``loanrisk tune --fairness ATTR``.

US fair-lending law (ECOA / Regulation B, and the disparate-impact doctrine the CFPB applies
to credit models) asks a lender whose model has a disparate impact whether another model
serves the same business need with less of it. Gillis, Meursault and Ustun ("Operationalizing
the Search for Less Discriminatory Alternatives in Fair Lending", FAccT 2024) show that
models of near-equal accuracy differ widely in disparity, so the search is a search over
models of near-equal accuracy. Here it is a two-objective Optuna study over XGBoost's
parameters, as ``loanrisk tune`` runs it (docs/training.md), on the training split only:

- **AUC**: the mean cross-validated AUC, as every tuning study scores a trial;
- **AIR**: the adverse impact ratio of approvals (a loan is approved when its PD is at or
  under the decision threshold) of the attribute's protected groups against its reference
  group, on the trial's out-of-fold PDs: each training loan is decided once, by the fold's
  model that did not see it. With several protected groups a trial's AIR is its worst
  group's. :func:`loanrisk.fairness.measures.adverse_impact_ratio` computes it.

The search maximises AIR *capped at 1*: above 1 the protected group is approved more often
than its reference group, and no more adverse impact is there to remove. The **baseline** is
the trial with the best AUC (what ``--params-from NAME:best`` trains); the **alternative** is
the trial with the highest capped AIR among those whose AUC is within ``auc_loss`` of the
baseline's (ties to the higher AUC). Its AIR is **materially higher** when its capped AIR
exceeds the baseline's by at least ``min_air_gain`` (an absolute gain: 0.02 moves an AIR of
0.78 to 0.80). That is a stated tolerance, not a test: the held-out comparison of the trained
alternative with the champion (``loanrisk models compare``) gives both AIRs with their 95%
intervals on loans neither model trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.fairness.groups import AttributeGroups
from loanrisk.fairness.measures import adverse_impact_ratio

#: Slack of float comparisons of AUCs and AIRs (a tie is a tie, not a gain).
_EPS = 1e-12


class SearchTarget(BaseModel):
    """What a search for a less discriminatory alternative measures, as its study stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = Field(description="The protected attribute of the schema.")
    reference: str = Field(description="Its reference group (the privileged values or range).")
    groups: tuple[str, ...] = Field(description="Its protected groups, measured against it.")
    threshold: float = Field(description="Approved: the PD at or under it.")
    auc_loss: float = Field(description="The CV AUC an alternative may lose.")
    min_air_gain: float = Field(description="The capped-AIR gain that is material.")


class _Scored(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def auc(self) -> float: ...
    @property
    def air(self) -> float | None: ...


T = TypeVar("T", bound=_Scored)


def capped(air: float | None) -> float:
    """A trial's fairness objective: its AIR capped at 1 (parity), 0 when undefined (no
    approval in the reference group: such a trial is never an alternative)."""
    return 0.0 if air is None else min(air, 1.0)


def search_target(
    groups: AttributeGroups, *, threshold: float, auc_loss: float, min_air_gain: float
) -> SearchTarget:
    """The target of a search on the attribute ``groups`` describes."""
    return SearchTarget(
        attribute=groups.attribute,
        reference=groups.reference.name,
        groups=tuple(g.name for g in groups.groups),
        threshold=threshold,
        auc_loss=auc_loss,
        min_air_gain=min_air_gain,
    )


def approval_airs(
    probability: np.ndarray, groups: AttributeGroups, *, threshold: float
) -> dict[str, float | None]:
    """Per protected group, the AIR of the approvals ``probability`` (PDs, one per loan of
    the frame ``groups`` was built from) makes at ``threshold``."""
    approved = np.asarray(probability) <= threshold
    return {
        g.name: adverse_impact_ratio(approved, g.weight, groups.reference.weight).air
        for g in groups.groups
    }


def worst(airs: dict[str, float | None]) -> float | None:
    """The lowest defined AIR of the groups (None when none is defined)."""
    defined = [a for a in airs.values() if a is not None]
    return min(defined) if defined else None


class SearchPoint(BaseModel):
    """A trial as the search reports it."""

    model_config = ConfigDict(frozen=True)

    number: int
    auc: float
    air: float | None


class LdaFinding(BaseModel):
    """What the search found: the baseline (best AUC), the alternative (highest capped AIR
    within ``auc_loss`` of it; None when no trial there beats the baseline's AIR), and
    whether its gain is material."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    threshold: float
    auc_loss: float = Field(description="The CV AUC loss allowed.")
    min_air_gain: float = Field(description="The capped-AIR gain that is material.")
    baseline: SearchPoint
    alternative: SearchPoint | None
    air_gain: float | None = Field(
        description="Capped AIR of the alternative minus the baseline's."
    )
    auc_cost: float | None = Field(description="CV AUC of the baseline minus the alternative's.")
    material: bool
    statement: str


def air_frontier(trials: Sequence[T]) -> list[T]:
    """Trials no other trial beats on both AUC and capped AIR, highest AUC first."""
    ordered = sorted(trials, key=lambda t: (-t.auc, -capped(t.air), t.number))
    out: list[T] = []
    for trial in ordered:
        if not out or capped(trial.air) > capped(out[-1].air) + _EPS:
            out.append(trial)
    return out


def find_lda(trials: Sequence[T], best: T, target: SearchTarget) -> LdaFinding:
    """The alternative to ``best`` (the baseline) among ``trials`` that ``target`` asks for."""
    floor = best.auc - target.auc_loss - _EPS
    better = [t for t in trials if t.auc >= floor and capped(t.air) > capped(best.air) + _EPS]
    chosen = max(better, key=lambda t: (capped(t.air), t.auc, -t.number), default=None)
    alternative, gain, cost, material = None, None, None, False
    if chosen is None:
        statement = (
            f"no trial within {target.auc_loss:g} of the best CV AUC has a higher AIR "
            f"for {target.attribute} than the best trial ({_air(best.air)})"
        )
    else:
        alternative = SearchPoint(number=chosen.number, auc=chosen.auc, air=chosen.air)
        gain = capped(chosen.air) - capped(best.air)
        cost = best.auc - chosen.auc
        material = gain >= target.min_air_gain - _EPS
        statement = (
            f"trial {chosen.number} raises the AIR for {target.attribute} from "
            f"{_air(best.air)} to {_air(chosen.air)} (a gain of {gain:.4f}, AIRs capped at 1) "
            f"for {cost:.4f} of CV AUC (allowed {target.auc_loss:g}): "
            + (
                f"materially higher (a gain of at least {target.min_air_gain:g})"
                if material
                else f"not materially higher (a gain under {target.min_air_gain:g})"
            )
        )
    return LdaFinding(
        attribute=target.attribute,
        threshold=target.threshold,
        auc_loss=target.auc_loss,
        min_air_gain=target.min_air_gain,
        baseline=SearchPoint(number=best.number, auc=best.auc, air=best.air),
        alternative=alternative,
        air_gain=gain,
        auc_cost=cost,
        material=material,
        statement=statement,
    )


def _air(air: float | None) -> str:
    return "undefined" if air is None else f"{air:.4f}"
