"""Fit optimal bins for the feature attributes of a schema, with optbinning.

optbinning (Navas-Palencia, "Optimal binning: mathematical programming formulation", 2020)
is imported here only, when a fit runs: ``import loanrisk`` and the CLI stay light.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.binning.apply import with_codes
from loanrisk.binning.models import (
    SMALL_BIN_SHARE,
    AttributeBinning,
    Bin,
    BinningLimits,
    Constraint,
    Quality,
    SchemaBinning,
    Trend,
    iv_band,
)
from loanrisk.errors import InvalidInput
from loanrisk.extras import require
from loanrisk.schema.model import CATEGORY_TYPES, Column, LoanSchema

#: The trend asked of optbinning for each declared direction of risk.
_DECLARED: dict[str, Constraint] = {"increasing": "ascending", "decreasing": "descending"}


@dataclass(frozen=True)
class _Prepared:
    """One attribute's values as optbinning takes them, with its special codes."""

    x: np.ndarray
    dtype: str  # "numerical" | "categorical"
    specials: dict[str, list[Any]]  # optbinning's special_codes: one bin per declared code
    codes: list[float | str]  # the declared codes, in the order of ``specials``


def fit_schema(
    schema: LoanSchema,
    frame: pd.DataFrame,
    *,
    limits: BinningLimits | None = None,
    special: pd.DataFrame | None = None,
) -> SchemaBinning:
    """Bin every feature attribute of ``schema`` on ``frame`` against its label.

    ``frame`` holds validated loans (:func:`loanrisk.schema.validate_frame` or a dataset's
    split): the features as the schema declares them (numbers as floats, booleans as 0/1,
    categorical and ordinal columns as categoricals or text) and the label as 0/1. Special
    codes still in the frame (a raw value equal to a declared code) fall into their code's
    bin. Validation turns codes declared ``treat: missing`` into missing values; ``special``
    (aligned with ``frame``: ``Validated.special``, or a dataset's
    :meth:`~loanrisk.data.datasets.DatasetCatalogue.load_special`) says which code each loan
    held, and puts it back (:func:`~loanrisk.binning.apply.with_codes`), so that each code
    gets its own bin. Without it (a dataset stored before codes were kept) those loans fall
    into the missing bin.

    Above ``limits.max_rows`` rows a seeded sample of that many rows is fitted on (the same
    rows for the same frame and seed). Raises :class:`InvalidInput` naming the column when a
    feature or the label is absent, or the label is not 0/1 with both classes present;
    :class:`~loanrisk.errors.NotInstalled` without the ``scorecard`` extra (optbinning).
    """
    require("scorecard")
    limits = limits or BinningLimits()
    label = schema.label_name
    absent = [c for c in (*schema.feature_names, label) if c not in frame.columns]
    if absent:
        raise InvalidInput(
            f"the frame lacks column(s) {', '.join(absent)} of schema {schema.name!r}",
            details={"columns": absent},
        )
    rows = len(frame)
    sample = _sample(rows, limits)
    target = _target(frame[label], label)
    if sample is not None:
        frame, target = frame.iloc[sample], target[sample]
        special = None if special is None else special.iloc[sample]
    held = special if special is not None else pd.DataFrame()
    attributes = []
    for column in schema.features:
        codes = held.get(column.name)
        values = frame[column.name]
        attributes.append(
            fit_attribute(
                column,
                values if codes is None else with_codes(values, codes),
                target,
                limits=limits,
            )
        )
    return SchemaBinning(
        schema_name=schema.name,
        rows=rows,
        fitted_rows=len(target),
        sampled=sample is not None,
        events=int(target.sum()),
        limits=limits,
        attributes=attributes,
    )


def fit_attribute(
    column: Column,
    values: pd.Series[Any] | np.ndarray,
    target: np.ndarray,
    *,
    limits: BinningLimits | None = None,
) -> AttributeBinning:
    """Bin one feature attribute: optbinning's OptimalBinning (``numerical`` for numbers,
    booleans and ordinals on their declared order, ``categorical`` for categorical columns),
    at most ``limits.max_bins`` regular bins, a monotonic trend following the column's
    declared direction of risk (``increasing``: ascending event rate), else
    ``limits.undeclared_trend``; one bin per declared special code and a missing bin.

    ``values`` and ``target`` (0/1) have one entry per row; no sampling happens here."""
    limits = limits or BinningLimits()
    target = np.asarray(target)
    if column.role != "feature" or column.type == "date":
        raise InvalidInput(f"{column.name}: only feature attributes are binned")
    prepared = _prepare(column, values)
    constraint = _DECLARED.get(column.risk or "") or limits.undeclared_trend
    if not _present(prepared).any():  # nothing to split: one empty regular bin
        splits: Any = []
        counts = _counts_without_values(prepared, target)
    else:
        splits, counts = _optimal(column, prepared, target, constraint, limits)
    edges = [] if prepared.dtype != "numerical" else [float(s) for s in splits]
    bins = _bins(column, prepared, splits, counts, edges)
    return _attribute(column, constraint, edges, bins, counts.gini, target)


