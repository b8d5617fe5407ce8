"""Model kinds behind one scorer (DESIGN principle 21): what differs between an XGBoost
version and a scorecard is how a cleaned loan becomes the model's input (:class:`Encoder`),
how that input becomes a probability of default (the :class:`~.backends.Backend`) and how its
reasons are found (:class:`Explainer`). The :class:`~loanrisk.inference.scorer.Scorer` does
everything else (validation, policy, bands, grades, points, batches) the same for every kind.

- ``xgboost``: the version's FeatureSpec encodes (numpy, :mod:`loanrisk.features.transform`),
  oneDAL or XGBoost predicts (:mod:`.backends`), TreeSHAP gives the reasons (:mod:`.explain`).
- ``scorecard``: each attribute's bin index is the input, the points table gives the score and
  the PD, points lost against each attribute's best bin give the reasons (:mod:`.scorecard`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from loanrisk.features.transform import FeatureTransformer
from loanrisk.inference.backends import Backend, BackendChoice, Fallback, make_backend
from loanrisk.inference.explain import reason_codes
from loanrisk.inference.records import CleanRecord, ReasonValues, SpecialCode
from loanrisk.inference.results import Reason
from loanrisk.registry.models import LoadedModel
from loanrisk.schema import Validated

#: The declared special codes a frame's validated loans held: column -> loan index -> code
#: (computed only when an encoder asks: validation has scored them as missing).
SpecialCodes = Callable[[], Mapping[str, Mapping[int, SpecialCode]]]


class Encoder(Protocol):
    """Cleaned loans as the model's input matrix (float32, one row per loan)."""

    def encode_record(self, clean: CleanRecord) -> list[float]:
        """One cleaned loan's row."""
        ...

    def encode_frame(self, loans: Validated, special: SpecialCodes) -> np.ndarray:
        """The rows of a validated frame's loans."""
        ...


class Explainer(Protocol):
    def __call__(
        self, features: np.ndarray, values: Sequence[ReasonValues], *, top_k: int
    ) -> list[list[Reason]]:
        """Per encoded row, up to ``top_k`` reasons, the strongest first."""
        ...


@dataclass(frozen=True)
class SpecEncoder:
    """The XGBoost kind's encoder: the version's FeatureSpec, in numpy."""

    transformer: FeatureTransformer

    def encode_record(self, clean: CleanRecord) -> list[float]:
        return self.transformer.transform_record(clean.values)

    def encode_frame(self, loans: Validated, special: SpecialCodes) -> np.ndarray:
        return self.transformer.transform(loans.frame, dtype=np.float32)


@dataclass(frozen=True)
class Runtime:
    """A version's kind at work: its encoder, backend (and why not oneDAL) and explainer;
    ``missing_as`` says, per attribute, what a missing value is scored as (None: as the
    FeatureSpec says)."""

    encoder: Encoder
    backend: Backend
    fallback: Fallback | None
    explain: Explainer
    missing_as: dict[str, str] | None = None


def xgboost_runtime(model: LoadedModel, *, backend: BackendChoice, nthread: int) -> Runtime:
    """The XGBoost kind's runtime for ``model``: its FeatureSpec, the backend ``backend``
    asks for (oneDAL checked against XGBoost, :func:`~.backends.make_backend`), TreeSHAP
    reasons."""
    booster = model.require_booster("scoring")
    chosen, fallback = make_backend(
        booster, model.spec, choice=backend, nthread=nthread, calibration=model.calibration
    )

    def explain(
        features: np.ndarray, values: Sequence[ReasonValues], *, top_k: int
    ) -> list[list[Reason]]:
        return reason_codes(
            booster,
            model.spec,
            features,
            values,
            top_k=top_k,
            schema=model.schema,
            catalog=model.reasons,
            scaling=model.scaling,
        )

    return Runtime(SpecEncoder(FeatureTransformer(model.spec)), chosen, fallback, explain)
