"""Hyperparameter tuning: ``loanrisk tune`` searches XGBoost's parameters with Optuna.

Why Optuna: it is maintained, seeded (TPE), handles a single objective and a two-objective
Pareto search (AUC against cost) with the same sampler, and its trials can be rebuilt from
plain records. That lets a study live as JSON next to its dataset on any storage (local, S3,
Azure) and resume after a cancel or a crash, with no database.

Each trial is scored by stratified k-fold cross-validation on the dataset's **training split
only** (the test split is never read): per fold, up to ``max_rounds`` rounds with early
stopping on the fold's validation AUC, then the fold's AUC and the tree-node count of the
trees kept. The cost of a configuration is its mean node count. Scoring walks one path per
tree, so smaller and fewer trees are cheaper to score.

The study (``<data>/<dataset>/studies/<name>.json``) is rewritten after every trial. Its
frontier lists the trials that no other trial beats on both AUC and cost. ``best`` is the
highest CV AUC. ``lean`` is the cheapest trial within ``lean_tolerance`` of the best AUC.
``loanrisk train --params-from NAME[:best|:lean]`` trains from either.

With a protected attribute (``fairness``, the ``auc-air`` objective) the second objective is
the adverse impact ratio of the trial's out-of-fold approvals instead of the cost: the search
for a less discriminatory alternative of :mod:`loanrisk.fairness.lda`. Its frontier is on AUC
and AIR, and ``lda`` (``--params-from NAME:lda``) picks the alternative it found.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from loanrisk.contracts import JobProgress, TunedFrom, TuneJob
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import Cancelled, InvalidInput, NotFound
from loanrisk.extras import require
from loanrisk.fairness.lda import (
    LdaFinding,
    SearchTarget,
    air_frontier,
    approval_airs,
    capped,
    find_lda,
    search_target,
    worst,
)
from loanrisk.features.transform import FeatureTransformer
from loanrisk.storage.base import Storage
from loanrisk.training.monotone import constrained_spec, constraint_param, constraint_vector
from loanrisk.training.train import DEFAULT_PARAMS

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from pydantic import JsonValue

STUDIES = "studies"
FORMAT: Literal["loanrisk.study"] = "loanrisk.study"
#: Trials a run makes when given neither a trial count nor a time budget.
DEFAULT_TRIALS = 30
#: The search space: (kind, low, high, log scale).
SPACE: dict[str, tuple[str, float, float, bool]] = {
    "max_depth": ("int", 2, 10, False),
    "learning_rate": ("float", 0.01, 0.3, True),
    "min_child_weight": ("float", 1.0, 20.0, True),
    "subsample": ("float", 0.5, 1.0, False),
    "colsample_bytree": ("float", 0.5, 1.0, False),
    "reg_lambda": ("float", 1e-3, 10.0, True),
    "gamma": ("float", 1e-3, 5.0, True),
}
Pick = Literal["best", "lean", "lda"]
Objective = Literal["auc", "auc-per-cost", "auc-air"]


class Trial(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    params: dict[str, float | int]
    auc: float = Field(description="Mean cross-validated AUC.")
    auc_std: float
    nodes: float = Field(description="Mean tree-node count of the folds' kept trees.")
    rounds: int = Field(description="Mean rounds kept by early stopping (what training uses).")
    seconds: float
    air: float | None = Field(
        None,
        description="auc-air: the worst protected group's adverse impact ratio of the "
        "out-of-fold approvals at the study's threshold (None: undefined).",
    )
    air_by_group: dict[str, float | None] | None = Field(
        None, description="auc-air: each protected group's AIR."
    )


class FrontierPoint(BaseModel):
    """A trial of the AUC/cost frontier, as the summary lists it."""

    model_config = ConfigDict(frozen=True)

    number: int
    auc: float
    nodes: float
    rounds: int
    air: float | None = Field(None, exclude_if=lambda value: value is None)


class TuneSummary(BaseModel):
    """What a tuning run reports (a tuning job's result): the frontier, the best and the
    lean trial."""

    model_config = ConfigDict(frozen=True)

    study: str
    dataset: str
    objective: Objective
    trials: int
    best: Trial
    lean: Trial
    frontier: list[FrontierPoint]
    lda: LdaFinding | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="auc-air: the less discriminatory alternative found (docs/fairness.md).",
    )


class Study(BaseModel):
    """A tuning study as stored with its dataset."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["loanrisk.study"] = FORMAT
    version: Literal[1] = 1
    name: str
    dataset: str
    objective: Objective
    folds: int
    seed: int
    monotone: bool
    max_rounds: int
    early_stopping_rounds: int
    lean_tolerance: float
    fairness: SearchTarget | None = Field(
        None, description="auc-air: the attribute, threshold and tolerances of the search."
    )
    trials: list[Trial] = Field(default_factory=list)
    created_at: str
    updated_at: str

    def best(self) -> Trial:
        if not self.trials:
            raise NotFound(f"study {self.name!r} has no complete trials")
        return max(self.trials, key=lambda t: (t.auc, -t.nodes))

    def lean(self) -> Trial:
        floor = self.best().auc - self.lean_tolerance
        return min((t for t in self.trials if t.auc >= floor), key=lambda t: (t.nodes, -t.auc))

    def lda(self) -> LdaFinding | None:
        """The search for a less discriminatory alternative's finding (None: not one)."""
        if self.fairness is None:
            return None
        return find_lda(self.trials, self.best(), self.fairness)

    def pick(self, which: Pick) -> Trial:
        if which == "lda":
            finding = self.lda()
            if finding is None:
                raise InvalidInput(
                    f"study {self.name!r} searched no protected attribute: pick best or lean"
                )
            if finding.alternative is None:
                raise NotFound(f"study {self.name!r} found no alternative: {finding.statement}")
            number = finding.alternative.number
            return next(t for t in self.trials if t.number == number)
        return self.best() if which == "best" else self.lean()

    def frontier(self) -> list[Trial]:
        """Trials no other trial beats on both AUC and cost, cheapest first (auc-air: on
        both AUC and AIR, highest AUC first)."""
        if self.objective == "auc-air":
            return air_frontier(self.trials)
        ordered = sorted(self.trials, key=lambda t: (t.nodes, -t.auc))
        out: list[Trial] = []
        for trial in ordered:
            if not out or trial.auc > out[-1].auc:
                out.append(trial)
        return out

    def result(self) -> TuneSummary:
        """The study's trial count, best and lean trials, and its frontier."""
        return TuneSummary(
            study=self.name,
            dataset=self.dataset,
            objective=self.objective,
            trials=len(self.trials),
            best=self.best(),
            lean=self.lean(),
            frontier=[
                FrontierPoint(number=t.number, auc=t.auc, nodes=t.nodes, rounds=t.rounds, air=t.air)
                for t in self.frontier()
            ],
            lda=self.lda(),
        )

    def summary(self) -> dict[str, JsonValue]:
        """:meth:`result` as JSON: a tuning job's stored result."""
        return self.result().model_dump(mode="json")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def study_path(catalogue: DatasetCatalogue, dataset: str, name: str) -> str:
    return catalogue.path(dataset, f"{STUDIES}/{name}.json")


def load_study(catalogue: DatasetCatalogue, dataset: str, name: str) -> Study | None:
    try:
        data = catalogue.storage.read_bytes(study_path(catalogue, dataset, name))
    except NotFound:
        return None
    return Study.model_validate_json(data)


def tree_nodes(booster: xgb.Booster) -> int:
    """Nodes of every tree of ``booster`` (what scoring walks through, at most one path each)."""
    model = json.loads(bytes(booster.save_raw("json")))["learner"]["gradient_booster"]["model"]
    return sum(int(tree["tree_param"]["num_nodes"]) for tree in model["trees"])


class _Stop(xgb.callback.TrainingCallback):
    def __init__(self, should_cancel: Callable[[], bool]) -> None:
        super().__init__()
        self.should_cancel = should_cancel

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        if self.should_cancel():
            raise Cancelled("tuning cancelled; the completed trials are kept")
        return False


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    params: dict[str, str | float],
    *,
    job: TuneJob,
    nthread: int,
    should_cancel: Callable[[], bool],
) -> tuple[dict[str, float], np.ndarray]:
    """Mean and spread of the folds' AUC, mean node count and rounds of ``params``; and the
    out-of-fold probabilities (each loan's, from the fold's model that did not train on it)."""
    folds = StratifiedKFold(n_splits=job.folds, shuffle=True, random_state=job.seed)
    aucs, nodes, rounds = [], [], []
    out_of_fold = np.empty(labels.size, dtype=np.float64)
    for fit_rows, valid_rows in folds.split(features, labels):
        fit = xgb.DMatrix(features[fit_rows], label=labels[fit_rows], nthread=nthread)
        valid = xgb.DMatrix(features[valid_rows], label=labels[valid_rows], nthread=nthread)
        booster = xgb.train(
            {**params, "eval_metric": "auc", "nthread": nthread, "seed": job.seed},
            fit,
            num_boost_round=job.max_rounds,
            evals=[(valid, "valid")],
            early_stopping_rounds=job.early_stopping_rounds,
            verbose_eval=False,
            callbacks=[_Stop(should_cancel)],
        )
        kept = booster[: booster.best_iteration + 1]
        out_of_fold[valid_rows] = kept.predict(valid)
        aucs.append(float(roc_auc_score(labels[valid_rows], out_of_fold[valid_rows])))
        nodes.append(tree_nodes(kept))
        rounds.append(booster.best_iteration + 1)
    return {
        "auc": statistics.fmean(aucs),
        "auc_std": statistics.pstdev(aucs),
        "nodes": statistics.fmean(nodes),
        "rounds": round(statistics.fmean(rounds)),
    }, out_of_fold


