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
VERSION = 1


@dataclass(frozen=True)
class ImputedColumn:
    """Missing values are replaced by the training median; no other change."""

    name: str
    median: float


@dataclass(frozen=True)
class PowerColumn:
    """Yeo-Johnson with parameter ``lmbda``, then standardised: ``(yj(x) - mean) / scale``."""

    name: str
    lmbda: float
    mean: float
    scale: float


@dataclass(frozen=True)
class OneHotColumn:
    """One output column per category seen in training; an unknown or missing value is all 0."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class FeatureSpec:
    """Output columns are: imputed columns, then power columns, then one-hot blocks, in order."""

    imputed: tuple[ImputedColumn, ...]
    power: tuple[PowerColumn, ...]
    onehot: tuple[OneHotColumn, ...]
    fitted: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def output_columns(self) -> tuple[str, ...]:
        names = [c.name for c in self.imputed] + [c.name for c in self.power]
        for column in self.onehot:
            names += [f"{column.name}={category}" for category in column.categories]
        return tuple(names)

    @property
    def input_columns(self) -> tuple[str, ...]:
        names = [c.name for c in self.imputed] + [c.name for c in self.power]
        return tuple(names + [c.name for c in self.onehot])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "imputed": [asdict(c) for c in self.imputed],
            "power": [asdict(c) for c in self.power],
            "onehot": [{"name": c.name, "categories": list(c.categories)} for c in self.onehot],
            "output_columns": list(self.output_columns),
            "fitted": self.fitted,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def fingerprint(self) -> str:
        """Hash of what determines the output (not of when or on how many rows it was fitted)."""
        doc = self.to_dict()
        doc.pop("fitted")
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        """Parse a spec; raises :class:`InvalidInput` for anything that is not a valid v1 spec."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise InvalidInput(f"not a feature spec (format {doc.get('format')!r})")
            if doc.get("version") != VERSION:
                raise InvalidInput(
                    f"feature spec version {doc.get('version')!r} is not supported "
                    f"(this loanrisk reads version {VERSION})"
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
                fitted=dict(doc.get("fitted", {})),
            )
        except InvalidInput:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"malformed feature spec: {exc!r}") from None
