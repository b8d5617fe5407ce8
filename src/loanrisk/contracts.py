"""Typed contracts, defined once: what clients send and what jobs carry.

Every value a client controls is parsed into one of these models where it enters (an HTTP
route, a CLI option, a job submission); the layers below take the typed object, never a loose
dict. Models are strict where a lenient parse would change meaning (``"false"`` is not
``True``; ``"4"`` is not a count), and forbid unknown fields so a misspelt option is refused,
not ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from loanrisk.errors import InvalidInput
from loanrisk.inference.policy import (
    DEFAULT_BAND_CUTOFFS,
    DEFAULT_BAND_NAMES,
    DecisionPolicy,
    policy_problem,
)
from loanrisk.inference.reasons import ReasonCatalog
from loanrisk.schema import LoanSchema
from loanrisk.settings import CalibrationChoice, Seed, Settings

OnError = Literal["raise", "skip"]
#: Boosting rounds of a training, as the reference's 500.
DEFAULT_ROUNDS = 500
#: Most reasons asked for per loan (a model has at most as many as its schema has features).
MAX_REASONS = 50


class PredictOptions(BaseModel):
    """``POST /v1/predict`` with options: ``{"records": [...], "explain", "top_k",
    "on_error", "decline_reasons"}``. Each record is checked on its own (a bad one is named
    by its index)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    records: list[Any] = Field(description="The loans, as JSON objects.")
    explain: StrictBool = Field(False, description="Add the top reasons per loan.")
    top_k: StrictInt = Field(4, ge=1, le=MAX_REASONS, description="Reasons per loan.")
    on_error: OnError = Field("raise", description="Refuse the request, or skip bad loans.")
    decline_reasons: StrictBool = Field(
        False,
        description="Add decline_reasons ([{code, reason}]) to each loan over the threshold: "
        "what its adverse-action notice states (empty for an approved loan).",
    )


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessDataJob(_Job):
    """A data-processing job: a raw CSV on the storage -> validated -> expanded -> dataset."""

    source: str = Field(description="Storage path of the raw CSV (already confined).")
    source_name: str = Field(description="The name the client knows it by (for manifests).")
    size: int | None = Field(None, ge=1, description="Expand to this many rows.")
    directory: str = Field("data", description="Storage folder of the dataset.")
    keep_columns: tuple[str, ...] = Field((), description="Extra columns to carry along.")
    loan_schema: LoanSchema | None = Field(None, description="Declared schema; default built-in.")
    staged: bool = Field(False, description="The source is a staged upload: delete it after.")


