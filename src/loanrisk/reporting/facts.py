"""What is known about one model version, gathered once for its page in the console and for
its model card: the manifest, the evaluation report, the dataset it was trained on (with its
quality report), its aliases, the gain of each feature, its points scaling, and the limitations
these facts imply.
Nothing here is written by hand per version: every figure comes from stored records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

from pydantic import JsonValue

from loanrisk.contracts import DatasetManifest
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import InvalidInput, NotFound, StorageError
from loanrisk.inference.scorecard import missing_treatment
from loanrisk.monitoring.compare import MAX_AUC_DROP
from loanrisk.monitoring.drift import SHIFT, STABLE
from loanrisk.registry.manifest import ModelManifest
from loanrisk.registry.models import (
    SCALING_FILE,
    LoadedModel,
    ModelRegistry,
    aliases_by_version,
)
from loanrisk.registry.policy import DecisionPolicy, served_policy
from loanrisk.registry.report import EvaluationReport, ParityReport
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling
from loanrisk.registry.scorecard import Scorecard
from loanrisk.reporting.charts import Chart, report_charts
from loanrisk.reporting.formats import DASH, count, percent
from loanrisk.reporting.search import SearchFacts, search_facts
from loanrisk.schema import LoanSchema
from loanrisk.settings import Settings
from loanrisk.training.fairness import assessed

#: A calibration bin off by more than this (absolute) is named in the limitations, if its
#: mean PD is also outside the Wilson interval of its observed default rate at this level
#: (a bin of a few loans is too small to judge).
CALIBRATION_GAP = 0.05
CALIBRATION_CONFIDENCE = 0.95
#: A feature missing in more than this share of the training loans is named too.
MISSING_SHARE = 0.05
#: The PDs whose scores a version's page shows beside its scaling.
SCALING_EXAMPLE_PDS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True)
class VersionFacts:
    name: str
    version: int
    manifest: ModelManifest
    report: EvaluationReport
    schema: LoanSchema
    aliases: list[str]
    gain: dict[str, float]
    dataset: DatasetManifest | None
    dataset_note: str | None
    charts: list[Chart] = field(default_factory=list)
    #: Per model input, what its missing value is scored as (the version's FeatureSpec).
    missing_as: dict[str, str] = field(default_factory=dict)
    #: The points scaling its loans are scored in, and whether the version records it
    #: (versions published before scalings score with the default).
    scaling: Scaling = DEFAULT_SCALING
    scaling_recorded: bool = True
    #: A scorecard version's scorecard (its card shows the points table); None for XGBoost.
    scorecard: Scorecard | None = None
    #: The search for a less discriminatory alternative it was trained from (None: none).
    search: SearchFacts | None = None

    @property
    def scaling_examples(self) -> list[tuple[float, int]]:
        """A few PDs and the scores they get, for the page's table."""
        return [(pd, self.scaling.score_of(pd)) for pd in SCALING_EXAMPLE_PDS]

    @property
    def classes(self) -> list[tuple[str, dict[str, float]]]:
        """Per class and average: precision, recall, f1-score, support."""
        rows = self.report.classification_report.rows()
        return [(k, v.model_dump()) for k, v in rows.items()]

    @property
    def report_json(self) -> dict[str, JsonValue]:
        """The report as the page templates read it (its JSON)."""
        return self.report.to_json()

    @property
    def fairness(self) -> list[ParityReport]:
        return assessed(self.report)

    @property
    def inputs_used(self) -> int:
        """How many model inputs the version uses: a scorecard's characteristics, or the
        XGBoost inputs with a gain (an input no tree splits on is unused)."""
        if self.scorecard is not None:
            return len(self.scorecard.characteristics)
        return len(self.gain)


def gain_by_feature(model: LoadedModel) -> dict[str, float]:
    """Total gain of each model input, by the FeatureSpec's output name (none for a
    scorecard: its card shows its points table instead)."""
    if model.booster is None:
        return {}
    names = model.spec.output_columns
    gain = model.booster.get_score(importance_type="total_gain")
    out = {}
    for key, value in gain.items():  # one value per feature for a binary model
        index = int(key[1:]) if key.startswith("f") and key[1:].isdigit() else None
        out[names[index] if index is not None and index < len(names) else key] = float(value)  # type: ignore[arg-type]
    return out


def _dataset(
    registry: ModelRegistry, manifest: ModelManifest
) -> tuple[DatasetManifest | None, str | None]:
    if manifest.training_dataset is None:
        return None, "The version records no training dataset."
    directory, dataset_id = manifest.training_dataset
    try:
        return DatasetCatalogue(registry.storage, directory).get(dataset_id), None
    except (NotFound, StorageError) as exc:
        return None, f"Dataset {dataset_id} cannot be read: {exc}."


