"""Champion against challenger: two versions of a model compared on a held-out split (AUC,
Brier, KS, and the AUC difference with its DeLong interval), on the live prediction log (the
loans both scored: agreement, flipped decisions, score PSI, differences), and on the outcomes
of those loans (realized AUC of each); and the guard of a promotion that must not make the
model worse.

Held out, each protected group's adverse impact ratio under each version (approvals at the
version's own threshold) is compared too (:mod:`loanrisk.fairness.paired`): a challenger,
such as a less discriminatory alternative, is judged on AUC and AIR side by side.

Held out means the test split of a processed dataset: by default the dataset the candidate
(``b``) was trained on, which neither version trained on when ``b`` continued ``a`` on new
data; ``--dataset`` picks another. Beyond ``compare_max_rows`` rows, a seeded sample is used.
On the log, two rows are the same loan when they share the request id and the loan as
received, which is how the shadow records what the champion scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.binning.apply import with_codes
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.defaults import MAX_AUC_DROP as MAX_AUC_DROP
from loanrisk.errors import Conflict, NotFound
from loanrisk.fairness.groups import protected_attributes
from loanrisk.fairness.paired import FairnessComparison, compare_airs
from loanrisk.inference.scorer import scorer_from_settings
from loanrisk.monitoring.drift import Moment
from loanrisk.monitoring.log.reader import read_window
from loanrisk.monitoring.outcomes import read_outcomes
from loanrisk.monitoring.paired import (
    AucDifference,
    Flips,
    agreement,
    brier,
    delong,
    ks_statistic,
    probability_psi,
)
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.registry.policy import served_policy
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage

_PAIR_KEYS = ["request_id", "features", "_nth"]
#: The log columns a comparison reads.
LOG_COLUMNS = ("request_id", "features", "loan_id", "probability", "label")


@dataclass(frozen=True)
class Versions:
    """The two versions compared: ``a`` (usually the champion) and ``b`` (the challenger)."""

    name: str
    a: int
    b: int


class HeldOutScores(BaseModel):
    """One version's figures on the held-out loans."""

    model_config = ConfigDict(frozen=True)

    auc: float
    brier: float
    ks: float
    auc_ci95: tuple[float, float] | None = Field(
        None, description="The AUC's DeLong 95% interval (on these loans)."
    )


class HeldOut(BaseModel):
    """Both versions on one held-out split: ``rows`` loans scored by both (``left_out``: those
    either refused), out of a sample of ``sampled_from`` when the split was larger."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    rows: int
    left_out: int
    sampled_from: int | None
    a: HeldOutScores
    b: HeldOutScores
    auc_difference: AucDifference
    fairness: FairnessComparison | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="Each protected group's AIR under each version (at its threshold) and "
        "the difference b - a; None when the schema declares no protected groups.",
    )


class ScoredCounts(BaseModel):
    """Loans each version scored in the window, paired or not."""

    model_config = ConfigDict(frozen=True)

    a: int
    b: int


class AbsDifference(BaseModel):
    """Mean and largest absolute score difference on the paired loans (None: none)."""

    model_config = ConfigDict(frozen=True)

    mean: float | None
    max: float | None


class RealizedAuc(BaseModel):
    """Each version's AUC on the paired loans whose outcome is known (None while those lack
    defaults or non-defaults, and ``auc_difference`` then left out)."""

    model_config = ConfigDict(frozen=True)

    loans: int
    a_auc: float | None = None
    b_auc: float | None = None
    auc_difference: AucDifference | None = Field(None, exclude_if=lambda value: value is None)


class LiveComparison(BaseModel):
    """The two versions on the loans both scored in ``[since, until)`` of the prediction log
    (from a sample of ``sampled`` rows past the bound): agreement and flips at ``threshold``,
    score PSI, differences, and the realized AUCs."""

    model_config = ConfigDict(frozen=True)

    since: Moment | None
    until: Moment | None
    sampled: int | None
    scored: ScoredCounts
    loans: int
    agreement: float | None
    flips: Flips
    threshold: float
    probability_psi: float
    abs_difference: AbsDifference
    outcomes: RealizedAuc


class Comparison(BaseModel):
    """Champion (``a``) against challenger (``b``): held out and live. A held-out comparison
    that cannot be made is None, with ``held_out_problem`` saying why (left out otherwise)."""

    model_config = ConfigDict(frozen=True)

    model: str
    a: int
    b: int
    held_out: HeldOut | None
    held_out_problem: str | None = Field(None, exclude_if=lambda value: value is None)
    live: LiveComparison


def _dataset_of(model: LoadedModel, dataset: str | None) -> tuple[str, str]:
    """(directory, id) of the held-out split: ``dataset``, else the version's own."""
    own = model.manifest.training_dataset
    if dataset is not None:
        return (own[0] if own else "data"), dataset
    if own is None:
        raise Conflict(
            f"model {model.name!r} version {model.version} names no dataset: give one to compare on"
        )
    return own


