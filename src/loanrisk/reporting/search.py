"""A version's search for a less discriminatory alternative, for its card and console page:
when the version was trained from a tuning study that searched a protected attribute
(``loanrisk tune --fairness``, docs/fairness.md), that study's AUC/AIR frontier, its
finding and the trial the version was trained from, read from the study stored with the
dataset. A study that is gone or unreadable is said, never fatal to the page."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import ValidationError

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import LoanRiskError
from loanrisk.fairness.lda import LdaFinding, SearchTarget
from loanrisk.registry.manifest import ModelManifest
from loanrisk.registry.models import ModelRegistry
from loanrisk.training.tune import FrontierPoint, load_study


@dataclass(frozen=True)
class SearchFacts:
    """The search a version came from. ``finding`` and ``frontier`` are the study's as it is
    stored now (a study resumed after the training has more trials); ``note`` says why they
    are missing when the study cannot be read."""

    study: str
    dataset: str
    pick: str
    trial: int
    cv_auc: float
    air: float | None
    trials: int = 0
    target: SearchTarget | None = None
    finding: LdaFinding | None = None
    frontier: tuple[FrontierPoint, ...] = ()
    note: str | None = None


def search_facts(registry: ModelRegistry, manifest: ModelManifest) -> SearchFacts | None:
    """The search ``manifest``'s version was trained from (None: it was not trained from a
    study that searched a protected attribute)."""
    tuned = (manifest.model_extra or {}).get("tuned_from")
    if not isinstance(tuned, dict) or "attribute" not in tuned:
        return None
    directory = manifest.training_dataset[0] if manifest.training_dataset else "data"
    try:
        known = SearchFacts(
            study=str(tuned.get("study")),
            dataset=str(tuned.get("dataset")),
            pick=str(tuned.get("pick")),
            trial=int(tuned.get("trial", -1)),
            cv_auc=float(tuned.get("cv_auc", float("nan"))),
            air=float(tuned["air"]) if tuned.get("air") is not None else None,
        )
    except (TypeError, ValueError):  # a manifest edited by hand: no search to show
        return None
    try:
        catalogue = DatasetCatalogue(registry.storage, directory)
        study = load_study(catalogue, known.dataset, known.study)
    except (LoanRiskError, ValidationError, ValueError) as exc:
        return _noted(known, f"the study cannot be read: {exc}")
    if study is None or study.fairness is None or not study.trials:
        return _noted(known, f"dataset {known.dataset} no longer holds the study")
    summary = study.result()
    return replace(
        known,
        trials=summary.trials,
        target=study.fairness,
        finding=summary.lda,
        frontier=tuple(summary.frontier),
    )


def _noted(known: SearchFacts, note: str) -> SearchFacts:
    return replace(known, note=note)
