"""loanrisk: loan default risk, from raw CSV to a served model.

The public API of the library; the CLI and the HTTP service (``loanrisk.service``, not
imported here: the library never imports FastAPI) are thin front ends over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk._version import __version__
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
    from loanrisk.inference.scorer import Bands, BatchOptions, Scorer
    from loanrisk.jobs.training import train_in_subprocess
    from loanrisk.registry import LoadedModel, ModelRegistry
    from loanrisk.schema import (
        LoanSchema,
        Validated,
        builtin_schema,
        read_schema,
        validate_frame,
        validate_records,
    )
    from loanrisk.schema.infer import infer_schema
    from loanrisk.settings import Settings
    from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
    from loanrisk.training.evaluate import evaluate
    from loanrisk.training.job import TrainingRequest, TrainingResult, run_training

#: Where each public name lives. Imported on first use, so that importing a light module
#: (``loanrisk.errors``, ``loanrisk.settings``) never loads pandas, scikit-learn or xgboost.
_LAZY = {
    # Looked up in the installed metadata (importlib.metadata: ~40 ms) only when asked for.
    "__version__": "loanrisk._version",
    "Bands": "loanrisk.inference.scorer",
    "BatchOptions": "loanrisk.inference.scorer",
    "Cancelled": "loanrisk.errors",
    "Conflict": "loanrisk.errors",
    "DatasetCatalogue": "loanrisk.data.datasets",
    "FeatureSpec": "loanrisk.features.spec",
    "FeatureTransformer": "loanrisk.features.transform",
    "FsspecStorage": "loanrisk.storage",
    "InvalidInput": "loanrisk.errors",
    "LoadedModel": "loanrisk.registry",
    "LoanRiskError": "loanrisk.errors",
    "LoanSchema": "loanrisk.schema",
    "MemoryStorage": "loanrisk.storage",
    "ModelCache": "loanrisk.inference.cache",
    "ModelRegistry": "loanrisk.registry",
    "NotFound": "loanrisk.errors",
    "PathNotAllowed": "loanrisk.errors",
    "Scorer": "loanrisk.inference.scorer",
    "Settings": "loanrisk.settings",
    "Storage": "loanrisk.storage",
    "StorageError": "loanrisk.errors",
    "TooLarge": "loanrisk.errors",
    "TrainingRequest": "loanrisk.training.job",
    "TrainingResult": "loanrisk.training.job",
    "Validated": "loanrisk.schema",
    "builtin_schema": "loanrisk.schema",
    "evaluate": "loanrisk.training.evaluate",
    "expand": "loanrisk.data.expand",
    "fit_feature_spec": "loanrisk.features.fit",
    "generate_sample": "loanrisk.data.sample",
    "infer_schema": "loanrisk.schema.infer",
    "open_storage": "loanrisk.storage",
    "process_dataset": "loanrisk.data.process",
    "read_csv": "loanrisk.data.ingest",
    "read_parquet": "loanrisk.data.ingest",
    "read_schema": "loanrisk.schema",
    "run_training": "loanrisk.training.job",
    "split_frame": "loanrisk.data.split",
    "train_in_subprocess": "loanrisk.jobs.training",
    "validate_frame": "loanrisk.schema",
    "validate_records": "loanrisk.schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loanrisk' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Bands",
    "BatchOptions",
    "Cancelled",
    "Conflict",
    "DatasetCatalogue",
    "FeatureSpec",
    "FeatureTransformer",
    "FsspecStorage",
    "InvalidInput",
    "LoadedModel",
    "LoanRiskError",
    "LoanSchema",
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
    "builtin_schema",
    "evaluate",
    "expand",
    "fit_feature_spec",
    "generate_sample",
    "infer_schema",
    "open_storage",
    "process_dataset",
    "read_csv",
    "read_parquet",
    "read_schema",
    "run_training",
    "split_frame",
    "train_in_subprocess",
    "validate_frame",
    "validate_records",
]
