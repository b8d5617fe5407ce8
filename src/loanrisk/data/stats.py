"""Column statistics stored in dataset manifests, for data-quality reports and drift checks.

Numeric columns get moments, quantiles and a histogram over decile edges (so a later batch
can be binned on the same edges and compared, e.g. by population stability index);
categorical columns get counts per category.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from loanrisk.contracts import ColumnStats, Histogram
from loanrisk.schema import LoanSchema, builtin_schema

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _numeric_stats(values: np.ndarray) -> ColumnStats:
    present = values[~np.isnan(values)]
    count, missing = int(present.size), int(values.size - present.size)
    if present.size == 0:
        return ColumnStats(count=count, missing=missing)
    quantiles = np.quantile(present, QUANTILES)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, 11)))
    counts, _ = np.histogram(present, bins=edges) if edges.size > 1 else ([present.size], None)
    return ColumnStats(
        count=count,
        missing=missing,
        mean=float(present.mean()),
        std=float(present.std()),
        min=float(present.min()),
        max=float(present.max()),
        quantiles={
            f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, quantiles, strict=True)
        },
        histogram=Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts]),
    )


def _categorical_stats(values: pd.Categorical) -> ColumnStats:
    codes = np.asarray(values.codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(values.categories))
    return ColumnStats(
        count=int((codes >= 0).sum()),
        missing=int((codes < 0).sum()),
        counts={str(c): int(n) for c, n in zip(values.categories, counts, strict=True)},
    )


def column_stats(frame: pd.DataFrame, schema: LoanSchema | None = None) -> dict[str, ColumnStats]:
    """Statistics of every feature column of a validated frame (booleans as 0/1 numbers)."""
    stats: dict[str, ColumnStats] = {}
    for column in (schema or builtin_schema()).features:
        if column.type in ("categorical", "ordinal"):
            stats[column.name] = _categorical_stats(frame[column.name].array)
        else:
            values = frame[column.name].to_numpy(dtype=np.float64, na_value=np.nan)
            stats[column.name] = _numeric_stats(values)
    return stats
