"""Typed contracts, defined once: what clients send and what jobs carry.

Every value a client controls is parsed into one of these models where it enters (an HTTP
route, a CLI option, a job submission); the layers below take the typed object, never a loose
dict. Models are strict where a lenient parse would change meaning (``"false"`` is not
``True``; ``"4"`` is not a count), and forbid unknown fields so a misspelt option is refused,
not ignored.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict

from loanrisk.defaults import DEFAULT_CALIBRATION_FRACTION, LDA_AUC_LOSS, LDA_MIN_AIR_GAIN
from loanrisk.defaults import DEFAULT_ROUNDS as DEFAULT_ROUNDS
from loanrisk.errors import InvalidInput
from loanrisk.registry.manifest import FileEntry, ModelKind, ModelManifest
from loanrisk.registry.masterscale import DEFAULT_SCALE, MasterScale
from loanrisk.registry.policy import (
    DEFAULT_BAND_CUTOFFS,
    DEFAULT_BAND_NAMES,
    DecisionPolicy,
    policy_problem,
)
from loanrisk.registry.reasons import ReasonCatalog
from loanrisk.registry.report import EvaluationReport
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling, ScalingOptions
from loanrisk.schema import LoanSchema
from loanrisk.schema.quality import QualityReport
from loanrisk.settings import CalibrationChoice, Seed, Settings

OnError = Literal["raise", "skip"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def _iso_moment(value: object) -> object:
    """An ISO 8601 date or date-time, nothing else: a number (``0.5``, ``1700000000``) would
    be read as seconds since 1970, which no person means when they type it."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        return value.strip()
    if isinstance(value, datetime):
        return value
    shown = str(value)[:40]
    raise ValueError(
        f"an ISO 8601 date or time (2026-11-30 or 2026-11-30T12:00:00Z), not {shown!r}"
    )


#: A moment a client names (a report's window): ISO 8601 only; no zone means UTC.
IsoMoment = Annotated[datetime, BeforeValidator(_iso_moment)]
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


class TunedFrom(TypedDict):
    """The tuning trial a training's parameters came from, as its request and manifest
    record it."""

    dataset: str
    study: str
    pick: str
    trial: int
    cv_auc: float
    nodes: float
    air: NotRequired[float]
    attribute: NotRequired[str]


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessDataJob(_Job):
    """A data-processing job: a raw CSV on the storage -> validated -> expanded -> dataset."""

    source: str = Field(description="Storage path of the raw CSV (already confined).")
    source_name: str = Field(description="The name the client knows it by (for manifests).")
    size: StrictInt | None = Field(None, ge=1, description="Expand to this many rows.")
    directory: str = Field("data", description="Storage folder of the dataset.")
    keep_columns: tuple[str, ...] = Field((), description="Extra columns to carry along.")
    loan_schema: LoanSchema | None = Field(None, description="Declared schema; default built-in.")
    staged: bool = Field(False, description="The source is a staged upload: delete it after.")


class TrainingInputs(_Job):
    """What a client says about a training that its request carries as given: declared once,
    shared by :class:`TrainingRequest` and the front ends' :class:`TrainingOptions`."""

    kind: ModelKind = Field(
        "xgboost",
        description="What to train: xgboost (gradient-boosted trees) or scorecard (a WoE "
        "logistic scorecard on the same dataset and split, docs/scorecard.md).",
    )
    dataset: str = Field("latest", description="Dataset id, or 'latest'.")
    dataset_size: StrictInt | None = Field(
        None, ge=1, description="Instead: newest dataset of this size."
    )
    data_directory: str = Field("data", description="Folder of the storage with datasets.")
    continue_from: str | None = Field(None, description="Version or alias to continue from.")
    params: dict[str, Any] = Field({}, description="XGBoost parameters over the reference's.")
    early_stopping_rounds: StrictInt | None = Field(
        None, ge=1, description="Stop without progress."
    )
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="For early stopping.")
    promote: StrictBool | None = Field(
        None, description="Move 'production' to it (None: if unset)."
    )
    protected_attribute: str | None = Field(
        None, description="Fairness report over this kept column (never a feature)."
    )
    privileged_value: str | None = Field(None, description="Its privileged value.")
    calibration_fraction: float = Field(
        DEFAULT_CALIBRATION_FRACTION,
        gt=0,
        lt=0.5,
        description="Share of the training rows held out to calibrate.",
    )
    reason_catalog: ReasonCatalog | None = Field(
        None,
        description="Adverse-action reasons (code, statement) that replace the schema's "
        "derived ones, by attribute and direction (and category: an entry with a value); "
        "stored with the version.",
    )


