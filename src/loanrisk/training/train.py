"""Training an XGBoost booster: the reference's parameters, progress and cancellation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb

from loanrisk.errors import Cancelled, InvalidInput

if TYPE_CHECKING:
    from pydantic import JsonValue

#: The reference's model (REFERENCE.md, pipeline step 4); every entry can be overridden.
DEFAULT_PARAMS: dict[str, str | float] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "learning_rate": 0.02,
    "max_depth": 10,
    "min_child_weight": 6,
}


@dataclass(frozen=True)
class RoundProgress:
    """Progress of one training: round ``done`` of ``total`` (new rounds, not the parent's)."""

    done: int
    total: int
    elapsed: float
    eta: float
    metrics: dict[str, float]


def parse_param(text: str) -> tuple[str, Any]:
    """``"max_depth=6"`` -> ``("max_depth", 6)``; values are read as JSON when they parse."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"parameter {text!r} is not of the form key=value")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


#: The boosters a version can be served with: trees (oneDAL and XGBoost score both).
TREE_BOOSTERS = ("gbtree", "dart")


def check_params(params: dict[str, JsonValue]) -> None:
    """Refuse parameters that would train a model no backend serves as a probability of
    default: a booster other than trees (``gblinear``), an objective other than
    ``binary:logistic``, or a ``num_class`` (a loan defaults or not). :class:`InvalidInput`
    naming the parameter (``params.<name>``)."""
    booster = params.get("booster", "gbtree")
    if booster not in TREE_BOOSTERS:
        raise InvalidInput(
            f"params.booster {booster!r} cannot be served: use {' or '.join(TREE_BOOSTERS)}",
            details={"field": "params.booster"},
        )
    objective = params.get("objective", DEFAULT_PARAMS["objective"])
    if objective != DEFAULT_PARAMS["objective"]:
        raise InvalidInput(
            f"params.objective {objective!r}: the model scores a probability of default "
            f"({DEFAULT_PARAMS['objective']})",
            details={"field": "params.objective"},
        )
    if "num_class" in params and params["num_class"] not in (None, 1):
        raise InvalidInput(
            f"params.num_class {params['num_class']!r}: a loan defaults or not (two classes, "
            "a binary objective); leave num_class out",
            details={"field": "params.num_class"},
        )


class ProgressCallback(xgb.callback.TrainingCallback):
    """Reports each round to ``report`` and stops the training when ``should_cancel()``."""

    def __init__(
        self,
        total: int,
        report: Callable[[RoundProgress], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        super().__init__()
        self.total = total
        self.report = report
        self.should_cancel = should_cancel
        self.cancelled = False
        self._start = 0.0
        self._done = 0

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        self._start = time.perf_counter()
        self._done = 0
        return model

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        # Counted here: xgboost's epoch numbering differs when continuing from a model.
        self._done += 1
        done = self._done
        if self.report is not None:
            elapsed = time.perf_counter() - self._start
            metrics = {
                f"{data}-{metric}": float(values[-1])
                for data, by_metric in evals_log.items()
                for metric, values in by_metric.items()
            }
            eta = elapsed / done * (self.total - done)
            self.report(RoundProgress(done, self.total, elapsed, eta, metrics))
        if self.should_cancel is not None and self.should_cancel():
            self.cancelled = True
            return True
        return False


@dataclass(frozen=True)
class TrainOutcome:
    booster: xgb.Booster
    rounds: int
    best_iteration: int | None
    seconds: float


def train_booster(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    params: dict[str, JsonValue],
    rounds: int,
    nthread: int,
    init_model: xgb.Booster | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    early_stopping_rounds: int | None = None,
    progress: Callable[[RoundProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainOutcome:
    """Train ``rounds`` new rounds (on top of ``init_model`` when given).

    Early stopping needs ``validation``. Raises :class:`Cancelled` when ``should_cancel()``
    turned true, and :class:`InvalidInput` for parameters XGBoost refuses.
    """
    if rounds < 1:
        raise InvalidInput("rounds must be at least 1")
    if early_stopping_rounds is not None and validation is None:
        raise InvalidInput("early stopping needs a validation slice")
    callback = ProgressCallback(rounds, progress, should_cancel)
    train = xgb.DMatrix(features, label=labels, nthread=nthread)
    # Metrics on the whole training set every round would cost as much as a few extra trees:
    # only a validation slice is evaluated while training.
    evals = []
    if validation is not None:
        evals.append((xgb.DMatrix(validation[0], label=validation[1], nthread=nthread), "valid"))
    start = time.perf_counter()
    try:
        booster = xgb.train(
            {**params, "nthread": nthread},
            train,
            num_boost_round=rounds,
            evals=evals,
            early_stopping_rounds=early_stopping_rounds,
            xgb_model=init_model,
            callbacks=[callback],
            verbose_eval=False,
        )
    except xgb.core.XGBoostError as exc:
        raise InvalidInput(f"XGBoost refused the training: {str(exc).splitlines()[0]}") from None
    if callback.cancelled:
        raise Cancelled("training cancelled")
    best = booster.best_iteration if early_stopping_rounds is not None else None
    parent_rounds = init_model.num_boosted_rounds() if init_model is not None else 0
    return TrainOutcome(
        booster, booster.num_boosted_rounds() - parent_rounds, best, time.perf_counter() - start
    )
