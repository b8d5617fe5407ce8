"""FeatureSpec: the fitted preprocessing parameters as a frozen, versioned, human-readable JSON.

The reference pickled its fitted ColumnTransformer; a pickle on shared storage is code
execution for whoever can write there. The spec holds only numbers and strings, and the
numpy transform (:mod:`loanrisk.features.transform`) reproduces sklearn's output from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from loanrisk.errors import InvalidInput

FORMAT = "loanrisk.feature_spec"
#: Version 1 has imputed, power and one-hot columns (the reference's preprocessing); version 2
#: adds scaled, passthrough and ordinal columns. A spec is written as version 1 when it has
#: none of those, so older readers still read it, and never read a v2 spec wrongly.
VERSION = 2
#: How a missing value is scored, by encoding (the schema's ``preprocess``), in words that
#: follow "missing, ": NaN reaches the trees, which route it down the branch they learned for
#: missing values, except where the encoding fills it (median) or spreads it (one-hot).
LEFT_MISSING = "scored as missing (each tree takes the branch it learned for missing values)"
MISSING_BY_ENCODING = {
    "median": "scored with the training median in its place",
    "power": LEFT_MISSING,
    "scale": LEFT_MISSING,
    "none": LEFT_MISSING,
    "ordinal": LEFT_MISSING,
    "onehot": "scored as none of its categories (every one-hot column 0)",
}


@dataclass(frozen=True)
class ImputedColumn:
    """Missing values are replaced by the training median; no other change."""

    name: str
    median: float


@dataclass(frozen=True)
class PowerColumn:
    """Yeo-Johnson with parameter ``lmbda``, then standardised: ``(yj(x) - mean) / scale``;
    a missing value stays missing."""

    name: str
    lmbda: float
    mean: float
    scale: float


@dataclass(frozen=True)
class ScaledColumn:
    """Standardised: ``(x - mean) / scale``; a missing value stays missing."""

    name: str
    mean: float
    scale: float


@dataclass(frozen=True)
class PassthroughColumn:
    """The number as it is (booleans as 0/1); a missing value stays missing. ``typical`` is
    the training median, what reason codes call typical (None in specs fitted before it was
    recorded: then 0); it does not change the output, so it is not part of the fingerprint."""

    name: str
    typical: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class OrdinalColumn:
    """The category's position in the declared order (0, 1, ...); unknown or missing: NaN."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class OneHotColumn:
    """One output column per category seen in training; an unknown or missing value is all 0."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class FittedOn:
    """What a spec was fitted on: training rows and the sklearn version (None where a spec
    did not record it; left out of its JSON then)."""

    rows: int | None = None
    sklearn: str | None = None

    def to_dict(self) -> dict[str, int | str]:
        out: dict[str, int | str] = {}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.sklearn is not None:
            out["sklearn"] = self.sklearn
        return out


@dataclass(frozen=True)
class FeatureSpec:
    """Output columns are: imputed, power, scaled, passthrough and ordinal columns (one each),
    then the one-hot blocks, in this order."""

    imputed: tuple[ImputedColumn, ...]
    power: tuple[PowerColumn, ...]
    onehot: tuple[OneHotColumn, ...]
    fitted: FittedOn = field(default_factory=FittedOn, compare=False)
    scaled: tuple[ScaledColumn, ...] = ()
    passthrough: tuple[PassthroughColumn, ...] = ()
    ordinal: tuple[OrdinalColumn, ...] = ()

    @property
    def single_columns(self) -> tuple[str, ...]:
        """Inputs that become one output column each, in output order."""
        groups = (self.imputed, self.power, self.scaled, self.passthrough, self.ordinal)
        return tuple(c.name for group in groups for c in group)

    @property
    def output_columns(self) -> tuple[str, ...]:
        names = list(self.single_columns)
        for column in self.onehot:
            names += [f"{column.name}={category}" for category in column.categories]
        return tuple(names)

    @property
    def output_attributes(self) -> tuple[str, ...]:
        """The input column each output column encodes, in output order (read from the
        spec's structure: a column name may itself hold '=')."""
        names = list(self.single_columns)
        for column in self.onehot:
            names += [column.name] * len(column.categories)
        return tuple(names)

    @property
    def input_columns(self) -> tuple[str, ...]:
        return self.single_columns + tuple(c.name for c in self.onehot)

    def missing_treatment(self) -> dict[str, str]:
        """What the transform does with a missing value of each input column, in words that
        follow "missing, " (scoring warnings, the model card), from the fitted steps rather
        than the schema: median -> the training median (its value); power, scaled,
        passthrough and ordinal -> NaN; one-hot -> every column 0 (:data:`MISSING_BY_ENCODING`)."""
        out = {
            c.name: f"scored with the training median {c.median:g} in its place"
            for c in self.imputed
        }
        left: tuple[PowerColumn | ScaledColumn | PassthroughColumn | OrdinalColumn, ...] = (
            *self.power,
            *self.scaled,
            *self.passthrough,
            *self.ordinal,
        )
        out |= dict.fromkeys((c.name for c in left), LEFT_MISSING)
        for onehot in self.onehot:
            out[onehot.name] = MISSING_BY_ENCODING["onehot"]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as its JSON file holds it (version 1 when it has only the first steps)."""
        extended = bool(self.scaled or self.passthrough or self.ordinal)
        later_steps = (
            {
                "scaled": [asdict(c) for c in self.scaled],
                "passthrough": [asdict(c) for c in self.passthrough],
                "ordinal": [
                    {"name": c.name, "categories": list(c.categories)} for c in self.ordinal
                ],
            }
            if extended
            else {}
        )
        return {
            "format": FORMAT,
            "version": VERSION if extended else 1,
            "imputed": [asdict(c) for c in self.imputed],
            "power": [asdict(c) for c in self.power],
            **later_steps,
            "onehot": [{"name": c.name, "categories": list(c.categories)} for c in self.onehot],
            "output_columns": list(self.output_columns),
            "fitted": self.fitted.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def fingerprint(self) -> str:
        """Hash of what determines the output (not of when or on how many rows it was fitted)."""
        doc = self.to_dict()
        doc.pop("fitted")
        for column in doc.get("passthrough", ()):
            column.pop("typical", None)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        """Parse a spec; raises :class:`InvalidInput` for anything that is not a valid v1 spec."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise InvalidInput(f"not a feature spec (format {doc.get('format')!r})")
            if doc.get("version") not in (1, VERSION):
                raise InvalidInput(
                    f"feature spec version {doc.get('version')!r} is not supported "
                    f"(this loanrisk reads versions 1 to {VERSION})"
                )
            return cls(
                imputed=tuple(
                    ImputedColumn(str(c["name"]), float(c["median"])) for c in doc["imputed"]
                ),
                power=tuple(
                    PowerColumn(
                        str(c["name"]), float(c["lmbda"]), float(c["mean"]), float(c["scale"])
                    )
                    for c in doc["power"]
                ),
                onehot=tuple(
                    OneHotColumn(str(c["name"]), tuple(str(v) for v in c["categories"]))
                    for c in doc["onehot"]
                ),
                fitted=_fitted_on(doc.get("fitted", {})),
                scaled=tuple(
                    ScaledColumn(str(c["name"]), float(c["mean"]), float(c["scale"]))
                    for c in doc.get("scaled", ())
                ),
                passthrough=tuple(
                    PassthroughColumn(str(c["name"]), _optional_float(c.get("typical")))
                    for c in doc.get("passthrough", ())
                ),
                ordinal=tuple(
                    OrdinalColumn(str(c["name"]), tuple(str(v) for v in c["categories"]))
                    for c in doc.get("ordinal", ())
                ),
            )
        except InvalidInput:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"malformed feature spec: {exc!r}") from None


def _fitted_on(doc: Any) -> FittedOn:
    rows, version = doc.get("rows"), doc.get("sklearn")
    return FittedOn(None if rows is None else int(rows), None if version is None else str(version))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