class TrainingOptions(TrainingInputs):
    """A training as a front end's user asks for it: what is not given (None) is filled from
    the settings, the tuned study or the parent by :func:`loanrisk.requests.training_request`,
    the one place that turns options into a :class:`TrainingRequest`."""

    rounds: StrictInt = Field(
        DEFAULT_ROUNDS,
        ge=1,
        le=100_000,
        description="Boosting rounds to add (not given with params_from: the trial's).",
    )
    monotone: StrictBool | None = Field(
        None,
        description="Constrain the model to the schema's directions of risk (None: the "
        "setting). A continued training needs a parent trained with them.",
    )
    calibration: CalibrationChoice | None = Field(
        None,
        description="Fit this calibration on a held-out split of the training rows and apply "
        "it wherever the version scores (None: the setting).",
    )
    params_from: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(:[A-Za-z]+)?$",  # the pick: best or lean
        description="A tuning study of the dataset, NAME[:best|:lean]: its trial's parameters "
        "(under params) and rounds (unless rounds is given).",
    )
    threshold: float | None = Field(
        None,
        description="Decision threshold recorded with the version: a loan is labelled default "
        "when its probability of default is over it, in (0, 1). None: LOANRISK_THRESHOLD when "
        "set, else the parent's (continued training), else the setting's default.",
    )
    band_cutoffs: list[float] | None = Field(
        None,
        description="Risk band cut-offs recorded with the version: increasing, each in (0, 1), "
        "at most 19. None: as threshold.",
    )
    band_names: list[str] | None = Field(
        None, description="Risk band names, one more than the cut-offs. None: as threshold."
    )
    master_scale: MasterScale | None = Field(
        None,
        description="The rating master scale recorded with the version: grades from the "
        "lowest PD up, each {name, lower, upper} (PDs in [0, 1], contiguous, the first from 0, "
        "the last to 1); every loan the version scores gets its grade. None: the parent's "
        "(continued training), else the default (the Pillar 3 CR6 PD ranges, docs/scoring.md).",
    )
    scaling: ScalingOptions | None = Field(
        None,
        description="The points scaling recorded with the version: {points, odds, pdo}, "
        "points at good:bad odds of odds to 1, and pdo points to double the odds; every loan "
        "the version scores gets its score in points. A field not given: the parent's "
        "(continued training), else the default's (600 points at 50:1, 20 to double, "
        "docs/scorecard.md).",
    )


