"""The runtime of a model version's kind (:mod:`.kinds`): the one place a scorer picks it."""

from __future__ import annotations

from loanrisk.inference.backends import BackendChoice
from loanrisk.inference.kinds import Runtime, xgboost_runtime
from loanrisk.inference.scorecard import scorecard_runtime
from loanrisk.registry.models import LoadedModel


def runtime_of(model: LoadedModel, *, backend: BackendChoice, nthread: int) -> Runtime:
    """The runtime of ``model``'s kind (``backend`` and ``nthread`` concern XGBoost only: a
    scorecard is a table lookup in numpy)."""
    if model.scorecard is not None:
        return scorecard_runtime(model, model.scorecard)
    return xgboost_runtime(model, backend=backend, nthread=nthread)
