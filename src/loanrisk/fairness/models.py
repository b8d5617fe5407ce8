"""The fair-lending figures as typed results (what reports store and routes answer): built by
:mod:`.measures` and :mod:`.report`; light to import (no scipy, no scikit-learn), as the
registry's report model reads them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["category", "rule", "proxy"]


class AirResult(BaseModel):
    """The adverse impact ratio of a protected group against its reference group.

    ``air`` is None when it is undefined (no reference approvals, or an empty group), and so
    are ``low``/``high`` when no approval or no refusal in a group leaves the log interval
    undefined; ``p_value`` is None when a group is empty."""

    model_config = ConfigDict(frozen=True)

    protected_count: float
    reference_count: float
    protected_rate: float | None
    reference_rate: float | None
    shortfall: float | None
    air: float | None
    low: float | None
    high: float | None
    p_value: float | None
    test: Literal["fisher", "chi_squared"]
    four_fifths: bool
    significant: bool

    @property
    def adverse(self) -> bool:
        """Adverse impact: the AIR is below 1 and below four fifths or significantly different
        from 1 (docs/fairness.md). A significant difference above 1 favours the protected
        group: no adverse impact, and no reason to look for a less discriminatory model."""
        return self.air is not None and self.air < 1 and (self.four_fifths or self.significant)

    @property
    def flags(self) -> list[str]:
        """The flags in words, as the CLI prints them: ``below 4/5``, ``significant``, or
        ``significant, in favour`` for a significant difference that is no adverse impact."""
        out = ["below 4/5"] * self.four_fifths
        if self.significant:
            out.append("significant" if self.adverse else "significant, in favour")
        return out


class SmdResult(BaseModel):
    """The standardized mean difference of a score (the PD) between a protected group and
    its reference group: positive when the protected group's mean is higher (a higher PD is
    unfavourable). None where a group is empty or the score does not vary."""

    model_config = ConfigDict(frozen=True)

    protected_mean: float | None
    reference_mean: float | None
    smd: float | None
    low: float | None
    high: float | None
    p_value: float | None
    practical: bool
    significant: bool


class GroupOutcomes(BaseModel):
    """A group's loans with an outcome (weighted for a proxy): the observed default rate,
    the mean PD over the same loans, and the AUC (None: a single class among them)."""

    model_config = ConfigDict(frozen=True)

    loans: float
    observed: float | None
    predicted: float | None
    auc: float | None


class GroupFigures(BaseModel):
    """One group's loans, approval rate and mean PD; against the reference group (None for
    the reference itself) its ``air`` and ``smd``; ``outcomes`` where loans have them."""

    model_config = ConfigDict(frozen=True)

    group: str
    loans: float
    approval_rate: float | None
    mean_pd: float | None
    air: AirResult | None = None
    smd: SmdResult | None = None
    outcomes: GroupOutcomes | None = None


class AttributeFairness(BaseModel):
    """The fairness figures of ``attribute`` (``kind``: category, rule or proxy) over
    ``loans`` loans, approvals being a PD at or below ``threshold``; ``warnings`` name the
    groups below the minimum size."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    kind: Kind
    threshold: float
    loans: int
    reference: GroupFigures
    groups: list[GroupFigures]
    warnings: list[str] = []

    def flagged(self, flag: Literal["four_fifths", "significant"]) -> list[str]:
        """The groups whose AIR raises ``flag`` (below four fifths, or significant)."""
        return [g.group for g in self.groups if g.air is not None and getattr(g.air, flag)]