def version_facts(registry: ModelRegistry, name: str, ref: str | int) -> VersionFacts:
    model = registry.load(name, ref)
    if model.report is None:
        raise StorageError(f"model {name!r} version {model.version} has no evaluation report")
    report = model.report
    newest = registry.resolve(name, "latest")
    aliases = aliases_by_version(registry.aliases(name), newest).get(model.version, [])
    dataset, note = _dataset(registry, model.manifest)
    gain = gain_by_feature(model)
    return VersionFacts(
        name,
        model.version,
        model.manifest,
        report,
        model.schema,
        aliases,
        gain,
        dataset,
        note,
        report_charts(report, gain, schema=model.schema),
        missing_as=(
            missing_treatment(model.scorecard)
            if model.scorecard is not None
            else model.spec.missing_treatment()
        ),
        scaling=model.scaling,
        scaling_recorded=SCALING_FILE in model.manifest.files,
        scorecard=model.scorecard,
        search=search_facts(registry, model.manifest),
    )


def limitations(facts: VersionFacts) -> list[str]:
    """Limits of the version that its own records show."""
    out = []
    data = facts.dataset
    if data is not None:
        out.append(
            f"Trained on {count(data.rows.train)} loans of dataset {data.id} (source "
            f"{data.source!r}, default rate {percent(data.label_rate.train)}). Applicants unlike "
            "these loans are outside its experience; the drift checks below watch for them."
        )
        if data.expanded:
            out.append(
                f"The dataset was expanded synthetically from {count(data.rows.input)} to "
                f"{count(data.rows.total)} rows: its test figures include synthetic loans and "
                "may overstate performance on real applicants."
            )
        out += _often_missing(facts, data)
        warnings = data.quality.warnings
        if warnings:
            out.append(
                f"Validation flagged {len(warnings)} problem(s) in the raw data, listed "
                "under the training data."
            )
    elif facts.dataset_note:
        out.append(facts.dataset_note)
    for row in facts.report.calibration:
        predicted, observed = row.mean_predicted, row.observed_rate
        if predicted is None or observed is None or not row.count:
            continue
        low, high = wilson_interval(round(observed * row.count), row.count)
        if abs(predicted - observed) > CALIBRATION_GAP and not low <= predicted <= high:
            out.append(
                f"Probabilities between {row.bin[0]:.1f} and {row.bin[1]:.1f} are "
                f"miscalibrated: predicted {percent(predicted)} on average, observed "
                f"{percent(observed)} ({count(row.count)} loans). Do not read "
                "them as a PD for pricing or provisions without calibration."
            )
    check = facts.report.monotonicity
    features = check.features if check else {}
    broken = [name for name, f in features.items() if not f.holds]
    if broken:
        out.append(
            f"The PD moves against the declared direction of risk for {', '.join(broken)} "
            "(the check above): the model was not trained with monotone constraints, "
            "and a declined applicant may be told a reason the model does not apply "
            "consistently."
        )
    for item in facts.report.fairness_not_assessed or ():
        out.append(
            f"Protected attribute {item.attribute!r} was not assessed for fairness: {item.reason}."
        )
    for f in facts.fairness:
        out += [f"Fairness on {f.attribute!r}: {w}." for w in f.warnings or ()]
    out += _fair_lending(facts.report)
    if not facts.fairness and not facts.report.fairness_not_assessed:
        out.append("No protected attribute was given at training: fairness was not assessed.")
    out.append(
        f"The label is a fixed cut at probability {facts.report.threshold:g}; its error "
        "rates (the confusion matrix) change with the threshold."
    )
    return out


