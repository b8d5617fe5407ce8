"""The ``python_function`` flavour of an exported model (:mod:`loanrisk.interop.mlflow_model`).

MLflow imports this module from the model's own ``code/`` copy of loanrisk and calls
:func:`_load_pyfunc` with the model's data directory: a registry holding the one version
(every file checked against its manifest's hash, as the service loads it) and ``pyfunc.json``
(which version, the threshold and the bands). Nothing is unpickled. ``predict`` takes raw loans
as a frame and returns loanrisk's own scoring of them: ``probability``, ``label``, ``band``,
``grade`` (the version's master scale, :mod:`loanrisk.registry.masterscale`) and ``score``
(points of the version's scaling, :mod:`loanrisk.registry.scaling`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from loanrisk.inference.scorer import Bands, Scorer
from loanrisk.registry.models import ModelRegistry
from loanrisk.storage.fs import FsspecStorage

PYFUNC_FILE = "pyfunc.json"
#: The registry directory inside the model's data directory.
MODELS = "models"
OUTPUTS = ("probability", "label", "band", "grade", "score")


class PyfuncConfig(BaseModel):
    """``pyfunc.json``: the version the data directory holds and how it labels loans."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: int
    threshold: float
    band_cutoffs: tuple[float, ...]
    band_names: tuple[str, ...]


class LoanRiskPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: one version's :class:`Scorer`."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Raw loans (a frame, or records) -> ``probability``, ``label``, ``band``, ``grade``
        (the version's master scale) and ``score`` (whole points of its scaling, int64) per
        loan, in order; a loan failing the version's schema
        raises, naming the row and the field."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        results, _ = self.scorer.score_frame(frame.reset_index(drop=True))
        return results.loc[:, list(OUTPUTS)].reset_index(drop=True)


def load(path: str | Path) -> LoanRiskPyfunc:
    """The model in data directory ``path``, verified and ready to score."""
    config = PyfuncConfig.model_validate_json(Path(path, PYFUNC_FILE).read_bytes())
    registry = ModelRegistry(FsspecStorage(str(path)), MODELS)
    loaded = registry.load(config.model, config.version)
    bands = Bands(config.band_cutoffs, config.band_names)
    scorer = Scorer(loaded, nthread=os.cpu_count() or 1, threshold=config.threshold, bands=bands)
    return LoanRiskPyfunc(scorer)


def _load_pyfunc(path: str) -> LoanRiskPyfunc:
    """MLflow's entry point for a ``loader_module``."""
    return load(path)
