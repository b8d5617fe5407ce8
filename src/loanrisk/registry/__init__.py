"""The model registry: immutable numbered versions, aliases, lineage, on any storage."""

from loanrisk.registry.models import LoadedModel, ModelRegistry

__all__ = ["LoadedModel", "ModelRegistry"]
