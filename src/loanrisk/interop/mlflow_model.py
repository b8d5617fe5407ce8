"""``loanrisk models export NAME@VERSION --format mlflow DIR``: a version as an MLflow model.

The directory MLflow's tools read (``mlflow.pyfunc.load_model``, ``mlflow models serve``)::

    DIR/MLmodel                     flavours python_function and xgboost, signature, example
    DIR/data/loanrisk/pyfunc.json   the version, threshold and bands the pyfunc scores with
    DIR/data/loanrisk/models/...    a registry with the one version, files as published
    DIR/code/loanrisk/              loanrisk's modules, put on sys.path by MLflow
    DIR/requirements.txt, python_env.yaml, conda.yaml   loanrisk's requirements, pinned

The ``python_function`` flavour (:mod:`loanrisk.interop.mlflow_pyfunc`) validates raw loans
against the version's schema, applies its FeatureSpec and scores with its booster: the same
probabilities as loanrisk. The ``xgboost`` flavour is the booster alone, for tools that want
the trees (it scores encoded features, not raw loans). Nothing is pickled. The export is
written beside ``DIR`` and renamed into place: a failed export leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import xgboost as xgb

from loanrisk.errors import InvalidInput
from loanrisk.interop.mlflow_pyfunc import MODELS, PYFUNC_FILE, PyfuncConfig
from loanrisk.registry.models import MODEL_FILE, ModelRegistry
from loanrisk.registry.policy import served_policy
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import NUMBER_TYPES
from loanrisk.settings import Settings
from loanrisk.storage.fs import FsspecStorage

LOADER_MODULE = "loanrisk.interop.mlflow_pyfunc"
#: Package folders the scoring code never reads: the console's pages and assets.
_NOT_CODE = ("static", "templates", "__pycache__", "*.pyc")


def require_mlflow() -> ModuleType:
    """The mlflow module, or a clear error naming the extra to install."""
    try:
        import mlflow
    except ImportError:
        raise InvalidInput(
            "MLflow is not installed: pip install 'loanrisk[mlflow]' (or -r "
            "requirements/mlflow.lock)"
        ) from None
    return mlflow


def signature(schema: LoanSchema) -> Any:
    """Inputs: the schema's features, a feature that may be missing optional. Categories are
    text; numbers are ``Any``: MLflow would refuse an int64 column (what ``pd.read_csv`` makes
    of whole numbers) for ``double``, and the schema's own validation checks every value.
    Outputs: probability, label, band, grade and score (whole points, long)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    number = AnyType()  # type: ignore[no-untyped-call]
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(
            number if c.type in NUMBER_TYPES else "string", c.name, required=c.missing == "refuse"
        )
        for c in schema.features
    ]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("double", "probability"),
        ColSpec("boolean", "label"),
        ColSpec("string", "band"),
        ColSpec("string", "grade"),
        ColSpec("long", "score"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(schema: LoanSchema) -> pd.DataFrame:
    """One loan made of the schema's declared examples."""
    record = schema.example_record()
    numbers = {c.name for c in schema.features if c.type in NUMBER_TYPES}
    return pd.DataFrame([{k: float(v) if k in numbers else str(v) for k, v in record.items()}])


def requirements() -> list[str]:
    """loanrisk's own requirements and MLflow's client, pinned to the versions installed here."""
    pinned = []
    for requirement in importlib.metadata.requires("loanrisk") or []:
        if "extra ==" in requirement:
            continue
        name = requirement.split(";")[0].split("[")[0]
        for mark in "<>=!~ ":
            name = name.split(mark)[0]
        pinned.append(f"{name}=={importlib.metadata.version(name)}")
    # The client part of MLflow suffices to load and serve the model (full mlflow pins an
    # older pyarrow than loanrisk's).
    return [*pinned, f"mlflow-skinny=={importlib.metadata.version('mlflow-skinny')}"]


def export_mlflow(
    registry: ModelRegistry, name: str, ref: str | int, directory: Path, settings: Settings
) -> Path:
    """Write version ``ref`` of ``name`` as an MLflow model in ``directory`` (new or empty)."""
    mlflow = require_mlflow()
    from mlflow.models import Model

    directory = directory.absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInput(f"{directory} exists and is not an empty directory")
    version = registry.resolve(name, ref)
    loaded = registry.load(name, version)  # every file against its hash
    policy = served_policy(loaded.manifest.policy, settings).policy  # as the service would
    config = PyfuncConfig(
        model=name,
        version=version,
        threshold=policy.threshold,
        band_cutoffs=policy.band_cutoffs,
        band_names=policy.band_names,
    )
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}.") as tmp:
        data = Path(tmp, "loanrisk")
        one = ModelRegistry(FsspecStorage(str(data)), MODELS)  # the version alone, verified
        one.add_version(name, version, registry.version_files(name, version))
        Path(data, PYFUNC_FILE).write_text(config.model_dump_json(indent=2) + "\n")
        code = Path(tmp, "code", "loanrisk")
        shutil.copytree(Path(__file__).parents[1], code, ignore=shutil.ignore_patterns(*_NOT_CODE))
        model = Model(metadata={"loanrisk_model": name, "loanrisk_version": str(version)})
        if loaded.booster is not None:  # a scorecard has no booster: the pyfunc flavour alone
            booster = f"data/loanrisk/{MODELS}/{name}/versions/{version}/{MODEL_FILE}"
            model.add_flavor(
                "xgboost",
                xgb_version=xgb.__version__,
                data=booster,
                code=None,
                model_class="xgboost.core.Booster",
                model_format="ubj",
            )
        staged = Path(tmp, "model")
        mlflow.pyfunc.save_model(
            str(staged),
            loader_module=LOADER_MODULE,
            data_path=str(data),
            code_paths=[str(code)],
            mlflow_model=model,
            signature=signature(loaded.schema),
            input_example=input_example(loaded.schema),
            pip_requirements=requirements(),
        )
        os.replace(staged, directory)
    return directory
