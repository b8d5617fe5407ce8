"""Fitting the schema's preprocessing with sklearn, and freezing it into a FeatureSpec.

Each feature's ``preprocess`` (docs/schema.md) picks its step: ``median`` (imputation, as
the reference's first group), ``power`` (Yeo-Johnson with standardisation, its second),
``scale`` (standardisation), ``none`` (the number as it is), ``onehot`` (its third) or
``ordinal`` (the position in the declared order). With the built-in schema this is the
reference's preprocessing exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, PowerTransformer, StandardScaler

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import (
    FeatureSpec,
    FittedOn,
    ImputedColumn,
    OneHotColumn,
    OrdinalColumn,
    PassthroughColumn,
    PowerColumn,
    ScaledColumn,
)
from loanrisk.schema import LoanSchema, builtin_schema

_STEPS = ("median", "power", "scale", "none", "ordinal", "onehot")


def _groups(schema: LoanSchema) -> dict[str, list[str]]:
    """Feature names per preprocessing step, in schema order."""
    groups: dict[str, list[str]] = {step: [] for step in _STEPS}
    for column in schema.features:
        groups[column.encoding].append(column.name)
    return groups


def build_column_transformer(schema: LoanSchema | None = None) -> ColumnTransformer:
    """The schema's unfitted preprocessing as a sklearn ``ColumnTransformer`` (the reference's
    with the built-in schema: median imputation, Yeo-Johnson, one-hot)."""
    schema = schema or builtin_schema()
    groups = _groups(schema)
    ordinal_categories = [list(schema.column(n).categories or ()) for n in groups["ordinal"]]
    steps = [
        ("imputed", SimpleImputer(strategy="median"), groups["median"]),
        ("power", PowerTransformer(method="yeo-johnson", standardize=True), groups["power"]),
        ("scaled", StandardScaler(), groups["scale"]),
        ("passthrough", "passthrough", groups["none"]),
        (
            "ordinal",
            OrdinalEncoder(
                categories=ordinal_categories,
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
            ),
            groups["ordinal"],
        ),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), groups["onehot"]),
    ]
    return ColumnTransformer([step for step in steps if step[2]])


def sklearn_input(frame: pd.DataFrame, schema: LoanSchema | None = None) -> pd.DataFrame:
    """The frame as sklearn sees it: categoricals as object strings (NaN where missing)."""
    schema = schema or builtin_schema()
    groups = _groups(schema)
    out = frame[[name for step in _STEPS for name in groups[step]]].copy()
    for name in groups["ordinal"] + groups["onehot"]:
        out[name] = out[name].astype(object).where(out[name].notna(), np.nan)
    return out


def fit_column_transformer(
    train: pd.DataFrame, schema: LoanSchema | None = None
) -> ColumnTransformer:
    """Fit the schema's preprocessing with sklearn on a validated training frame."""
    return build_column_transformer(schema).fit(sklearn_input(train, schema))


def _fitted(fitted: ColumnTransformer, name: str) -> Any:
    return fitted.named_transformers_.get(name)


def spec_from_column_transformer(
    fitted: ColumnTransformer, *, rows: int, schema: LoanSchema | None = None
) -> FeatureSpec:
    """Freeze a fitted :func:`build_column_transformer` into a :class:`FeatureSpec`."""
    groups = _groups(schema or builtin_schema())
    imputer = _fitted(fitted, "imputed")
    power = _fitted(fitted, "power")
    scaler = _fitted(fitted, "scaled")
    encoder = _fitted(fitted, "onehot")
    ordinal = _fitted(fitted, "ordinal")
    return FeatureSpec(
        imputed=tuple(
            ImputedColumn(name, float(m))
            for name, m in zip(groups["median"], getattr(imputer, "statistics_", ()), strict=True)
        ),
        power=_power_columns(groups["power"], power),
        scaled=tuple(
            ScaledColumn(name, float(mean), float(scale))
            for name, mean, scale in zip(
                groups["scale"],
                getattr(scaler, "mean_", ()),
                getattr(scaler, "scale_", ()),
                strict=True,
            )
        ),
        passthrough=tuple(PassthroughColumn(name) for name in groups["none"]),
        ordinal=tuple(
            OrdinalColumn(name, tuple(str(c) for c in categories))
            for name, categories in zip(
                groups["ordinal"], getattr(ordinal, "categories_", ()), strict=True
            )
        ),
        onehot=tuple(
            OneHotColumn(name, tuple(str(c) for c in categories if isinstance(c, str)))
            for name, categories in zip(
                groups["onehot"], getattr(encoder, "categories_", ()), strict=True
            )
        ),
        fitted=FittedOn(rows, sklearn.__version__),
    )


