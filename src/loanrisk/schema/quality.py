"""The data-quality report a dataset manifest stores: what validation cleaned, flagged,
dropped and found missing (built by :meth:`loanrisk.schema.validate.ValidationReport.quality`).

Light (pydantic only), so that the contracts read manifests without loading pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


@dataclass
class Issue:
    """One grouped problem: a column, what is wrong, how many rows, and the first few."""

    column: str | None
    problem: str
    message: str
    count: int = 0
    rows: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = f"column {self.column!r}: " if self.column else ""
        text = f"{where}{self.message}"
        if self.rows:
            shown = ", ".join(
                f"{r} ({e!r})" if e else str(r)
                for r, e in zip(self.rows, self.examples or [""] * len(self.rows), strict=True)
            )
            more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
            text += f" at row{'s' if self.count > 1 else ''} {shown}{more}"
        return text


class QualityReport(BaseModel):
    """Counts per column of cleaned, missing and special values, the grouped issues (flagged
    values, unknown categories, rejected rows) and the warnings in words. A stored report
    keeps its keys as written: one from an older version, without a later section, is
    answered without it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    rows: int = 0
    dropped_columns: list[str] = Field(default_factory=list)
    cleaned: dict[str, int] = Field(default_factory=dict)
    #: Per feature, the values the model receives as missing.
    missing: dict[str, int] = Field(default_factory=dict)
    #: Declared special codes treated as missing (also counted in ``missing``).
    special: dict[str, int] = Field(default_factory=dict)
    flagged: list[Issue] = Field(default_factory=list)
    unknown_categories: list[Issue] = Field(default_factory=list)
    rejected: list[Issue] = Field(default_factory=list)
    rejected_rows: list[int] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        declared = type(self).model_fields
        return {k: v for k, v in doc.items() if k in self.model_fields_set or k not in declared}
