"""What a scorer gives back, typed: per loan a :class:`LoanScore`, per call a :class:`Scored`,
per batch a :class:`BatchSummary`, and the scorer itself as a :class:`ScorerDescription`.

Per-loan values are slotted dataclasses: they are built for every loan ``/v1/predict``
scores, where a pydantic model's validation would cost more than the scoring. A loan's score
and a call's result are not frozen (a frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``: 1.0 µs a loan against 0.3 µs, measured, on a path of about 40 µs);
nothing changes them once built. They become
JSON only at the edge (an HTTP answer, CLI output, a job's stored result), each in one pass by
the ``*_json`` functions here, which give the documents earlier versions gave: the same keys
in the same order, the optional ones left out when absent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from loanrisk.inference.records import FieldError
from loanrisk.registry.policy import PolicySource
from loanrisk.registry.reasons import Direction
from loanrisk.registry.scaling import Scaling
from loanrisk.schema import Issue

#: An applicant's value a reason speaks of (a special code as sent, when the loan held one).
ReasonValue = str | float | None
#: A reason, a decline reason and a rejection as JSON.
ReasonDoc = dict[str, ReasonValue]
DeclineDoc = dict[str, str | None]
RejectionDoc = dict[str, int | list[dict[str, str]]]
#: A loan's score as JSON: numbers, label, band, grade, points, warnings, and the reasons
#: asked for.
ScoreDoc = dict[str, int | float | bool | str | list[str] | list[ReasonDoc] | list[DeclineDoc]]


@dataclass(frozen=True, slots=True)
class Reason:
    """An attribute that raised a loan's risk: its ``value``, the ``direction`` of that value
    (``special`` for a declared special code), the catalog's ``code`` and statement
    (``reason``), its ``contribution`` to the log-odds of default, and the same in ``points``
    of the version's scaling (:meth:`~loanrisk.registry.scaling.Scaling.points_of_log_odds`:
    negative, the points the attribute cost the loan; unrounded here, rounded to 2 decimals
    in JSON)."""

    feature: str
    name: str
    value: ReasonValue
    direction: Direction | Literal["special"]
    code: str | None
    reason: str
    contribution: float
    points: float


@dataclass(frozen=True, slots=True)
class DeclineReason:
    """What a declined loan's adverse-action notice states for one reason."""

    code: str | None
    reason: str


@dataclass(slots=True)
class LoanScore:
    """One loan's score: its 0-based ``record`` index in the call, the ``version`` that scored
    it, the probability of default, the label at the threshold, the risk band, the grade of
    the version's master scale, the ``score`` in whole points of the version's scaling
    (:meth:`~loanrisk.registry.scaling.Scaling.score_of` of the probability) and the record's
    warnings; ``reasons`` when asked for, ``decline_reasons`` when asked for (empty for an
    approved loan)."""

    record: int
    version: int
    probability: float
    label: bool
    band: str
    grade: str
    score: int
    warnings: list[str]
    reasons: list[Reason] | None = None
    decline_reasons: list[DeclineReason] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A loan left out of a call (``on_error="skip"``): its index and every bad field."""

    record: int
    fields: list[FieldError]


@dataclass(slots=True)
class Scored:
    """The loans of one :meth:`~loanrisk.inference.scorer.Scorer.score_records` call, in
    order: the scored and the rejected."""

    results: list[LoanScore]
    rejected: list[Rejection]


#: What a call numbers by its loans' 0-based index.
Numbered = TypeVar("Numbered", LoanScore, Rejection)


def shifted(item: Numbered, by: int) -> Numbered:
    """``item`` with its ``record`` index moved by ``by``: one call's results numbered as
    part of another's, before anything else holds them (a score is changed in place, each
    being its call's own; a rejection, frozen, is copied)."""
    if not by:
        return item
    if isinstance(item, LoanScore):
        item.record += by
        return item
    return replace(item, record=item.record + by)


def reason_json(reason: Reason) -> ReasonDoc:
    return {
        "feature": reason.feature,
        "name": reason.name,
        "value": reason.value,
        "direction": reason.direction,
        "code": reason.code,
        "reason": reason.reason,
        "contribution": reason.contribution,
        "points": round(reason.points, 2),
    }


def decline_json(decline: DeclineReason) -> DeclineDoc:
    return {"code": decline.code, "reason": decline.reason}


def score_json(score: LoanScore) -> ScoreDoc:
    """A loan's score as the API answers it (``reasons`` and ``decline_reasons`` only when
    they were asked for)."""
    doc: ScoreDoc = {
        "record": score.record,
        "version": score.version,
        "probability": score.probability,
        "label": score.label,
        "band": score.band,
        "grade": score.grade,
        "score": score.score,
        "warnings": score.warnings,
    }
    if score.reasons is not None:
        doc["reasons"] = [reason_json(r) for r in score.reasons]
    if score.decline_reasons is not None:
        doc["decline_reasons"] = [decline_json(d) for d in score.decline_reasons]
    return doc


def rejection_json(rejection: Rejection) -> RejectionDoc:
    return {
        "record": rejection.record,
        "fields": [{"field": f.field, "message": f.message} for f in rejection.fields],
    }


def scored_json(scored: Scored) -> dict[str, list[ScoreDoc] | list[RejectionDoc]]:
    """A call's results and rejections as the API and the CLI give them."""
    return {
        "results": [score_json(r) for r in scored.results],
        "rejected": [rejection_json(r) for r in scored.rejected],
    }


class SchemaRef(BaseModel):
    """The declared schema a scorer reads loans with."""

    model_config = ConfigDict(frozen=True)

    name: str
    hash: str


class BandsDescription(BaseModel):
    model_config = ConfigDict(frozen=True)

    cutoffs: list[float]
    names: list[str]


class GradeDescription(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    lower: float
    upper: float


class ScaleDescription(BaseModel):
    """The master scale a scorer grades with: its name and grades, from the lowest PD up."""

    model_config = ConfigDict(frozen=True)

    name: str
    grades: list[GradeDescription]


class ScorerDescription(BaseModel):
    """What a scorer serves: model, version, schema, backend (and why XGBoost, when it fell
    back), decision policy and where it came from, the master scale it grades with, the
    points scaling it scores with, and how long it took to build."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    model: str
    version: int
    schema_ref: SchemaRef = Field(alias="schema")
    backend: str
    fallback_reason: str | None
    fallback_cause: str | None
    threshold: float
    bands: BandsDescription
    #: Where the threshold and the bands came from: "setting" (set explicitly, it overrides
    #: the version), "version" (its recorded policy), "default", "given".
    policy_source: dict[str, PolicySource]
    master_scale: ScaleDescription
    scaling: Scaling
    load_seconds: float

    def to_json(self) -> dict[str, JsonValue]:
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """A streamed batch: loans scored, those over the threshold, rows rejected (the first
    :data:`~loanrisk.schema.MAX_REJECTED_ROWS` of them by number, the grouped ``issues``),
    and the scorer that scored it."""

    scored: int
    defaults: int
    rejected: int
    rejected_rows: list[int]
    issues: list[Issue]
    scorer: ScorerDescription

    def to_json(self) -> dict[str, JsonValue]:
        """The summary as jobs and the API give it: the counts, then the scorer's fields."""
        return {
            "scored": self.scored,
            "defaults": self.defaults,
            "rejected": self.rejected,
            "rejected_rows": list(self.rejected_rows),  # a copy typed as JSON values
            "issues": [asdict(i) for i in self.issues],
            **self.scorer.to_json(),
        }
