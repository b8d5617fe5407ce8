"""A model version's manifest: what the registry records with each version it publishes."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from loanrisk.registry.policy import DecisionPolicy

if TYPE_CHECKING:  # the request models import the manifest; fsspec comes with a storage
    from loanrisk.storage.base import Storage

#: The sections below are JSON read back from stored manifests: every key is optional (older
#: versions wrote fewer), and keys they do not name are kept.
_KEEP_UNNAMED = ConfigDict(extra="allow")


class FileEntry(BaseModel):
    """A stored file as a manifest records it: its SHA-256 (hex) and size in bytes. The one
    check of a stored file against its manifest, for model versions and datasets alike
    (:meth:`check`, :meth:`read_checked`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    bytes: int

    @classmethod
    def of(cls, data: builtins.bytes) -> FileEntry:
        """The entry of content ``data``."""
        return cls(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    def check(self, storage: Storage, path: str, refuse: Callable[[], Exception]) -> None:
        """Check the file at ``path`` against this entry, reading it a chunk at a time
        (:meth:`Storage.digest`: never whole in memory); raise ``refuse()`` (the caller's
        error, naming the file) when its hash or size differs. A file that cannot be read
        raises as :meth:`Storage.open_read` does (:class:`NotFound` when it is gone)."""
        if storage.digest(path) != (self.sha256, self.bytes):
            raise refuse()

    def read_checked(
        self, storage: Storage, path: str, refuse: Callable[[], Exception]
    ) -> builtins.bytes:
        """The content of the file at ``path``, checked as :meth:`check` checks it, in one
        read: for a file whose bytes are needed anyway (it is held whole in memory)."""
        data = storage.read_bytes(path)
        if FileEntry.of(data) != self:
            raise refuse()
        return data


class SchemaRef(BaseModel):
    """A declared schema as manifests name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hash: str


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int


@with_config(_KEEP_UNNAMED)
class DatasetSection(TypedDict, total=False):
    """The dataset a version was trained on: its id, directory, requested size and rows
    per split."""

    id: str
    directory: str
    requested_size: int | None
    rows: dict[str, int]


@with_config(_KEEP_UNNAMED)
class FeatureSpecSection(TypedDict, total=False):
    """The FeatureSpec a version encodes with: its fingerprint, where it came from
    (``dataset`` or ``parent``) and the training rows per column of unknown categories."""

    fingerprint: str
    source: str
    unknown_categories: dict[str, int]


@with_config(_KEEP_UNNAMED)
class RoundsSection(TypedDict, total=False):
    """Rounds asked for, rounds trained here, the early-stopping best iteration, and the
    trees of the published model (the parent's included)."""

    requested: int
    trained: int
    best_iteration: int | None
    total_trees: int


#: What a model version is: gradient-boosted trees (``model.ubj``) or a WoE logistic
#: scorecard (``scorecard.json``, :mod:`loanrisk.registry.scorecard`).
ModelKind = Literal["xgboost", "scorecard"]


class DistributedRun(BaseModel):
    """A version trained on a Dask cluster: the scheduler and its workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler: str
    workers: int


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
    kind: ModelKind = Field(
        "xgboost",
        description="xgboost (model.ubj) or scorecard (scorecard.json); versions published "
        "before kinds were recorded are xgboost.",
    )
    parent: ModelRef | None = None
    schema_ref: SchemaRef | None = Field(
        None, alias="schema", description="The declared schema it was trained on."
    )
    dataset: DatasetSection | None = Field(None, description="id, directory, size and rows.")
    feature_spec: FeatureSpecSection | None = Field(None, description="fingerprint and source.")
    params: dict[str, Any] = Field(default_factory=dict, description="XGBoost parameters.")
    rounds: RoundsSection = Field(default_factory=lambda: RoundsSection())
    threshold: float | None = None
    policy: DecisionPolicy | None = Field(
        None,
        description="The decision policy trained with (threshold, risk bands); None for "
        "versions published before policies were recorded (the settings apply).",
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    #: The training request as JSON (its model, in ``loanrisk.contracts``, is above the
    #: registry).
    request: dict[str, Any] | None = None
    nthread: int | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)

    @property
    def training_dataset(self) -> tuple[str, str] | None:
        """(directory, id) of the dataset the version was trained on, when it names one."""
        recorded = self.dataset or DatasetSection()
        if "id" not in recorded:
            return None
        return str(recorded.get("directory", "data")), str(recorded["id"])