def _suggest(trial: Any) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for name, (kind, low, high, log) in SPACE.items():
        if kind == "int":
            out[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def _distributions() -> dict[str, BaseDistribution]:
    import optuna

    return {
        name: optuna.distributions.IntDistribution(int(low), int(high), log=log)
        if kind == "int"
        else optuna.distributions.FloatDistribution(low, high, log=log)
        for name, (kind, low, high, log) in SPACE.items()
    }


def _values(study: Study, trial: Trial) -> list[float]:
    if study.objective == "auc-air":
        return [trial.auc, capped(trial.air)]
    return [trial.auc] if study.objective == "auc" else [trial.auc, trial.nodes]


def _directions(objective: Objective) -> list[Literal["maximize", "minimize"]]:
    if objective == "auc":
        return ["maximize"]
    return ["maximize", "maximize" if objective == "auc-air" else "minimize"]


def run_tuning(
    job: TuneJob,
    storage: Storage,
    *,
    nthread: int,
    progress: Callable[[JobProgress], None] | None = None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> Study:
    """Run (or resume) the study ``job`` names until it has ``trials`` complete trials or the
    time budget is spent; the study is stored after every trial. Cancelling keeps every
    complete trial and raises :class:`Cancelled`; without the ``tune`` extra (optuna),
    :class:`~loanrisk.errors.NotInstalled`."""
    require("tune")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    catalogue = DatasetCatalogue(storage, job.data_directory)
    dataset = catalogue.resolve(job.dataset)
    schema = catalogue.load_schema(dataset.id)
    spec = catalogue.load_spec(dataset.id)
    base = {k: v for k, v in DEFAULT_PARAMS.items() if k not in SPACE and k != "eval_metric"}
    if job.monotone:
        spec = constrained_spec(spec, schema)
        base["monotone_constraints"] = constraint_param(constraint_vector(spec, schema))
    train = catalogue.load_split(dataset.id, "train")  # never the test split
    features = FeatureTransformer(spec).transform(train, dtype=np.float32)
    labels = train[schema.label_name].to_numpy().astype(np.int64)

    groups = None
    if job.fairness is not None:
        from loanrisk.fairness.groups import attribute_groups

        try:
            groups = attribute_groups(schema, train, job.fairness)
        except InvalidInput as exc:
            raise InvalidInput(f"fairness: {exc.message}", details={"field": "fairness"}) from None
        if not groups.groups:
            raise InvalidInput(
                f"fairness: no training loan of dataset {dataset.id} is outside the reference "
                f"group of {job.fairness!r} ({groups.reference.name})",
                details={"field": "fairness"},
            )
    del train
    target = (
        None
        if groups is None
        else search_target(
            groups,
            threshold=job.threshold,
            auc_loss=job.auc_loss,
            min_air_gain=job.min_air_gain,
        )
    )
    study = _open_study(catalogue, dataset.id, job, target)
    directions = _directions(job.objective)
    # Seeded by the seed and the trials already stored: a resumed study draws new points
    # (a sampler seeded as the first run would propose that run's first trials again).
    sampler = optuna.samplers.TPESampler(seed=job.seed * 1_000_003 + len(study.trials))
    search = optuna.create_study(directions=directions, sampler=sampler)
    distributions = _distributions()
    search.add_trials(
        [
            optuna.trial.create_trial(
                params=dict(t.params), distributions=distributions, values=_values(study, t)
            )
            for t in study.trials
        ]
    )
    wanted = (
        job.trials
        if job.trials is not None
        else (None if job.time_budget is not None else DEFAULT_TRIALS)
    )
    started, resumed = time.monotonic(), len(study.trials)

    def more() -> bool:
        if wanted is not None and len(study.trials) >= wanted:
            return False
        return job.time_budget is None or time.monotonic() - started < job.time_budget

    while more():
        proposal = search.ask()
        params = _suggest(proposal)
        clock = time.monotonic()
        scored, out_of_fold = cross_validate(
            features,
            labels,
            {**base, **params},
            job=job,
            nthread=nthread,
            should_cancel=should_cancel,
        )
        airs = (
            None if groups is None else approval_airs(out_of_fold, groups, threshold=job.threshold)
        )
        trial = Trial(
            number=len(study.trials),
            params=params,
            auc=scored["auc"],
            auc_std=scored["auc_std"],
            nodes=scored["nodes"],
            rounds=int(scored["rounds"]),
            seconds=time.monotonic() - clock,
            air=None if airs is None else worst(airs),
            air_by_group=airs,
        )
        search.tell(proposal, _values(study, trial))
        study.trials.append(trial)
        study.updated_at = _now()
        storage.write_bytes(
            study_path(catalogue, dataset.id, job.study), study.model_dump_json(indent=2).encode()
        )
        if progress is not None:
            elapsed = time.monotonic() - started
            done = len(study.trials)
            eta = (elapsed / (done - resumed) * (wanted - done)) if wanted is not None else None
            progress(
                JobProgress(
                    stage="tune",
                    done=done,
                    total=wanted,
                    elapsed=elapsed,
                    eta=eta,
                    metrics={"best_auc": study.best().auc, "lean_nodes": study.lean().nodes},
                )
            )
    if not study.trials:
        raise InvalidInput("the time budget ended before the first trial completed")
    if len(study.trials) == resumed:  # no new trial: the tolerances given are stored still
        study.updated_at = _now()
        storage.write_bytes(
            study_path(catalogue, dataset.id, job.study), study.model_dump_json(indent=2).encode()
        )
    return study


def _open_study(
    catalogue: DatasetCatalogue, dataset: str, job: TuneJob, target: SearchTarget | None
) -> Study:
    """The stored study ``job`` names, to resume (refused when it was run with other
    settings: its trials would not be comparable), or a new one. The tolerances that only
    pick among trials (``lean_tolerance``, and a search's AUC loss and material gain) take
    the job's."""
    stored = load_study(catalogue, dataset, job.study)
    settings: dict[str, Any] = {
        "objective": job.objective,
        "folds": job.folds,
        "seed": job.seed,
        "monotone": job.monotone,
        "max_rounds": job.max_rounds,
        "early_stopping_rounds": job.early_stopping_rounds,
    }
    if stored is not None:
        differing = {
            k: (getattr(stored, k), v) for k, v in settings.items() if getattr(stored, k) != v
        }
        before = stored.fairness
        if before is not None and target is not None:
            differing.update(
                {
                    k: (getattr(before, k), getattr(target, k))
                    for k in ("attribute", "reference", "groups", "threshold")
                    if getattr(before, k) != getattr(target, k)
                }
            )
        if differing:
            raise InvalidInput(
                f"study {job.study!r} of dataset {dataset} was run with other settings "
                f"({', '.join(f'{k}: {a} not {b}' for k, (a, b) in differing.items())}); "
                "resume it with the same ones, or name a new study"
            )
    study = stored or Study(
        name=job.study,
        dataset=dataset,
        lean_tolerance=job.lean_tolerance,
        created_at=_now(),
        updated_at=_now(),
        **settings,
    )
    study.lean_tolerance = job.lean_tolerance
    study.fairness = target
    return study


@dataclass(frozen=True)
class Tuned:
    """What a training takes from a study's trial (``threshold``: a search for a less
    discriminatory alternative's, which its AIRs were counted at; None otherwise)."""

    params: dict[str, float | int]
    rounds: int
    monotone: bool
    provenance: TunedFrom
    threshold: float | None = None


def tuned_params(storage: Storage, data_directory: str, dataset_ref: str, reference: str) -> Tuned:
    """``NAME[:best|:lean|:lda]`` of the dataset's tuning studies, for a training
    (:class:`InvalidInput` for another pick, or ``lda`` of a study that searched no protected
    attribute; :class:`NotFound` when the study, or its alternative, does not exist)."""
    name, _, which = reference.partition(":")
    which = which or "best"
    if which not in ("best", "lean", "lda"):
        raise InvalidInput(
            f"--params-from {reference!r}: pick best, lean or lda, not {which!r}",
            details={"field": "params_from"},
        )
    catalogue = DatasetCatalogue(storage, data_directory)
    dataset = catalogue.resolve(dataset_ref)
    study = load_study(catalogue, dataset.id, name)
    if study is None:
        raise NotFound(f"dataset {dataset.id} has no tuning study {name!r}")
    trial = study.pick("best" if which == "best" else "lean" if which == "lean" else "lda")
    provenance = TunedFrom(
        dataset=dataset.id,
        study=name,
        pick=which,
        trial=trial.number,
        cv_auc=trial.auc,
        nodes=trial.nodes,
    )
    target = study.fairness
    if target is not None and trial.air is not None:
        provenance["air"] = trial.air
        provenance["attribute"] = target.attribute
    threshold = None if target is None else target.threshold
    return Tuned(dict(trial.params), trial.rounds, study.monotone, provenance, threshold)
