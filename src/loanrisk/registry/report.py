"""The evaluation report a model version carries (``report.json``), as one typed model.

Built by :func:`loanrisk.training.evaluate.evaluate` and the training job, read by the
model card, the CLI, MLflow and the reference routes; turned into JSON only where it leaves
the library (:meth:`EvaluationReport.to_json`: the stored file, job results, HTTP answers).
The JSON is the one earlier versions wrote: the optional sections are left out when absent,
and reports written before a section existed (``ece``, ``probability_distribution``, ``policy`` ...)
still parse.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from loanrisk.fairness.models import AttributeFairness
from loanrisk.registry.policy import DecisionPolicy

#: The two classes of the classification report, in the reference's names.
CLASS_NAMES = ("Non-Default", "Default")

_ALIASED = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class ClassScores(BaseModel):
    """One row of the classification report (support is a count, as sklearn gives it)."""

    model_config = _ALIASED

    precision: float
    recall: float
    f1_score: float = Field(alias="f1-score")
    support: float


class ClassificationReport(BaseModel):
    """sklearn's ``classification_report(output_dict=True)`` with the reference's names."""

    model_config = _ALIASED

    non_default: ClassScores = Field(alias="Non-Default")
    default: ClassScores = Field(alias="Default")
    accuracy: float
    macro_avg: ClassScores = Field(alias="macro avg")
    weighted_avg: ClassScores = Field(alias="weighted avg")

    def by_class(self) -> dict[str, ClassScores]:
        """The per-class rows by the reference's class names, in :data:`CLASS_NAMES` order."""
        return {"Non-Default": self.non_default, "Default": self.default}

    def rows(self) -> dict[str, ClassScores]:
        """Every row as sklearn names it: the classes, then ``macro avg`` and ``weighted avg``."""
        return {**self.by_class(), "macro avg": self.macro_avg, "weighted avg": self.weighted_avg}


class ConfusionMatrix(BaseModel):
    model_config = ConfigDict(frozen=True)

    tn: int
    fp: int
    fn: int
    tp: int


class RocCurve(BaseModel):
    """At most 200 points of the ROC curve (thresholds capped at 1)."""

    model_config = ConfigDict(frozen=True)

    fpr: list[float]
    tpr: list[float]
    thresholds: list[float]


class CalibrationBin(BaseModel):
    """One bin ``[low, high)`` of the calibration table (means are None for an empty bin)."""

    model_config = ConfigDict(frozen=True)

    bin: list[float]
    count: int
    mean_predicted: float | None
    observed_rate: float | None


class ProbabilityDistribution(BaseModel):
    """Counts of the test loans' probabilities of default per bin (``edges``), by true label."""

    model_config = ConfigDict(frozen=True)

    edges: list[float]
    non_default: list[int]
    default: list[int]


class BandRow(BaseModel):
    """How the test loans fall in one risk band of the decision policy."""

    model_config = ConfigDict(frozen=True)

    band: str
    range: list[float]
    loans: int
    share: float
    defaults: int
    default_rate: float | None
    mean_predicted: float | None


class GradeRow(BaseModel):
    """How the test loans fall in one grade of the version's master scale: the development
    grade distribution (``share``) a later backtest compares a window's with (grade PSI)."""

    model_config = ConfigDict(frozen=True)

    grade: str
    range: list[float] = Field(description="The grade's PDs, [lower, upper).")
    loans: int
    share: float
    defaults: int
    default_rate: float | None = Field(description="None for a grade with no loans.")
    mean_pd: float | None = Field(description="None for a grade with no loans.")


class CalibrationFigures(BaseModel):
    """Brier, log loss, ECE and the calibration table of one set of probabilities."""

    model_config = ConfigDict(frozen=True)

    brier: float
    log_loss: float
    ece: float
    calibration: list[CalibrationBin]


class CalibrationFit(BaseModel):
    """What a calibration map was fitted on: the held-out training loans, and the defaults
    among them."""

    model_config = ConfigDict(frozen=True)

    rows: int
    defaults: int


class CalibrationStep(BaseModel):
    """The calibration's effect on the test split: before (the booster's own probabilities)
    and after."""

    model_config = ConfigDict(frozen=True)

    method: str
    fitted: CalibrationFit
    before: CalibrationFigures
    after: CalibrationFigures


