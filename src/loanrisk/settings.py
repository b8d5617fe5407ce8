"""Settings: the only place that reads the environment (prefix ``LOANRISK_``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: How a training calibrates its probabilities (loanrisk.registry.calibration).
CalibrationChoice = Literal["none", "isotonic", "platt"]
#: A seed: it reaches numpy's legacy generator (scikit-learn's splits), which takes 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Where MLflow runs may be logged: a tracking server (MLflow 3 refuses new file stores).
MLFLOW_SCHEMES = ("http", "https")


class Settings(BaseSettings):
    """Every knob of loanrisk, each settable as ``LOANRISK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LOANRISK_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = Field(
        "development",
        description="'production' refuses insecure settings (e.g. S3 over plain HTTP).",
    )
    storage: str = Field(
        "./loanrisk-data",
        description=(
            "Root of all stored data: a local directory (an Azure File share is a mounted "
            "directory) or s3://bucket/prefix. Every caller-supplied path is confined to it."
        ),
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (e.g. MinIO, SeaweedFS); None means AWS S3.",
    )
    s3_region: str | None = Field(None, description="S3 region; None lets boto3 decide.")
    azure_connection_string: SecretStr | None = Field(
        None,
        description="Azure Storage connection string for az:// storage (e.g. Azurite's).",
    )
    azure_account_name: str | None = Field(
        None,
        description=(
            "Azure Storage account for az:// storage without a connection string; credentials "
            "then come from the environment (managed identity, workload identity, az login)."
        ),
    )
    nthread: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="Threads for training; default: the cores this process may use.",
    )
    backend: Literal["auto", "onedal", "xgboost"] = Field(
        "auto", description="Scoring backend: auto = oneDAL when daal4py is importable."
    )
    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Decision threshold: label = probability > threshold."
    )
    band_cutoffs: tuple[float, ...] = Field(
        (0.2, 0.5), description="Risk band cut-offs, ascending (JSON list in the environment)."
    )
    band_names: tuple[str, ...] = Field(
        ("low", "medium", "high"), description="Risk band names, one more than the cut-offs."
    )
    model_name: str = Field("loan-default", description="Model the service scores with.")
    model_alias: str = Field(
        "production", description="Alias (or 'latest') of that model the service follows."
    )
    model_directory: str = Field("models", description="Directory of the storage with models.")
    shadow_alias: str | None = Field(
        None,
        description=(
            "Also score every request with this alias's version (e.g. 'challenger'), off the "
            "response path: its answers go to the prediction log with role 'shadow', never "
            "to the caller (docs/champion-challenger.md)."
        ),
    )
    canary: str | None = Field(
        None,
        description=(
            "'<alias>:<percent>' (e.g. 'challenger:10'): that share of loans is answered by "
            "the alias's version, sticky by a hash of the loan id."
        ),
    )
    shadow_max_queued_rows: int = Field(
        2_000,
        ge=1,
        description=(
            "Most loans a worker has handed to its shadow process and not yet seen scored; "
            "more are dropped, counted."
        ),
    )
    compare_max_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="Most held-out loans a comparison scores (a seeded sample beyond).",
    )
    lda_auc_loss: float = Field(
        0.005,  # loanrisk.defaults.LDA_AUC_LOSS, which the command line's help shows
        ge=0,
        le=0.1,
        description=(
            "The search for a less discriminatory alternative (loanrisk tune --fairness): the "
            "cross-validated AUC an alternative may lose against the best trial "
            "(docs/fairness.md)."
        ),
    )
    lda_min_air_gain: float = Field(
        0.02,  # loanrisk.defaults.LDA_MIN_AIR_GAIN
        gt=0,
        le=1,
        description=(
            "The gain of adverse impact ratio (capped at 1) at which an alternative's AIR is "
            "materially higher than the best trial's (docs/fairness.md)."
        ),
    )
    binning_max_rows: int = Field(
        200_000,
        ge=100,
        description=(
            "Most training loans a characteristic analysis (optimal binning, WoE, IV) fits "
            "on: a seeded sample of this many beyond (docs/scorecard.md)."
        ),
    )
    binning_max_bins: int = Field(
        10, ge=2, le=50, description="Most regular bins of one attribute in optimal binning."
    )
    reload_interval: float = Field(
        5.0, gt=0, description="Seconds between checks for a moved alias (hot reload)."
    )
    max_records: int = Field(10_000, ge=1, description="Most loans in one JSON request.")
    max_size: int = Field(
        20_000_000,
        ge=1,
        description=(
            "Largest expansion size a request may ask for (rows; 422 beyond). Expansion holds "
            "about 0.2 GiB per million rows."
        ),
    )
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seed of expansion, splitting and the built-in sample."
    )
    test_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of rows held out as the test split."
    )

    host: str = Field("127.0.0.1", description="Address `loanrisk serve` binds.")
    port: int = Field(5000, ge=1, le=65535, description="Port (the reference's container port).")
    workers: int = Field(1, ge=1, description="Server worker processes (one per core).")
    grpc_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Also serve the Open Inference Protocol over gRPC on this port (docs/oip.md).",
    )
    worker_healthcheck_timeout: int = Field(
        60,
        ge=5,
        description=(
            "Seconds a worker may leave the supervisor's health check unanswered before it is "
            "replaced. A starting worker imports the ML libraries and converts the model; on "
            "a busy machine that can stall its answer past uvicorn's default of 5 s."
        ),
    )
    api_keys: tuple[SecretStr, ...] = Field(
        (),
        description=(
            "API keys as 'scope:key' or 'scope:sha256:<hex digest of key>' (scope 'score' or "
            "'admin'), optionally named 'name=scope:key' (alias histories record the name); "
            "a JSON list in the environment. None and no file: the service runs open."
        ),
    )
    api_keys_file: Path | None = Field(
        None,
        description="A mounted secret file with one 'scope:key' (or hashed) entry per line.",
    )
    max_inline_rows: int = Field(
        10_000,
        ge=1,
        description=(
            "Most results the reference's CSV /predict answers inline; the results file on "
            "the storage holds every row, and the answer says where."
        ),
    )
    max_request_bytes: int = Field(
        32 * 2**20, ge=1024, description="Largest JSON request body (413 beyond)."
    )
    max_upload_bytes: int = Field(
        4 * 2**30, ge=1024, description="Largest upload (multipart file or CSV body; 413 beyond)."
    )
    # -- bounded, cancellable scoring work (docs/service.md, "Limits") --
    max_request_work: int = Field(
        2_000_000,
        ge=1,
        description=(
            "Most work one scoring request may ask for, in loan-units: a loan scored costs 1, "
            "with reasons (explain or decline_reasons) 150. Counted before scoring (a CSV body "
            "by its lines); 413 beyond, naming the bound and the cost. Bigger files: a batch "
            "job (POST /v1/batch-predictions)."
        ),
    )
    score_chunk_work: int = Field(
        15_000,
        ge=1,
        description=(
            "Loan-units scored between two checks that the client is still there: 100 loans "
            "with reasons (a chunk costs about 16 ms more with reasons, under 2% of 100 "
            "loans' on a 500-tree model). A request of more is scored in chunks; a disconnect "
            "stops it at the next one, and nothing of it is counted or logged."
        ),
    )
    max_parsing_bytes: int = Field(
        32 * 2**20,
        ge=1024,
        description=(
            "Bytes of JSON request bodies one worker parses and holds at once, from parsing "
            "until the answer is made (parsing makes up to ~25 times a body's size in "
            "objects: a worker's parsing peaks near 25 times this). A body beyond waits up "
            "to parse_wait_seconds, then 429 with Retry-After; a body alone always fits."
        ),
    )
    parse_wait_seconds: float = Field(
        10.0, ge=0, le=600, description="Seconds a JSON body may wait for max_parsing_bytes."
    )
    mount_path: str = Field(
        "/loan_app/azure-fileshare",
        description=(
            "The path the reference's clients send as az_file_path (its file-share mount); "
            "it stands for the storage root, so their requests work unchanged on any storage."
        ),
    )
    buckets: tuple[str, ...] = Field(
        ("loan-default",),
        description=(
            "Bucket names the reference's clients may send; each stands for the storage root "
            "(an s3:// storage's own bucket is always allowed). Any other bucket is refused."
        ),
    )
    job_directory: str = Field("jobs", description="Directory of the storage with job records.")
    schema_directory: str = Field(
        "schemas", description="Directory of the storage with named loan schemas."
    )
    prediction_log: bool = Field(
        True, description="Record every scored loan in the prediction log (docs/monitoring.md)."
    )
    log_directory: str = Field(
        "prediction-log", description="Directory of the storage with the prediction log."
    )
    log_flush_seconds: float = Field(
        5.0, gt=0, le=3600, description="Seconds between writes of the buffered log records."
    )
    log_flush_rows: int = Field(
        10_000, ge=1, description="Buffered log records that trigger a write before the interval."
    )
    log_max_buffered_rows: int = Field(
        200_000, ge=1, description="Most log records held in memory; more are dropped, counted."
    )
    # -- the prediction log's write-ahead files (docs/monitoring.md, "What survives a fault") --
    log_write_ahead: bool = Field(
        True,
        description=(
            "Before a server worker answers, append the log rows of its answer to a local "
            "write-ahead file, recovered into the log when the service next starts: a killed "
            "process loses no answered loan. Off: a kill loses what was buffered."
        ),
    )
    log_wal_directory: str | None = Field(
        None,
        description=(
            "Local directory of the write-ahead files (a local disk; in Kubernetes an emptyDir "
            "volume). None: '.wal' in a local storage's directory, or loanrisk-wal in the "
            "system's temporary directory for s3:// and az:// storage."
        ),
    )
    log_retention_days: int = Field(
        762,
        ge=1,
        le=36_600,
        description=(
            "Days a model's prediction-log rows are kept; the daily compaction "
            "(`loanrisk monitor compact`) removes older ones. 762 days is 25 months at their "
            "longest: Regulation B (12 CFR 1002.12(b)) has lenders keep application records "
            "25 months after notifying the applicant; GDPR Art. 5(1)(e) asks for no longer "
            "than needed."
        ),
    )
    log_retention_by_model: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Per-model retention in days, over log_retention_days (a JSON object in the "
            'environment, e.g. {"loan-default": 1100}).'
        ),
    )
    log_pii: Literal["hash", "drop"] = Field(
        "drop",
        description=(
            "How the prediction log stores the fields a schema declares 'pii: true': 'drop' "
            "leaves them out; 'hash' stores a keyed HMAC-SHA256 of the value (joinable, not "
            "readable), which needs log_pii_key."
        ),
    )
    log_pii_key: SecretStr | None = Field(
        None,
        description=(
            "Secret key (at least 32 characters, the same on every replica) of the "
            "HMAC-SHA256 that log_pii 'hash' stores, and of the loan-id hash an erasure's "
            "audit record keeps."
        ),
    )
    outcome_directory: str = Field(
        "outcomes", description="Directory of the storage with loan outcomes."
    )
    max_outcome_rows: int = Field(
        1_000_000, ge=1, description="Most outcomes in one upload (POST /v1/outcomes, CLI)."
    )
    drift_interval: float = Field(
        300.0, ge=0, description="Seconds between refreshes of the loanrisk_psi gauges (0: off)."
    )
    backtest_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between refreshes of the loanrisk_backtest_light gauges (0: off): "
        "each reads the served version's last 365 days of log and every outcome, off the "
        "event loop, one refresh at a time.",
    )
    fairness_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between refreshes of the loanrisk_air gauges (0: off): each "
        "reads the served version's last 365 days of log (at most monitor_max_rows loans) and "
        "every outcome, off the event loop, one refresh at a time.",
    )
    monitor_max_rows: int = Field(
        200_000,
        ge=1_000,
        description=(
            "Most logged loans a drift, performance, fairness or live-comparison report reads; "
            "past it, a uniform sample of them (the report says so, and still counts them all)."
        ),
    )
    drift_window_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="Hours of the prediction log the gauges cover."
    )
    results_directory: str = Field(
        "predictions",
        description=(
            "Directory of the storage that batch-scoring results go to; a client's output "
            "path is placed inside it and never replaces an existing file."
        ),
    )
    max_jobs: int = Field(
        1, ge=1, description="Jobs (data, training, batch scoring) one replica runs at once."
    )
    max_queued_jobs: int = Field(
        8,
        ge=0,
        description="Jobs one replica keeps waiting for a slot; beyond, 429 with Retry-After.",
    )
    job_heartbeat: float = Field(
        2.0, gt=0, description="Seconds between heartbeats of a running job's record."
    )
    job_stale_after: float = Field(
        30.0, gt=0, description="A job without a heartbeat for this long is marked failed."
    )
    dask_scheduler: str | None = Field(
        None,
        pattern=r"^(tcp|tls)://[A-Za-z0-9.\-\[\]:]+$",
        description="Dask scheduler (tcp://host:8786) that batch-scoring jobs of Parquet files "
        "run on; their results are then a folder of partitioned Parquet. None: in-process.",
    )
    monotone: bool = Field(
        False,
        description="Train with the schema's directions of risk as monotone constraints "
        "(a request's own choice wins).",
    )
    calibration: CalibrationChoice = Field(
        "none",
        description="Calibration a training fits on a held-out split of its training rows "
        "and stores with the version (a request's own choice wins).",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description=(
            "MLflow tracking server (http:// or https://) that every "
            "training logs its run to; None: no MLflow. Needs the mlflow extra."
        ),
    )
    mlflow_experiment: str | None = Field(
        None, max_length=500, description="MLflow experiment of the runs [the model's name]."
    )
    mlflow_register: bool = Field(
        False,
        description="Also register each trained version in MLflow's model registry, with the "
        "loanrisk aliases that point at it mirrored.",
    )
    mlflow_timeout: float = Field(
        10.0, gt=0, le=600, description="Seconds one MLflow request may take before it fails."
    )

    @field_validator("shadow_alias")
    @classmethod
    def _alias_name(cls, value: str | None) -> str | None:
        if value is not None and (not _ALIAS.match(value) or ".." in value):
            raise ValueError("an alias name: letters, digits, '.', '_' or '-' (max 64)")
        return value

    @field_validator("canary")
    @classmethod
    def _canary_split(cls, value: str | None) -> str | None:
        if value is not None:
            alias, _, percent = value.rpartition(":")
            try:
                share = float(percent)
            except ValueError:
                share = -1.0
            if not _ALIAS.match(alias) or ".." in alias or not 0 < share <= 100:
                raise ValueError("'<alias>:<percent>', e.g. 'challenger:10' (0 < percent <= 100)")
        return value

    @field_validator("log_retention_by_model")
    @classmethod
    def _retention_per_model(cls, value: dict[str, int]) -> dict[str, int]:
        for model, days in value.items():
            if not _ALIAS.match(model) or ".." in model:
                raise ValueError(f"{model[:80]!r} is not a model name")
            if not 1 <= days <= 36_600:
                raise ValueError(f"{model}: retention of 1 to 36600 days, not {days}")
        return value

    @field_validator("log_pii_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("at least 32 characters")
        return value

    def retention_days(self, model: str) -> int:
        """Days ``model``'s prediction-log rows are kept (its override, or the default)."""
        return self.log_retention_by_model.get(model, self.log_retention_days)

    @property
    def canary_split(self) -> tuple[str, float] | None:
        """The canary setting as (alias, percent of loans), or None."""
        if self.canary is None:
            return None
        alias, _, percent = self.canary.rpartition(":")
        return alias, float(percent)

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else "file"
        if scheme not in {"file", "s3", "az", "abfs", "memory"}:
            raise ValueError(
                f"unsupported storage scheme {scheme!r}: use a directory, s3:// or az://"
            )
        return value

    @field_validator("log_wal_directory")
    @classmethod
    def _local_directory(cls, value: str | None) -> str | None:
        if value is not None and ("://" in value or not value.strip() or "\x00" in value):
            raise ValueError("a local directory (the write-ahead files need a local disk)")
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0] not in MLFLOW_SCHEMES:
            raise ValueError(f"an MLflow tracking URI: {', '.join(MLFLOW_SCHEMES)}")
        return value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment == "production" and (self.s3_endpoint_url or "").startswith("http://"):
            raise ValueError("production refuses a plain-HTTP S3 endpoint; use https://")
        if self.environment == "production" and self.storage.startswith("memory://"):
            raise ValueError("production refuses in-memory storage: nothing would survive")
        secret = self.azure_connection_string
        plain_http = (
            secret is not None and "DefaultEndpointsProtocol=http;" in secret.get_secret_value()
        )
        if self.environment == "production" and plain_http:
            raise ValueError("production refuses a plain-HTTP Azure endpoint; use https")
        areas = {
            "model_directory": self.model_directory,
            "job_directory": self.job_directory,
            "results_directory": self.results_directory,
            "schema_directory": self.schema_directory,
            "log_directory": self.log_directory,
            "outcome_directory": self.outcome_directory,
        }
        for name, area in areas.items():
            for other, there in areas.items():
                if name < other and _overlap(area, there):
                    raise ValueError(f"{name} and {other} must not overlap ({area!r}, {there!r})")
        split = self.canary_split
        for setting, alias in (
            ("shadow_alias", self.shadow_alias),
            ("canary", split[0] if split else None),
        ):
            if alias in (self.model_alias, "latest"):
                raise ValueError(f"{setting} must name another alias than model_alias")
        if self.log_pii == "hash" and self.log_pii_key is None:
            raise ValueError("log_pii 'hash' needs log_pii_key (or choose log_pii 'drop')")
        if self.job_stale_after <= 2 * self.job_heartbeat:
            raise ValueError("job_stale_after must exceed two job heartbeats")
        return self


def _overlap(one: str, other: str) -> bool:
    a, b = one.strip("/"), other.strip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b