@dataclass(frozen=True)
class _Counts:
    """Per bin (regular, one per special code, missing): counts, events, WoE (our sign), IV;
    and the attribute's Gini."""

    count: np.ndarray
    events: np.ndarray
    woe: np.ndarray
    iv: np.ndarray
    gini: float


def _optimal(
    column: Column,
    prepared: _Prepared,
    target: np.ndarray,
    constraint: Constraint,
    limits: BinningLimits,
) -> tuple[Any, _Counts]:
    from optbinning import OptimalBinning  # heavy: imported when a fit runs

    optb = OptimalBinning(
        name=column.name,
        dtype=prepared.dtype,
        solver="cp",
        max_n_bins=limits.max_bins,
        monotonic_trend=None if constraint == "none" else constraint,
        special_codes=prepared.specials or None,
        time_limit=limits.time_limit,
    )
    with warnings.catch_warnings():
        # optbinning and sklearn speak of solver and convergence details; not the caller's.
        warnings.simplefilter("ignore")
        optb.fit(prepared.x, target)
        table = optb.binning_table.build(add_totals=False)
        gini = float(optb.binning_table.gini)
    if not prepared.specials:  # optbinning's table has one (empty) "Special" row regardless
        table = table.drop(index=table.index[-2])
    counts = _Counts(
        count=table["Count"].to_numpy(dtype=np.int64),
        events=table["Event"].to_numpy(dtype=np.int64),
        woe=-table["WoE"].to_numpy(dtype=np.float64),  # optbinning's: non-event over event
        iv=table["IV"].to_numpy(dtype=np.float64),
        gini=gini,
    )
    return optb.splits, counts


def _present(prepared: _Prepared) -> np.ndarray:
    """Rows holding a value that is neither missing nor a special code."""
    x = pd.Series(prepared.x)
    special = x.isin([v for values in prepared.specials.values() for v in values])
    return (x.notna() & ~special).to_numpy()


def _counts_without_values(prepared: _Prepared, target: np.ndarray) -> _Counts:
    """The bins of an attribute with no value to split (every row missing or a special code),
    with WoE and IV as optbinning's binning table computes them."""
    x = pd.Series(prepared.x)
    masks = [np.zeros(len(x), dtype=bool)]  # the one regular bin: empty
    masks += [x.isin(values).to_numpy() for values in prepared.specials.values()]
    masks.append(x.isna().to_numpy())
    count = np.array([m.sum() for m in masks], dtype=np.int64)
    events = np.array([target[m].sum() for m in masks], dtype=np.int64)
    nonevents = count - events
    share_event = events / max(events.sum(), 1)
    share_nonevent = nonevents / max(nonevents.sum(), 1)
    both = (events > 0) & (nonevents > 0)
    woe = np.zeros(len(count))
    woe[both] = np.log(share_event[both] / share_nonevent[both])
    iv = np.where(both, (share_event - share_nonevent) * woe, 0.0)
    from optbinning.binning.metrics import gini

    return _Counts(count, events, woe, iv, float(gini(events, nonevents)))


def _sample(rows: int, limits: BinningLimits) -> np.ndarray | None:
    """Ascending row positions of a seeded sample of ``limits.max_rows``, or None."""
    if rows <= limits.max_rows:
        return None
    rng = np.random.default_rng(limits.seed)
    return np.sort(rng.choice(rows, size=limits.max_rows, replace=False))


def _target(series: pd.Series[Any], label: str) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isin(values, (0.0, 1.0)).all():
        raise InvalidInput(
            f"{label}: the label must be 0 or 1 on every row", details={"field": label}
        )
    if len(values) and values.min() == values.max():
        raise InvalidInput(
            f"{label}: both defaults and repaid loans are needed to bin", details={"field": label}
        )
    return values.astype(np.int8)


def _special_codes(column: Column) -> list[float | str]:
    numbers = column.type not in CATEGORY_TYPES
    codes: list[float | str] = []
    for special in column.special or ():
        for value in special.values:
            code: float | str = float(value) if numbers else str(value).strip().upper()
            if code not in codes:
                codes.append(code)
    return codes


def _code_text(code: float | str) -> str:
    return f"{code:g}" if isinstance(code, float) else code


def _prepare(column: Column, values: pd.Series[Any] | np.ndarray) -> _Prepared:
    codes = _special_codes(column)
    if column.type not in CATEGORY_TYPES:
        x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        specials = {_code_text(c): [c] for c in codes}
        return _Prepared(x, "numerical", specials, codes)
    text = pd.Series(values).astype("string").str.strip().str.upper()
    if column.type == "categorical":
        x = text.to_numpy(dtype=object, na_value=np.nan)
        return _Prepared(x, "categorical", {str(c): [c] for c in codes}, codes)
    # An ordinal: its position in the declared order; a special code, a sentinel below 0.
    order = {c: float(i) for i, c in enumerate(column.categories or ())}
    order.update({str(c): -1.0 - i for i, c in enumerate(codes)})
    x = text.map(order).to_numpy(dtype=np.float64, na_value=np.nan)
    return _Prepared(x, "numerical", {str(c): [-1.0 - i] for i, c in enumerate(codes)}, codes)