class TrainingRequest(_Job):
    """What to train. ``dataset`` is an id or ``latest``; ``dataset_size`` instead finds the
    newest dataset processed with that size (the reference's ``/train`` ``size``)."""

    dataset: str = "latest"
    dataset_size: int | None = Field(None, ge=1)
    data_directory: str = "data"
    model_directory: str = "models"
    model_name: str = "loan-default"
    continue_from: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rounds: int = Field(DEFAULT_ROUNDS, ge=1, le=100_000)
    early_stopping_rounds: int | None = Field(None, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    threshold: float = Field(0.5, gt=0, lt=1)
    band_cutoffs: tuple[float, ...] = Field(
        DEFAULT_BAND_CUTOFFS, description="Risk band cut-offs recorded with the version."
    )
    band_names: tuple[str, ...] = Field(
        DEFAULT_BAND_NAMES, description="Risk band names, one more than the cut-offs."
    )
    promote: bool | None = None
    protected_attribute: str | None = None
    privileged_value: str | None = None
    seed: Seed = 0
    monotone: bool = False
    calibration: CalibrationChoice = "none"
    calibration_fraction: float = Field(0.1, gt=0, lt=0.5)
    reason_catalog: ReasonCatalog | None = Field(
        None,
        description="Reasons that replace the schema's derived ones, by attribute and direction "
        "(and category: an entry with a value).",
    )
    tuned_from: dict[str, Any] | None = Field(
        None, description="The tuning study and trial the parameters came from (recorded)."
    )

    @model_validator(mode="after")
    def _policy_holds(self) -> TrainingRequest:
        problem = policy_problem(self.threshold, self.band_cutoffs, self.band_names)
        if problem is not None:
            raise ValueError(problem[1])
        return self

    @property
    def policy(self) -> DecisionPolicy:
        """The decision policy the version records (threshold and risk bands)."""
        return DecisionPolicy(
            threshold=self.threshold, band_cutoffs=self.band_cutoffs, band_names=self.band_names
        )


class ScoreJob(_Job):
    """A batch-scoring job: a stored CSV or Parquet file -> a results CSV on the storage."""

    source: str = Field(description="Storage path of the loans (already confined).")
    output: str = Field(description="Storage path of the results CSV (a new file).")
    model_name: str
    model_directory: str
    ref: str = Field(description="Version or alias to score with.")
    on_error: OnError = "raise"
    id_column: str | None = None
    request_id: str | None = Field(None, description="The submitting request's id (logged).")
    explain: bool = False
    decline_reasons: bool = False


#: A tuning study's name: letters, digits, '.', '_', '-'; never a path.
STUDY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class TuneJob(_Job):
    """A hyperparameter search on a dataset's training split (``loanrisk tune``)."""

    dataset: str = "latest"
    data_directory: str = "data"
    study: str = Field("tune", pattern=STUDY_NAME, description="Study name (resumed if stored).")
    trials: int | None = Field(None, ge=1, le=10_000, description="Complete trials to reach.")
    time_budget: float | None = Field(None, gt=0, le=7 * 86_400, description="Seconds.")
    objective: Literal["auc", "auc-per-cost"] = "auc"
    folds: int = Field(3, ge=2, le=10)
    max_rounds: int = Field(2_000, ge=10, le=100_000)
    early_stopping_rounds: int = Field(50, ge=1, le=1_000)
    monotone: bool = False
    lean_tolerance: float = Field(0.001, ge=0, le=0.1)
    seed: Seed = 0


JobParams = ProcessDataJob | TrainingRequest | ScoreJob | TuneJob
JOB_KINDS: dict[type[BaseModel], str] = {
    ProcessDataJob: "process_data",
    TrainingRequest: "train",
    ScoreJob: "score",
    TuneJob: "tune",
}


class FileEntry(BaseModel):
    """A stored file as a manifest records it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    bytes: int


class RowCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: int = Field(description="Loans in the raw input (after validation).")
    total: int = Field(description="Rows after expansion.")
    train: int
    test: int


class LabelRates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total: float
    train: float
    test: float


class DatasetManifest(BaseModel):
    """A processed dataset, as its ``manifest.json`` records it (written last: a dataset
    exists once it has one). Fields another version of loanrisk wrote are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    directory: str
    source: str
    requested_size: int | None
    expanded: bool
    seed: int
    test_fraction: float
    stratified: bool
    rows: RowCounts
    label_rate: LabelRates
    schema_hash: str
    schema_name: str = Field("credit-risk", description="The declared schema's name.")
    kept_columns: list[str] = Field(default_factory=list)
    feature_spec: str = Field(description="The fitted FeatureSpec's fingerprint.")
    feature_columns: list[str]
    fitted_on_rows: int | None = Field(None, description="Training rows the spec was fitted on.")
    columns: dict[str, dict[str, Any]] = Field(description="Statistics per feature column.")
    quality: dict[str, Any] = Field(description="The data-quality report of validation.")
    files: dict[str, FileEntry]
    timings: dict[str, float]
    created_at: str
    loanrisk_version: str


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


JobKind = Literal["process_data", "train", "score", "tune"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")
TERMINAL: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")


class ErrorDoc(BaseModel):
    """An error as it crosses a process boundary or is stored: the HTTP error's fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobRecord(BaseModel):
    """A job as stored on the shared storage and answered by ``/v1/jobs``. Replaced whole
    (``model_copy(update=...)``) at every change, never edited in place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="job-<created>-<kind>-<random>")
    kind: JobKind
    state: JobState
    params: dict[str, Any] = Field(description="The job's typed parameters, as JSON.")
    owner: str = Field(description="host:pid of the replica that runs it.")
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    heartbeat_at: str
    progress: dict[str, Any] | None = Field(None, description="stage, done, total (, eta).")
    result: dict[str, Any] | None = None
    error: ErrorDoc | None = None
    timings: dict[str, float] = Field(default_factory=dict)


def check_size(size: int | None, settings: Settings, *, field: str = "size") -> int | None:
    """A requested expansion size within the configured ceiling (``max_size``)."""
    if size is None:
        return None
    if size < 1:
        raise InvalidInput(f"{field} must be at least 1", details={"field": field})
    if size > settings.max_size:
        raise InvalidInput(
            f"{field} of {size:,} rows is over the limit of {settings.max_size:,} "
            "(setting max_size)",
            details={"field": field, "max": settings.max_size},
        )
    return size
