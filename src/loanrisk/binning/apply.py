"""Map raw values to the bins of a fitted attribute: numpy, vectorised, for scoring."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from loanrisk.binning.models import AttributeBinning


def bin_indices(attribute: AttributeBinning, values: np.ndarray | Sequence[Any]) -> np.ndarray:
    """The bin of each value as an int64 array of positions in ``attribute.bins``.

    Numbers (``attribute.type == "numeric"``): float-convertible, NaN or None for missing;
    a value equal to a declared special code goes to its code's bin, any other to the regular
    bin ``[e_i, e_i+1)`` holding it (``searchsorted(edges, x, "right")``, as optbinning's
    ``transform`` places a value on an edge: in the bin above it).
    Categories: text (matched trimmed, case-insensitively) or None/NaN for missing; a
    declared special code goes to its bin, a category no regular bin holds (one the fitting
    rows never had, or an unknown one) to the missing bin.
    """
    if attribute.type == "numeric":
        return _numeric(attribute, values)
    return _categorical(attribute, values)


def with_codes(values: pd.Series[Any] | np.ndarray, codes: pd.Series[Any] | None) -> np.ndarray:
    """A validated column's values with the declared special codes its loans held put back
    where validation made them missing (``codes``: aligned with ``values``, missing where a
    loan held none, as :attr:`loanrisk.schema.Validated.special` and
    :meth:`~loanrisk.data.datasets.DatasetCatalogue.load_special` give them), so that each
    code falls into its own bin. Numbers come back as float64, categories as objects (None
    for missing); without ``codes``, the values so converted."""
    series = pd.Series(values)
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )
    out: np.ndarray = (
        series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        if numeric
        else series.astype(object).where(series.notna(), None).to_numpy(copy=True)
    )
    if codes is None:
        return out
    held = pd.Series(codes).notna().to_numpy()
    if held.any():
        out[held] = np.asarray(pd.Series(codes).astype(object))[held]
    return out


def woe_of(attribute: AttributeBinning, values: np.ndarray | Sequence[Any]) -> np.ndarray:
    """Each value's bin's WoE (float64), the scorecard's regression input."""
    table = np.array([b.woe for b in attribute.bins], dtype=np.float64)
    woe: np.ndarray = table[bin_indices(attribute, values)]
    return woe


def _numeric(attribute: AttributeBinning, values: np.ndarray | Sequence[Any]) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    index = np.searchsorted(np.asarray(attribute.edges, dtype=np.float64), numbers, "right")
    index = index.astype(np.int64)
    index[np.isnan(numbers)] = attribute.missing_index
    for position, b in enumerate(attribute.bins):
        if b.kind == "special" and isinstance(b.code, float | int):
            index[numbers == float(b.code)] = position
    return index


def _categorical(attribute: AttributeBinning, values: np.ndarray | Sequence[Any]) -> np.ndarray:
    lookup: dict[str, int] = {}
    for position, b in enumerate(attribute.bins):
        for category in b.categories:
            lookup[category] = position
        if b.kind == "special" and b.code is not None:
            lookup[str(b.code).strip().upper()] = position
    text = pd.Series(values, dtype=object).astype("string").str.strip().str.upper()
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    table = np.array(
        [lookup.get(str(u), attribute.missing_index) for u in uniques] + [attribute.missing_index],
        dtype=np.int64,
    )
    return table[codes]
