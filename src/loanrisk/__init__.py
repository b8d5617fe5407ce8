"""loanrisk: loan default risk, from raw CSV to a served model.

The public API of the library; the CLI and the HTTP service (``loanrisk.service``, not
imported here: the library never imports FastAPI) are thin front ends over it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loanrisk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.expand import expand
from loanrisk.data.ingest import read_csv, read_parquet
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.data.split import split_frame
from loanrisk.errors import (
    Cancelled,
    Conflict,
    InvalidInput,
    LoanRiskError,
    NotFound,
    PathNotAllowed,
    StorageError,
    TooLarge,
)
from loanrisk.features.fit import fit_feature_spec
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.cache import ModelCache
from loanrisk.inference.scorer import Bands, Scorer
from loanrisk.registry import LoadedModel, ModelRegistry
from loanrisk.schema import Validated, validate_frame, validate_records
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
from loanrisk.training.evaluate import evaluate
from loanrisk.training.job import TrainingRequest, TrainingResult, run_training
from loanrisk.training.runner import train_in_subprocess

__all__ = [
    "Bands",
    "Cancelled",
    "Conflict",
    "DatasetCatalogue",
    "FeatureSpec",
    "FeatureTransformer",
    "FsspecStorage",
    "InvalidInput",
    "LoadedModel",
    "LoanRiskError",
    "MemoryStorage",
    "ModelCache",
    "ModelRegistry",
    "NotFound",
    "PathNotAllowed",
    "Scorer",
    "Settings",
    "Storage",
    "StorageError",
    "TooLarge",
    "TrainingRequest",
    "TrainingResult",
    "Validated",
    "__version__",
    "evaluate",
    "expand",
    "fit_feature_spec",
    "generate_sample",
    "open_storage",
    "process_dataset",
    "read_csv",
    "read_parquet",
    "run_training",
    "split_frame",
    "train_in_subprocess",
    "validate_frame",
    "validate_records",
]
