"""Monotone constraints: the schema's expected directions of risk, enforced by XGBoost and
checked on every version.

A feature's ``risk`` (docs/schema.md) says how the probability of default must move as its
value rises: ``increasing`` (the loan's share of income, the interest rate, the grade, an
earlier default on file) or ``decreasing`` (income). Every preprocessing step of a number is
increasing (median imputation, Yeo-Johnson, standardisation), so the constraint carries over
to its encoded column unchanged. A one-hot block has no order: a constrained ordinal feature
encoded one-hot (the built-in schema's grade) is encoded by its position in the declared
order instead, and the version's FeatureSpec records it as an ordinal column.

:func:`check` measures whether the directions hold on a trained model: for each direction,
sampled loans are moved along a grid of the feature's values, everything else fixed, and
every step that moves the probability the wrong way is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec, OrdinalColumn
from loanrisk.features.transform import FeatureTransformer
from loanrisk.registry.report import MonotoneCheck, MonotoneFeature
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import CATEGORY_TYPES

SIGN = {"increasing": 1, "decreasing": -1}
#: Loans moved along each grid, and the grid's points for a number (quantiles 1% .. 99%).
CHECK_LOANS = 1_000
GRID_POINTS = 25
#: A step the wrong way by less than this is float32 noise, not a violation.
TOLERANCE = 1e-6


def directions(schema: LoanSchema) -> dict[str, str]:
    """The declared direction of each feature that has one, in schema order."""
    return {c.name: c.risk for c in schema.features if c.risk is not None}


def constrained_spec(spec: FeatureSpec, schema: LoanSchema) -> FeatureSpec:
    """``spec`` with every constrained one-hot feature encoded ordinally (declared order)."""
    wanted = {name for name in directions(schema) if any(c.name == name for c in spec.onehot)}
    if not wanted:
        return spec
    ordinal = [
        OrdinalColumn(name, tuple(schema.column(name).categories or ()))
        for name in spec.input_columns
        if name in wanted
    ]
    return replace(
        spec,
        onehot=tuple(c for c in spec.onehot if c.name not in wanted),
        ordinal=spec.ordinal + tuple(ordinal),
    )


def constraint_vector(spec: FeatureSpec, schema: LoanSchema) -> tuple[int, ...]:
    """XGBoost's ``monotone_constraints``, one entry per encoded column of ``spec``.

    Raises :class:`InvalidInput` when a constrained feature is one-hot encoded in ``spec``
    (a parent trained without constraints)."""
    wanted = directions(schema)
    onehot = [c.name for c in spec.onehot if c.name in wanted]
    if onehot:
        raise InvalidInput(
            f"monotone constraints need {', '.join(map(repr, onehot))} encoded in order, and "
            "this FeatureSpec encodes them one-hot: continue from a version trained with "
            "monotone constraints, or train a new one"
        )
    by_column = {name: SIGN[direction] for name, direction in wanted.items()}
    blocks = {c.name for c in spec.onehot}
    return tuple(0 if name in blocks else by_column.get(name, 0) for name in spec.output_attributes)


def constraint_param(vector: tuple[int, ...]) -> str:
    return "(" + ",".join(str(v) for v in vector) + ")"


def _grid(loans: pd.DataFrame, schema: LoanSchema, name: str) -> list[str | bool | float]:
    column = schema.column(name)
    if column.type in CATEGORY_TYPES:
        return list(column.categories or ())
    if column.type == "boolean":
        return [False, True]
    values = loans[name].to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[~np.isnan(values)]
    grid = np.unique(np.quantile(values, np.linspace(0.01, 0.99, GRID_POINTS)))
    return [float(v) for v in grid]


def _along(sample: pd.DataFrame, name: str, value: str | bool | float) -> pd.DataFrame:
    moved = sample.copy()
    if isinstance(sample[name].dtype, pd.CategoricalDtype):
        categories = sample[name].cat.categories
        moved[name] = pd.Categorical([value] * len(sample), categories=categories)
    else:
        moved[name] = pd.Series(value, index=sample.index, dtype=sample[name].dtype)
    return moved


def check(
    predict: Callable[[np.ndarray], np.ndarray],
    spec: FeatureSpec,
    schema: LoanSchema,
    loans: pd.DataFrame,
    *,
    enforced: bool,
    seed: int = 0,
) -> MonotoneCheck:
    """Whether the schema's directions hold for ``predict`` (encoded features -> PD).

    ``loans`` is a validated frame (the test split); up to :data:`CHECK_LOANS` of them are
    sampled. Per constrained feature: the grid, how many loans moved the wrong way at least
    once, the largest wrong step, and whether the direction holds (no wrong step)."""
    wanted = directions(schema)
    sample = loans.sample(n=min(CHECK_LOANS, len(loans)), random_state=seed)
    transformer = FeatureTransformer(spec)
    features: dict[str, MonotoneFeature] = {}
    for name, direction in wanted.items():
        grid = _grid(loans, schema, name)
        if len(grid) < 2:
            features[name] = MonotoneFeature(
                direction=direction,
                grid=grid,
                loans=len(sample),
                violations=0,
                max_wrong_step=0.0,
                holds=True,
            )
            continue
        curves = np.column_stack(
            [
                predict(transformer.transform(_along(sample, name, value), dtype=np.float32))
                for value in grid
            ]
        )
        wrong = -SIGN[direction] * np.diff(curves, axis=1)  # > 0: a step the wrong way
        worst = float(wrong.max(initial=0.0)) + 0.0  # never -0.0
        violations = int((wrong > TOLERANCE).any(axis=1).sum())
        features[name] = MonotoneFeature(
            direction=direction,
            grid=[v if isinstance(v, str | bool) else round(v, 6) for v in grid],
            loans=len(sample),
            violations=violations,
            max_wrong_step=round(worst, 6),
            holds=violations == 0,
        )
    return MonotoneCheck(
        enforced=enforced,
        constraints=wanted,
        features=features,
        holds=all(f.holds for f in features.values()),
    )