def wilson_interval(
    events: int, n: int, confidence: float = CALIBRATION_CONFIDENCE
) -> tuple[float, float]:
    """The Wilson score interval of a proportion of ``events`` in ``n`` > 0 trials (E. B.
    Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22,
    1927): unlike the normal approximation it stays inside [0, 1] and is wide for a few
    trials (1 default in 1 loan: 0.21 to 1 at 95%)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = events / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _code(value: float | str | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _often_missing(facts: VersionFacts, data: DatasetManifest) -> list[str]:
    """A line per feature missing in more than :data:`MISSING_SHARE` of the raw loans (the
    declared special codes treated as missing count too), saying how each is scored: the
    blank ones as the version scores a missing value; a scorecard's special codes in their
    own bins, each with its share of the training loans and the points it gets."""
    out = []
    rows = max(data.quality.rows, 1)
    scorecard = facts.scorecard.characteristics if facts.scorecard is not None else []
    characteristics = {c.name: c for c in scorecard}
    for column, missing in sorted(data.quality.missing.items()):
        if missing / rows <= MISSING_SHARE:
            continue
        how = facts.missing_as.get(column)
        special = data.quality.special.get(column, 0)
        bins = characteristics[column].bins if column in characteristics else []
        codes = [b for b in bins if b.kind == "special"]
        if special and codes:
            total = max(sum(b.count for b in bins), 1)
            each = "; ".join(
                f"{_code(b.code)}: {percent(b.count / total)} of the training loans, "
                f"{b.points} points"
                for b in codes
            )
            out.append(
                f"{column} held a declared special code in {percent(special / rows)} of the "
                f"raw loans, each code scored in its own bin ({each}); it was blank in "
                f"{percent((missing - special) / rows)}" + (f", {how}." if how else ".")
            )
        elif special:
            out.append(
                f"{column} was missing in {percent(missing / rows)} of the raw loans "
                f"({percent(special / rows)} a declared special code treated as missing)"
                + (f": {how}." if how else ".")
            )
        else:
            out.append(
                f"{column} was missing in {percent(missing / rows)} of the raw loans"
                + (f": {how}." if how else ".")
            )
    return out


def _fair_lending(report: EvaluationReport) -> list[str]:
    """A limitation per group with an adverse impact (an AIR below 1 that fails the
    four-fifths rule or differs significantly from 1: :attr:`AirResult.adverse`), and per
    group too small to measure. A group approved more often than the reference is none."""
    out = []
    for attribute, f in (report.fairness_measures or {}).items():
        for g in f.groups:
            air = g.air
            if air is None or air.air is None or not air.adverse:
                continue
            said = [
                *(["below the four-fifths rule"] if air.four_fifths else []),
                *([f"significantly below 1, p = {air.p_value:.2g}"] if air.significant else []),
            ]
            out.append(
                f"Fair lending on {attribute!r}: group {g.group!r} is approved at "
                f"{air.air:.2f} times the rate of {f.reference.group!r} ({'; '.join(said)}); "
                "look for a less discriminatory alternative (docs/fairness.md)."
            )
        out += [f"Fair lending on {attribute!r}: {w}." for w in f.warnings]
    return out


def monitoring_plan(facts: VersionFacts, settings: Settings) -> list[tuple[str, str, str]]:
    """(metric, threshold, action) rows: what watching this version in production means."""
    hours = settings.drift_window_hours
    matrix = facts.report.confusion_matrix
    labelled = (matrix.tp + matrix.fp) / max(matrix.tn + matrix.fp + matrix.fn + matrix.tp, 1)
    return [
        (
            "PSI of the probability of default, CSI of each feature, over the last "
            f"{hours:g} hours of the prediction log",
            f"< {STABLE} stable; {STABLE} to {SHIFT} investigate; > {SHIFT} shift",
            "Investigate the features that moved; above the shift band, retrain on recent loans "
            "(loanrisk monitor drift; gauge loanrisk_psi).",
        ),
        (
            "Realized AUC and Brier on loans whose outcome is known",
            f"AUC below the test AUC by more than {MAX_AUC_DROP}",
            "Compare with a challenger trained on recent outcomes (loanrisk monitor performance).",
        ),
        (
            "A challenger against this version, on the same held-out and live loans",
            f"promotion refused if its AUC is lower by more than {MAX_AUC_DROP} beyond noise "
            "(the DeLong 95% interval of the difference below it)",
            "Shadow or canary it first (docs/champion-challenger.md); promote with --if-not-worse.",
        ),
        (
            "Share of loans labelled default (loanrisk_predictions_total by label)",
            f"far from the test split's {percent(labelled)}",
            "A moved approval rate with stable drift bands points at the threshold or the "
            "applicant mix; check both before retraining.",
        ),
    ]


def band_ranges(policy: DecisionPolicy) -> str:
    """The bands in words: ``low below 0.2, medium 0.2-0.5, high from 0.5`` (the range
    with an en dash, as the card writes ranges)."""
    edges = [None, *policy.band_cutoffs, None]
    parts = []
    for name, low, high in zip(policy.band_names, edges, edges[1:], strict=False):
        if low is None and high is None:
            parts.append(f"{name} throughout")
        elif low is None:
            parts.append(f"{name} below {high:g}")
        elif high is None:
            parts.append(f"{name} from {low:g}")
        else:
            parts.append(f"{name} {low:g}{DASH}{high:g}")
    return ", ".join(parts)


def policy_lines(manifest: ModelManifest, settings: Settings) -> list[str]:
    """The version's decision policy in words, and the one the service applies to it under
    ``settings`` where that differs (docs/scoring.md: a threshold or band setting set
    explicitly overrides the version's policy; a version without one gets the settings')."""
    recorded = manifest.policy
    if recorded is not None:
        out = [
            f"Recorded with the version at training: a loan is labelled default when its "
            f"probability of default is over {recorded.threshold:g}; risk bands "
            f"{band_ranges(recorded)}."
        ]
    else:
        out = [
            "None recorded: the version was published before decision policies, and is "
            "served with the settings' threshold and bands."
        ]
    try:
        served = served_policy(recorded, settings)
    except InvalidInput as exc:
        return [*out, f"The threshold and band settings do not make a policy: {exc.message}."]
    policy = served.policy
    if served.threshold_source == "setting":
        out.append(
            f"LOANRISK_THRESHOLD is set: the service labels its loans at "
            f"{policy.threshold:g} instead."
        )
    elif recorded is None:
        out.append(f"Served at the threshold setting's {policy.threshold:g}.")
    if served.bands_source == "setting":
        out.append(
            f"LOANRISK_BAND_CUTOFFS/LOANRISK_BAND_NAMES are set: the service bands its "
            f"loans {band_ranges(policy)} instead."
        )
    elif recorded is None:
        out.append(f"Served with the band settings' {band_ranges(policy)}.")
    return out
