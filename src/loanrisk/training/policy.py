"""The decision policy a training records with its version.

Each part not given as an option comes, as at serve time, from the setting when it is set
explicitly, else from the parent's policy (a continued training keeps its model's threshold
and bands), else from the settings' defaults (:func:`~loanrisk.registry.policy.served_policy`).
"""

from __future__ import annotations

from collections.abc import Sequence

from loanrisk.errors import LoanRiskError
from loanrisk.registry.masterscale import DEFAULT_SCALE, MasterScale
from loanrisk.registry.models import ModelRegistry
from loanrisk.registry.policy import DecisionPolicy, decision_policy, served_policy
from loanrisk.settings import Settings


def parent_policy(
    registry: ModelRegistry, name: str, continue_from: str | int | None
) -> DecisionPolicy | None:
    """The policy of the version a training continues from (None: it starts from scratch,
    the parent has none, or it cannot be read, which the training's own checks report)."""
    if continue_from is None:
        return None
    try:
        return registry.manifest(name, registry.resolve(name, continue_from)).policy
    except LoanRiskError:
        return None


def training_scale(
    registry: ModelRegistry, name: str, continue_from: str | int | None, given: MasterScale | None
) -> MasterScale:
    """The master scale a training records: the one ``given``, else the parent's (a
    continued training grades as its model did), else the default scale (also when the
    parent cannot be read, which the training's own checks report)."""
    if given is not None:
        return given
    if continue_from is not None:
        try:
            return registry.master_scale(name, registry.resolve(name, continue_from))
        except LoanRiskError:
            pass
    return DEFAULT_SCALE


def training_policy(
    settings: Settings,
    *,
    parent: DecisionPolicy | None = None,
    threshold: float | None = None,
    band_cutoffs: Sequence[float] | None = None,
    band_names: Sequence[str] | None = None,
) -> DecisionPolicy:
    """The policy a training records: the options given, the rest as the module says;
    :class:`~loanrisk.errors.InvalidInput` naming the field (``threshold``,
    ``band_cutoffs``, ``band_names``) when they do not make a policy."""
    base = served_policy(parent, settings).policy
    return decision_policy(
        base.threshold if threshold is None else threshold,
        base.band_cutoffs if band_cutoffs is None else band_cutoffs,
        base.band_names if band_names is None else band_names,
    )