def held_out(
    storage: Storage,
    registry: ModelRegistry,
    settings: Settings,
    versions: Versions,
    *,
    dataset: str | None = None,
    nthread: int | None = None,
) -> HeldOut:
    """Both versions scored on one held-out split; the loans either refuses are left out of
    both (and counted)."""
    a = registry.load(versions.name, versions.a)
    b = registry.load(versions.name, versions.b)
    directory, dataset_id = _dataset_of(b, dataset)
    catalogue = DatasetCatalogue(storage, directory)
    manifest = catalogue.resolve(dataset_id)
    label = catalogue.load_schema(manifest.id).label_name
    total = catalogue.count_rows(manifest.id, "test")
    rows: np.ndarray | None = None
    if total > settings.compare_max_rows:  # only the sample is read
        rows = np.sort(
            np.random.default_rng(settings.seed).choice(
                total, settings.compare_max_rows, replace=False
            )
        )
        test = catalogue.load_rows(manifest.id, "test", rows)
    else:
        test = catalogue.load_split(manifest.id, "test")
    labels = test[label].to_numpy().astype(np.int64)
    loans = _as_sent(test.drop(columns=[label]), catalogue.load_special(manifest.id, "test", rows))
    scores = []
    for model in (a, b):
        scorer = scorer_from_settings(model, settings, nthread=nthread)
        results, _ = scorer.score_frame(loans, on_error="skip")
        scores.append(
            pd.Series(results["probability"].to_numpy(), index=results["row"].to_numpy() - 1)
        )
    both = scores[0].index.intersection(scores[1].index)
    y = labels[both.to_numpy()]
    pa, pb = scores[0][both].to_numpy(), scores[1][both].to_numpy()
    auc = delong(y, pa, pb)
    fairness = None
    if protected_attributes(b.schema):
        fairness = compare_airs(
            b.schema,
            loans.iloc[both.to_numpy()].reset_index(drop=True),
            pa,
            pb,
            threshold_a=served_policy(a.manifest.policy, settings).policy.threshold,
            threshold_b=served_policy(b.manifest.policy, settings).policy.threshold,
        )
    return HeldOut(
        dataset=manifest.id,
        rows=int(both.size),
        left_out=len(test) - int(both.size),
        sampled_from=total if total > settings.compare_max_rows else None,
        a=HeldOutScores(auc=auc.a, brier=brier(y, pa), ks=ks_statistic(y, pa), auc_ci95=auc.a_ci95),
        b=HeldOutScores(auc=auc.b, brier=brier(y, pb), ks=ks_statistic(y, pb), auc_ci95=auc.b_ci95),
        auc_difference=auc.difference,
        fairness=fairness,
    )


def _as_sent(loans: pd.DataFrame, special: pd.DataFrame | None) -> pd.DataFrame:
    """Stored loans with the declared special codes they held put back (the split keeps
    them beside it), as a client would send them: a scorecard scores each code in its bin;
    to the trees a code is the missing value the split holds."""
    if special is None:
        return loans
    loans = loans.copy(deep=False)
    for name in special.columns:
        loans[name] = with_codes(loans[name], special[name])
    return loans


