"""A model version's manifest: what the registry records with each version it publishes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loanrisk.registry.policy import DecisionPolicy


class FileEntry(BaseModel):
    """A stored file as a manifest records it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    bytes: int


class SchemaRef(BaseModel):
    """A declared schema as manifests name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hash: str


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int


class ModelManifest(BaseModel):
    """A published model version, as its ``manifest.json`` records it (written last: the
    version exists once it has one). The registry fills ``name``, ``version``, ``files`` and
    ``created_at``; a training fills the rest. Fields another version wrote are kept."""

    model_config = ConfigDict(
        extra="allow", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    name: str
    version: int
    files: dict[str, FileEntry]
    created_at: str
    parent: ModelRef | None = None
    schema_ref: SchemaRef | None = Field(
        None, alias="schema", description="The declared schema it was trained on."
    )
    dataset: dict[str, Any] | None = Field(None, description="id, directory, size and rows.")
    feature_spec: dict[str, Any] | None = Field(None, description="fingerprint and source.")
    params: dict[str, Any] = Field(default_factory=dict, description="XGBoost parameters.")
    rounds: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = None
    policy: DecisionPolicy | None = Field(
        None,
        description="The decision policy trained with (threshold, risk bands); None for "
        "versions published before policies were recorded (the settings apply).",
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    request: dict[str, Any] | None = None
    nthread: int | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)

    @property
    def training_dataset(self) -> tuple[str, str] | None:
        """(directory, id) of the dataset the version was trained on, when it names one."""
        recorded = self.dataset or {}
        if "id" not in recorded:
            return None
        return str(recorded.get("directory", "data")), str(recorded["id"])
