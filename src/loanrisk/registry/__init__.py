"""The model registry: immutable numbered versions, aliases, lineage, on any storage, and the
artefacts a version carries (manifest, calibration, reason catalog, decision policy,
master scale).

The artefact modules are light (no xgboost) because ``loanrisk.contracts`` imports them; so
that importing one does not load xgboost, :class:`ModelRegistry` and :class:`LoadedModel`
are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk.registry.models import LoadedModel, ModelRegistry

__all__ = ["LoadedModel", "ModelRegistry"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'loanrisk.registry' has no attribute {name!r}")
    from loanrisk.registry import models

    value = getattr(models, name)
    globals()[name] = value
    return value