def _numbered(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed for pairing: the same loan sent twice in one request is told apart by
    its order."""
    rows = rows.assign(request_id=rows["request_id"].fillna(""))
    return rows.assign(_nth=rows.groupby(["request_id", "features"]).cumcount())


def pair_log(log: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    """The loans of the log both versions scored, one row each (columns ``_a``/``_b``)."""
    columns = [*_PAIR_KEYS, "loan_id", "probability", "label"]
    left = _numbered(log[log["version"] == a])[columns]
    right = _numbered(log[log["version"] == b])[columns]
    return left.merge(right, on=_PAIR_KEYS, suffixes=("_a", "_b"))


def live(
    log: pd.DataFrame,
    outcomes: pd.DataFrame,
    versions: Versions,
    *,
    threshold: float,
    since: datetime | None = None,
    until: datetime | None = None,
    sampled: int | None = None,
) -> LiveComparison:
    """The comparison on the loans of ``log`` both versions scored (and their outcomes);
    ``since``, ``until`` and ``sampled`` say what window ``log`` is."""
    pairs = pair_log(log, versions.a, versions.b)
    pa, pb = pairs["probability_a"].to_numpy(), pairs["probability_b"].to_numpy()
    difference = np.abs(pa - pb)
    agreed = agreement(pairs["label_a"].to_numpy(), pairs["label_b"].to_numpy())
    known = pairs[pairs["loan_id_a"].notna()].merge(
        outcomes, left_on="loan_id_a", right_on="loan_id", how="inner"
    )
    y = known["defaulted"].to_numpy(dtype=np.int64)
    realized = RealizedAuc(loans=len(known))
    if 0 < y.sum() < y.size:
        auc = delong(y, known["probability_a"].to_numpy(), known["probability_b"].to_numpy())
        realized = RealizedAuc(
            loans=len(known), a_auc=auc.a, b_auc=auc.b, auc_difference=auc.difference
        )
    return LiveComparison(
        since=since,
        until=until,
        sampled=sampled,
        scored=ScoredCounts(
            a=int((log["version"] == versions.a).sum()),
            b=int((log["version"] == versions.b).sum()),
        ),
        loans=agreed.loans,
        agreement=agreed.agreement,
        flips=agreed.flips,
        threshold=threshold,
        probability_psi=probability_psi(pa, pb),
        abs_difference=AbsDifference(
            mean=float(difference.mean()) if difference.size else None,
            max=float(difference.max()) if difference.size else None,
        ),
        outcomes=realized,
    )


def compare(
    storage: Storage,
    settings: Settings,
    versions: Versions,
    *,
    registry: ModelRegistry,
    dataset: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    nthread: int | None = None,
) -> Comparison:
    """Held out and live; a held-out comparison that cannot be made (no dataset) is
    reported as ``held_out_problem`` with the live part still given."""
    held, problem = None, None
    try:
        held = held_out(storage, registry, settings, versions, dataset=dataset, nthread=nthread)
    except (Conflict, NotFound) as exc:
        problem = exc.message
    return Comparison(
        model=versions.name,
        a=versions.a,
        b=versions.b,
        held_out=held,
        held_out_problem=problem,
        live=live_comparison(storage, settings, versions, since=since, until=until),
    )


def live_comparison(
    storage: Storage,
    settings: Settings,
    versions: Versions,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LiveComparison:
    """The live part of :func:`compare` alone: the loans both versions scored in the window
    (a shadow or a canary against the champion), read from the prediction log."""
    log = read_window(
        storage,
        storage.resolve(settings.log_directory),
        model=versions.name,
        since=since,
        until=until,
        versions=(versions.a, versions.b),
        columns=LOG_COLUMNS,
        max_rows=settings.monitor_max_rows,
    )
    outcomes = read_outcomes(storage, storage.resolve(settings.outcome_directory))
    return live(
        log.frame,
        outcomes,
        versions,
        threshold=settings.threshold,
        since=since,
        until=until,
        sampled=log.sampled,
    )


def worse_beyond(difference: AucDifference, max_auc_drop: float) -> bool:
    """Whether the evidence says ``b`` is worse than ``a`` by more than ``max_auc_drop`` of
    AUC: the upper bound of the DeLong 95% interval of ``b - a`` (``difference``, as
    :func:`~loanrisk.monitoring.paired.delong` gives it) is below ``-max_auc_drop``.

    A one-sided test at 2.5% of H0: drop <= ``max_auc_drop`` against H1: drop >
    ``max_auc_drop`` (a non-inferiority decision rule; DeLong, DeLong and Clarke-Pearson
    1988, Biometrics 44(3):837-845, for the interval): a drop that is noise on this many
    loans passes, however its point estimate compares with the margin."""
    return difference.ci95[1] < -max_auc_drop


def guard_promotion(
    storage: Storage,
    registry: ModelRegistry,
    settings: Settings,
    name: str,
    candidate: int,
    alias: str,
    *,
    max_auc_drop: float = MAX_AUC_DROP,
    dataset: str | None = None,
) -> HeldOut | None:
    """Refuse (:class:`Conflict`, with the comparison) to move ``alias`` to ``candidate``
    when, on the same held-out split, it is worse than the alias's version by more than
    ``max_auc_drop`` of AUC beyond noise (:func:`worse_beyond`: the DeLong 95% interval of
    the difference lies wholly below ``-max_auc_drop``); the held-out comparison when it is
    allowed (None when the alias names no version yet, or names the candidate)."""
    try:
        current = registry.resolve(name, alias)
    except NotFound:
        return None
    if current == candidate:
        return None
    report = held_out(
        storage, registry, settings, Versions(name, current, candidate), dataset=dataset
    )
    if worse_beyond(report.auc_difference, max_auc_drop):
        low, high = report.auc_difference.ci95
        a, b = report.a, report.b
        raise Conflict(
            f"version {candidate} is worse than version {current} ({alias}) on the held-out "
            f"split of dataset {report.dataset} ({report.rows:,} loans): AUC "
            f"{b.auc:.4f} against {a.auc:.4f}, a drop of "
            f"{a.auc - b.auc:.4f}; the 95% DeLong interval of the difference "
            f"[{low:+.4f}, {high:+.4f}] lies below -{max_auc_drop:g}, the drop allowed "
            f"(one-sided test at 2.5% that the drop exceeds it); Brier {b.brier:.4f} against "
            f"{a.brier:.4f}. {alias!r} stays at version {current}.",
            details={
                "comparison": report.model_dump(mode="json"),
                "alias": alias,
                "version": current,
                "max_auc_drop": max_auc_drop,
            },
        )
    return report
