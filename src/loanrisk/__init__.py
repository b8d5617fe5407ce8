"""loanrisk: loan default risk, from raw CSV to a served model.

The public API of the library; the CLI and the HTTP service are thin front ends over it.
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
    Conflict,
    InvalidInput,
    LoanRiskError,
    NotFound,
    PathNotAllowed,
    StorageError,
)
from loanrisk.features.fit import fit_feature_spec
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.schema import Validated, validate_frame, validate_records
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage

__all__ = [
    "Conflict",
    "DatasetCatalogue",
    "FeatureSpec",
    "FeatureTransformer",
    "FsspecStorage",
    "InvalidInput",
    "LoanRiskError",
    "MemoryStorage",
    "NotFound",
    "PathNotAllowed",
    "Settings",
    "Storage",
    "StorageError",
    "Validated",
    "__version__",
    "expand",
    "fit_feature_spec",
    "generate_sample",
    "open_storage",
    "process_dataset",
    "read_csv",
    "read_parquet",
    "split_frame",
    "validate_frame",
    "validate_records",
]