class TrainingRequest(TrainingInputs):
    """What to train, every default filled. ``dataset`` is an id or ``latest``;
    ``dataset_size`` instead finds the newest dataset processed with that size (the
    reference's ``/train`` ``size``). Front ends do not build one themselves:
    :func:`loanrisk.requests.training_request` does, from their :class:`TrainingOptions`."""

    model_directory: str = "models"
    model_name: str = "loan-default"
    rounds: int = Field(DEFAULT_ROUNDS, ge=1, le=100_000)
    threshold: float = Field(0.5, gt=0, lt=1)
    band_cutoffs: tuple[float, ...] = Field(
        DEFAULT_BAND_CUTOFFS, description="Risk band cut-offs recorded with the version."
    )
    band_names: tuple[str, ...] = Field(
        DEFAULT_BAND_NAMES, description="Risk band names, one more than the cut-offs."
    )
    master_scale: MasterScale = Field(
        DEFAULT_SCALE, description="The rating master scale recorded with the version."
    )
    scaling: Scaling = Field(
        DEFAULT_SCALING, description="The points scaling recorded with the version."
    )
    seed: Seed = 0
    monotone: bool = False
    calibration: CalibrationChoice = "none"
    tuned_from: TunedFrom | None = Field(
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
    ref: str = Field(description="The alias the version was resolved from (for the record).")
    version: int = Field(
        ge=1,
        description="The version to score with, resolved once when the job was accepted (the "
        "champion the service scored with then), never again in the job.",
    )
    on_error: OnError = "raise"
    id_column: str | None = None
    request_id: str | None = Field(None, description="The submitting request's id (logged).")
    explain: bool = False
    decline_reasons: bool = False
    log_staging: str = Field(
        default_factory=lambda: secrets.token_hex(8),
        pattern=r"^[0-9a-f]{16}$",
        description="This job's own token: its prediction-log rows are staged under it until "
        "its results are published (loanrisk.monitoring.log.staging).",
    )


#: A tuning study's name: letters, digits, '.', '_', '-'; never a path.
STUDY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class TuneOptions(_Job):
    """A hyperparameter search on a dataset's training split as a client asks for it
    (``loanrisk tune``, the v1 API's studies); :func:`loanrisk.requests.tune_job` makes it
    a :class:`TuneJob`."""

    study: str = Field("tune", pattern=STUDY_NAME, description="Study name; a stored one resumes.")
    trials: StrictInt | None = Field(None, ge=1, le=10_000, description="Complete trials to reach.")
    time_budget: float | None = Field(
        None, gt=0, le=7 * 86_400, description="Seconds after which no trial starts."
    )
    objective: Literal["auc", "auc-per-cost", "auc-air"] = Field(
        "auc",
        description="What to search for: AUC, AUC against cost, or AUC against the adverse "
        "impact ratio of the protected attribute fairness names (given fairness, the default).",
    )
    folds: StrictInt = Field(3, ge=2, le=10, description="Stratified cross-validation folds.")
    monotone: StrictBool = Field(
        False, description="Search with the schema's monotone constraints."
    )
    lean_tolerance: float = Field(0.001, ge=0, le=0.1, description="For the lean pick.")
    fairness: str | None = Field(
        None,
        validate_default=True,
        min_length=1,
        max_length=128,
        description="A protected attribute of the dataset's schema: search for a less "
        "discriminatory alternative, a Pareto search on AUC and its adverse impact ratio "
        "(docs/fairness.md).",
    )
    auc_loss: float | None = Field(
        None,
        ge=0,
        le=0.1,
        description="The CV AUC an alternative may lose against the best trial (None: "
        "LOANRISK_LDA_AUC_LOSS).",
    )
    min_air_gain: float | None = Field(
        None,
        gt=0,
        le=1,
        description="The AIR gain that is material (None: LOANRISK_LDA_MIN_AIR_GAIN).",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="The decision threshold approvals are counted at (None: LOANRISK_THRESHOLD).",
    )

    @model_validator(mode="before")
    @classmethod
    def _fairness_objective(cls, data: Any) -> Any:
        """Naming a protected attribute asks for the AUC/AIR search."""
        if isinstance(data, dict) and data.get("fairness") and "objective" not in data:
            return {**data, "objective": "auc-air"}
        return data

    @field_validator("fairness")
    @classmethod
    def _fairness_given(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The auc-air objective and a protected attribute go together (named here, where
        a client fixes either)."""
        objective = info.data.get("objective")
        if objective is not None and (objective == "auc-air") != (value is not None):
            raise ValueError(
                "the auc-air objective searches on a protected attribute (fairness), and a "
                "protected attribute is searched with the auc-air objective"
            )
        return value


class TuneJob(TuneOptions):
    """A hyperparameter search on a dataset's training split (``loanrisk tune``)."""

    dataset: str = "latest"
    data_directory: str = "data"
    auc_loss: float = Field(LDA_AUC_LOSS, ge=0, le=0.1)
    min_air_gain: float = Field(LDA_MIN_AIR_GAIN, gt=0, le=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    threshold_source: str = Field(
        "given", max_length=200, description="Where the threshold came from, for a person."
    )
    max_rounds: int = Field(2_000, ge=10, le=100_000)
    early_stopping_rounds: int = Field(50, ge=1, le=1_000)
    seed: Seed = 0


JobParams = ProcessDataJob | TrainingRequest | ScoreJob | TuneJob
JOB_KINDS: dict[type[BaseModel], str] = {
    ProcessDataJob: "process_data",
    TrainingRequest: "train",
    ScoreJob: "score",
    TuneJob: "tune",
}


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


class Histogram(BaseModel):
    """Counts of a numeric column's values between ``edges`` (its deciles, deduplicated)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    edges: list[float]
    counts: list[int]


class ColumnStats(BaseModel):
    """Statistics of one feature column (:func:`loanrisk.data.stats.column_stats`): every
    column has ``count`` and ``missing``; a numeric column with values has moments,
    ``quantiles`` (``p1`` ... ``p99``) and a ``histogram``; a categorical one has ``counts``
    per category. Figures a column has not are left out of the JSON; figures another
    version of loanrisk wrote are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    count: int
    missing: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] | None = None
    histogram: Histogram | None = None
    counts: dict[str, int] | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        return {key: value for key, value in doc.items() if value is not None}


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
    columns: dict[str, ColumnStats] = Field(description="Statistics per feature column.")
    quality: QualityReport = Field(description="The data-quality report of validation.")
    files: dict[str, FileEntry]
    timings: dict[str, float]
    created_at: str
    loanrisk_version: str


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


class JobProgress(BaseModel):
    """How far a job has got: ``done`` of ``total`` steps of its ``stage`` (``total`` None
    while unknown). Timed stages (training rounds, tuning trials) add the seconds
    ``elapsed``, an ``eta`` (None while unknown) and the latest ``metrics``; other stages
    leave these three out of the JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str
    done: int
    total: int | None
    elapsed: float | None = None
    eta: float | None = None
    metrics: dict[str, int | float] | None = None

    @model_serializer(mode="wrap")
    def _untimed(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        if self.elapsed is None:
            for key in ("elapsed", "eta", "metrics"):
                doc.pop(key, None)
        return doc


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
    progress: JobProgress | None = None
    result: dict[str, Any] | None = None
    error: ErrorDoc | None = None
    timings: dict[str, float] = Field(default_factory=dict)


class MlflowRegistration(BaseModel):
    """The MLflow registered model version a run became, and the aliases mirrored onto it
    (``aliases_refused``: alias -> MLflow's reason)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    aliases: list[str]
    aliases_refused: dict[str, str]


class MlflowRun(BaseModel):
    """A version logged as an MLflow run (``registered``: None unless registration was asked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str
    experiment: str
    experiment_id: str
    run_id: str
    registered: MlflowRegistration | None


class MlflowWarning(BaseModel):
    """MLflow could not be reached or refused: the version stands, the user is told why (and
    the run, when one was started)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning: str
    run_id: str | None


class TrainingResult(BaseModel):
    """What a training gives back: the published version's manifest, its evaluation report,
    and whether it became ``production``. A training job stores it as its result
    (:meth:`to_json`); the CLI and the reference routes read it back with ``model_validate``."""

    model_config = ConfigDict(frozen=True)

    manifest: ModelManifest
    report: EvaluationReport
    promoted: bool
    #: Why the version was published but not promoted although promotion was due (it
    #: could not be served); None otherwise.
    not_promoted: str | None = None
    #: What logging the version to MLflow did (a job with a tracking URI set), else None.
    mlflow: MlflowRun | MlflowWarning | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The result as a job stores it (``mlflow`` only when there was a tracking URI)."""
        return self.model_dump(mode="json", exclude=None if self.mlflow is not None else {"mlflow"})


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
