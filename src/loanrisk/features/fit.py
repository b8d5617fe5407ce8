"""Fitting the reference's preprocessing with sklearn, and freezing it into a FeatureSpec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, PowerTransformer

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec, ImputedColumn, OneHotColumn, PowerColumn
from loanrisk.schema import CATEGORICAL_BY_NAME

#: The reference's column groups (REFERENCE.md, pipeline step 3).
IMPUTED = ("loan_int_rate", "person_emp_length", "cb_person_cred_hist_length")
POWER = ("person_age", "person_income", "loan_amnt", "loan_percent_income")
ONEHOT = ("person_home_ownership", "loan_intent", "loan_grade", "cb_person_default_on_file")


def build_column_transformer() -> ColumnTransformer:
    """The reference's unfitted preprocessing: median imputation, Yeo-Johnson, one-hot."""
    return ColumnTransformer(
        [
            ("imputed", SimpleImputer(strategy="median"), list(IMPUTED)),
            ("power", PowerTransformer(method="yeo-johnson", standardize=True), list(POWER)),
            (
                "onehot",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(ONEHOT),
            ),
        ]
    )


def sklearn_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as sklearn sees it: categoricals as object strings (NaN where missing)."""
    out = frame[[*IMPUTED, *POWER, *ONEHOT]].copy()
    for name in ONEHOT:
        out[name] = out[name].astype(object).where(out[name].notna(), np.nan)
    return out


def fit_column_transformer(train: pd.DataFrame) -> ColumnTransformer:
    """Fit the reference's preprocessing on a validated training frame."""
    return build_column_transformer().fit(sklearn_input(train))


def spec_from_column_transformer(fitted: ColumnTransformer, *, rows: int) -> FeatureSpec:
    """Freeze a fitted :func:`build_column_transformer` into a :class:`FeatureSpec`."""
    imputer: SimpleImputer = fitted.named_transformers_["imputed"]
    power: PowerTransformer = fitted.named_transformers_["power"]
    encoder: OneHotEncoder = fitted.named_transformers_["onehot"]
    scaler = power._scaler  # sklearn keeps the standardiser private; its numbers are the spec
    return FeatureSpec(
        imputed=tuple(
            ImputedColumn(name, float(m))
            for name, m in zip(IMPUTED, imputer.statistics_, strict=True)
        ),
        power=tuple(
            PowerColumn(name, float(lmbda), float(mean), float(scale))
            for name, lmbda, mean, scale in zip(
                POWER, power.lambdas_, scaler.mean_, scaler.scale_, strict=True
            )
        ),
        onehot=tuple(
            OneHotColumn(name, tuple(str(c) for c in categories if isinstance(c, str)))
            for name, categories in zip(ONEHOT, encoder.categories_, strict=True)
        ),
        fitted={"rows": rows, "sklearn": sklearn.__version__},
    )


def fit_feature_spec(train: pd.DataFrame) -> FeatureSpec:
    """Fit the reference's preprocessing on a validated training frame; return its numbers.

    Gives the same spec as :func:`fit_column_transformer` (a test holds them equal) without
    making sklearn sort millions of category strings to find a handful: medians come from
    numpy, the Yeo-Johnson lambdas and scaler from sklearn's own ``PowerTransformer``, and each
    vocabulary from the categorical codes present, sorted as ``OneHotEncoder`` sorts them.
    """
    missing = [c for c in ONEHOT if c not in CATEGORICAL_BY_NAME]
    assert not missing, missing
    imputed = []
    for name in IMPUTED:
        values = train[name].to_numpy(dtype=np.float64, na_value=np.nan)
        present = values[~np.isnan(values)]
        if present.size == 0:
            raise InvalidInput(f"column {name!r} has no values to take a median of")
        imputed.append(ImputedColumn(name, float(np.median(present))))
    power = PowerTransformer(method="yeo-johnson", standardize=True)
    power.fit(train[list(POWER)].to_numpy(dtype=np.float64, na_value=np.nan))
    scaler = power._scaler  # sklearn keeps the standardiser private; its numbers are the spec
    onehot = []
    for name in ONEHOT:
        column = train[name].array
        codes = np.unique(np.asarray(column.codes))
        onehot.append(
            OneHotColumn(name, tuple(sorted(str(column.categories[c]) for c in codes if c >= 0)))
        )
    return FeatureSpec(
        imputed=tuple(imputed),
        power=tuple(
            PowerColumn(name, float(lmbda), float(mean), float(scale))
            for name, lmbda, mean, scale in zip(
                POWER, power.lambdas_, scaler.mean_, scaler.scale_, strict=True
            )
        ),
        onehot=tuple(onehot),
        fitted={"rows": len(train), "sklearn": sklearn.__version__},
    )