class NotAssessed(BaseModel):
    """A protected attribute no parity was computed for, and why."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    reason: str


class MonotoneFeature(BaseModel):
    """One declared direction checked: the grid its feature was moved along, the sampled
    loans, how many of them moved the wrong way at least once, and the largest wrong step."""

    model_config = ConfigDict(frozen=True)

    direction: str
    grid: list[str | bool | float]
    loans: int
    violations: int
    max_wrong_step: float
    holds: bool


class MonotoneCheck(BaseModel):
    """:func:`loanrisk.training.monotone.check`'s result: whether the schema's directions of
    risk hold, per feature (``constraints``: the declared direction of each)."""

    model_config = ConfigDict(frozen=True)

    enforced: bool
    constraints: dict[str, str]
    features: dict[str, MonotoneFeature]
    holds: bool


class GroupRates(BaseModel):
    """One group's size and confusion-matrix rates at the threshold (None: the rate's
    denominator is empty)."""

    model_config = ConfigDict(frozen=True)

    size: int
    PPV: float | None
    FDR: float | None
    NPV: float | None
    FOR: float | None
    TPR: float | None
    FNR: float | None
    TNR: float | None
    FPR: float | None

    def rate(self, name: str) -> float | None:
        """A rate by its name in :data:`loanrisk.training.fairness.RATES`."""
        value: float | None = getattr(self, name)
        return value


class ParityGroups(BaseModel):
    model_config = ConfigDict(frozen=True)

    privileged: GroupRates
    non_privileged: GroupRates


class ParityReport(BaseModel):
    """:func:`loanrisk.training.fairness.parity_report`'s result for one protected attribute:
    both groups' rates and the parity ratio of each rate (reports written before
    ``warnings`` have none, and their JSON still leaves it out)."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    privileged_value: str
    threshold: float
    groups: ParityGroups
    parity: dict[str, float | None]
    warnings: list[str] | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        if doc.get("warnings", 0) is None:
            del doc["warnings"]
        return doc


#: Sections a report has only when they apply; left out of the JSON when absent.
_OPTIONAL = (
    "ece",
    "probability_distribution",
    "policy",
    "bands",
    "master_scale",
    "grades",
    "backtest",
    "calibration_step",
    "monotonicity",
    "fairness",
    "fairness_by_attribute",
    "fairness_not_assessed",
    "fairness_measures",
)


class EvaluationReport(BaseModel):
    """The evaluation of a version on its dataset's test split (see
    :mod:`loanrisk.training.evaluate` for the figures). Keys of stored reports this model
    does not name are kept as they were."""

    model_config = ConfigDict(frozen=True, extra="allow")

    threshold: float
    classification_report: ClassificationReport
    auc: float
    log_loss: float
    brier: float
    ks: float
    confusion_matrix: ConfusionMatrix
    roc_curve: RocCurve
    calibration: list[CalibrationBin]
    ece: float | None = None
    #: Read from ``score_distribution`` too, its name before "score" meant points.
    probability_distribution: ProbabilityDistribution | None = Field(
        None, validation_alias=AliasChoices("probability_distribution", "score_distribution")
    )
    rows: int
    policy: DecisionPolicy | None = None
    bands: list[BandRow] | None = None
    #: The name of the master scale the version grades with, and how the test loans fall in
    #: its grades (reports written before scales were recorded have neither).
    master_scale: str | None = None
    grades: list[GradeRow] | None = None
    #: The development backtest on the test split, per grade and for the portfolio (a
    #: :class:`loanrisk.validation.Backtest` as JSON: validation sits above the registry).
    #: Later backtests take its ``portfolio.auc.current`` as the development AUC and the loans
    #: of ``grades`` as the development grade distribution.
    backtest: dict[str, Any] | None = None
    calibration_step: CalibrationStep | None = None
    monotonicity: MonotoneCheck | None = None
    #: The first attribute's parity (reports written before ``fairness_by_attribute`` hold
    #: only this one).
    fairness: ParityReport | None = None
    fairness_by_attribute: dict[str, ParityReport] | None = None
    fairness_not_assessed: list[NotAssessed] | None = None
    #: The fair-lending measures per protected attribute (AIR, SMD, calibration and AUC per
    #: group against the reference group: :mod:`loanrisk.fairness`); reports written before
    #: them have only the parity ratios above.
    fairness_measures: dict[str, AttributeFairness] | None = None

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        for key in _OPTIONAL:
            if doc.get(key, 0) is None:
                del doc[key]
        return doc

    def to_json(self) -> dict[str, JsonValue]:
        """The report as JSON (what ``report.json``, job results and the API hold)."""
        return self.model_dump(mode="json")