def _power_columns(names: Sequence[str], power: Any) -> tuple[PowerColumn, ...]:
    if power is None:
        return ()
    scaler = power._scaler  # sklearn keeps the standardiser private; its numbers are the spec
    return tuple(
        PowerColumn(name, float(lmbda), float(mean), float(scale))
        for name, lmbda, mean, scale in zip(
            names, power.lambdas_, scaler.mean_, scaler.scale_, strict=True
        )
    )


def _present(train: pd.DataFrame, name: str, purpose: str) -> np.ndarray:
    """The column's values that are not missing; :class:`InvalidInput` when none are."""
    values = train[name].to_numpy(dtype=np.float64, na_value=np.nan)
    present: np.ndarray = values[~np.isnan(values)]
    if present.size == 0:
        raise InvalidInput(f"column {name!r} has no values to {purpose}")
    return present


def _median(train: pd.DataFrame, name: str) -> float | None:
    """The column's median, None when it has no values (what reasons call typical)."""
    values = train[name].to_numpy(dtype=np.float64, na_value=np.nan)
    present = values[~np.isnan(values)]
    return float(np.median(present)) if present.size else None


def fit_feature_spec(train: pd.DataFrame, schema: LoanSchema | None = None) -> FeatureSpec:
    """Fit the schema's preprocessing on a validated training frame; return its numbers.

    Gives the same spec as :func:`fit_column_transformer` (a test holds them equal) without
    making sklearn sort millions of category strings to find a handful: medians, means and
    standard deviations come from numpy, the Yeo-Johnson lambdas and scaler from sklearn's
    own ``PowerTransformer``, and each vocabulary from the categorical codes present, sorted
    as ``OneHotEncoder`` sorts them.
    """
    schema = schema or builtin_schema()
    groups = _groups(schema)
    imputed = [
        ImputedColumn(name, float(np.median(_present(train, name, "take a median of"))))
        for name in groups["median"]
    ]
    power = None
    if groups["power"]:
        power = PowerTransformer(method="yeo-johnson", standardize=True)
        power.fit(train[groups["power"]].to_numpy(dtype=np.float64, na_value=np.nan))
    scaled = []
    for name in groups["scale"]:
        present = _present(train, name, "standardise")
        std = float(present.std())
        scaled.append(ScaledColumn(name, float(present.mean()), std if std > 0 else 1.0))
    onehot = []
    for name in groups["onehot"]:
        column = train[name].array
        codes = np.unique(np.asarray(column.codes))
        onehot.append(
            OneHotColumn(name, tuple(sorted(str(column.categories[c]) for c in codes if c >= 0)))
        )
    return FeatureSpec(
        imputed=tuple(imputed),
        power=_power_columns(groups["power"], power),
        scaled=tuple(scaled),
        passthrough=tuple(PassthroughColumn(name, _median(train, name)) for name in groups["none"]),
        ordinal=tuple(
            OrdinalColumn(name, tuple(schema.column(name).categories or ()))
            for name in groups["ordinal"]
        ),
        onehot=tuple(onehot),
        fitted=FittedOn(len(train), sklearn.__version__),
    )