def _bins(
    column: Column, prepared: _Prepared, splits: Any, table: _Counts, edges: list[float]
) -> list[Bin]:
    n_event, counts, woe, iv = table.events, table.count, table.woe, table.iv
    total = int(counts.sum())
    shapes = _regular_shapes(column, prepared, splits, edges)
    shapes += [
        {"kind": "special", "label": f"special {_code_text(c)}", "code": c} for c in prepared.codes
    ]
    shapes.append({"kind": "missing", "label": "missing"})
    if len(shapes) != len(counts):  # optbinning's table: regular, one per special, missing
        raise AssertionError(f"{column.name}: {len(shapes)} bins, table has {len(counts)}")
    bins = []
    for i, shape in enumerate(shapes):
        count = int(counts[i])
        share = count / total if total else 0.0
        bins.append(
            Bin(
                **shape,
                count=count,
                events=int(n_event[i]),
                share=share,
                event_rate=int(n_event[i]) / count if count else 0.0,
                woe=float(woe[i]) + 0.0,  # no -0.0 in JSON
                iv=max(float(iv[i]), 0.0),
                small=count > 0 and share < SMALL_BIN_SHARE,
            )
        )
    return bins


def _regular_shapes(
    column: Column, prepared: _Prepared, splits: Any, edges: list[float]
) -> list[dict[str, Any]]:
    if prepared.dtype == "categorical":
        groups = [sorted(str(c) for c in group) for group in splits]
        if not groups:  # no split: every category seen is one group (none seen: declared)
            seen = pd.Series(prepared.x).dropna().unique()
            group = sorted(str(c) for c in seen if str(c) not in prepared.specials)
            declared = [c for c in column.categories or () if c not in prepared.specials]
            groups = [group or declared]
        return [{"kind": "categories", "label": _group_label(g), "categories": g} for g in groups]
    bounds = [-math.inf, *edges, math.inf]
    shapes = []
    for low, high in itertools.pairwise(bounds):
        shape: dict[str, Any] = {
            "kind": "range",
            "label": f"[{_number(low)}, {_number(high)})",
            "lower": None if math.isinf(low) else low,
            "upper": None if math.isinf(high) else high,
        }
        if column.type == "ordinal":
            group = [c for i, c in enumerate(column.categories or ()) if low <= i < high]
            shape.update(kind="categories", label=_group_label(group), categories=group)
        shapes.append(shape)
    return shapes


def _number(value: float) -> str:
    return "-inf" if value == -math.inf else "inf" if value == math.inf else f"{value:.6g}"


def _group_label(group: list[str]) -> str:
    shown = ", ".join(group[:8]) + (f", ... ({len(group)})" if len(group) > 8 else "")
    return "{" + shown + "}"


def trend_of(rates: list[float]) -> Trend:
    """How a sequence of event rates moves: ``ascending``/``descending`` (never falls/rises;
    constant or fewer than two: ``ascending``), ``peak``/``valley`` (one turn), else
    ``none``."""
    steps = [b - a for a, b in itertools.pairwise(rates) if b != a]
    signs = [s > 0 for s in steps]
    turns = sum(1 for a, b in itertools.pairwise(signs) if a != b)
    if turns == 0:
        return "ascending" if not signs or signs[0] else "descending"
    if turns == 1:
        return "peak" if signs[0] else "valley"
    return "none"


def _attribute(
    column: Column,
    constraint: Constraint,
    edges: list[float],
    bins: list[Bin],
    gini: float,
    target: np.ndarray,
) -> AttributeBinning:
    regular = [b for b in bins if b.kind in ("range", "categories")]
    trend = trend_of([b.event_rate for b in regular if b.count])
    declared = _DECLARED.get(column.risk or "")
    flat = len({b.event_rate for b in regular if b.count}) <= 1
    iv = float(sum(b.iv for b in bins))
    return AttributeBinning(
        name=column.name,
        title=column.label_text,
        type="categorical" if column.type in CATEGORY_TYPES else "numeric",
        schema_type=column.type,
        constraint=constraint,
        edges=edges if column.type not in CATEGORY_TYPES else [],
        bins=bins,
        count=len(target),
        events=int(np.asarray(target).sum()),
        iv=iv,
        gini=gini,
        quality=Quality(
            iv_band=iv_band(iv),
            trend=trend,
            monotonic=trend in ("ascending", "descending"),
            follows_declared=None if declared is None else (flat or trend == declared),
            small_bins=sum(b.small for b in bins),
        ),
    )
