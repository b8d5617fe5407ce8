"""The public dataset binned once for the module's tests, and scorecardpy's ``woebin``."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loanrisk.binning import AttributeBinning, SchemaBinning, fit_schema
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from tests.conftest import REAL_CSV

SAMPLE = 3_000


@pytest.fixture(scope="session")
def public_frame() -> pd.DataFrame:
    """A seeded sample of the public dataset, validated against the built-in schema."""
    raw = pd.read_csv(REAL_CSV).sample(SAMPLE, random_state=7)
    return validate_frame(raw, schema=builtin_schema(), on_error="drop").frame


@pytest.fixture(scope="session")
def public_binning(public_frame: pd.DataFrame) -> SchemaBinning:
    return fit_schema(builtin_schema(), public_frame)


def _scorecardpy() -> Any:
    # scorecardpy's package __init__ imports pkg_resources for its sample data only
    # (germancredit); setuptools >= 81 no longer ships it. Nothing we call uses it.
    sys.modules.setdefault("pkg_resources", types.ModuleType("pkg_resources"))
    import scorecardpy

    return scorecardpy


def breaks_of(attribute: AttributeBinning) -> list[Any]:
    """The engine's regular bins as scorecardpy's ``breaks_list`` entry: inner edges of a
    number, category groups joined by '%,%' otherwise."""
    if attribute.type == "numeric":
        return list(attribute.edges)
    return ["%,%".join(b.categories) for b in attribute.bins if b.kind == "categories"]


def woebin_table(
    attribute: AttributeBinning, values: pd.Series[Any], target: np.ndarray
) -> pd.DataFrame:
    """scorecardpy's ``woebin`` of one attribute on the engine's breaks: one row per bin
    (``missing`` first when present), with ``count``, ``bad``, ``woe`` and ``bin_iv``; each
    special code the engine found in ``values`` is one of scorecardpy's ``special_values``
    (a bin labelled ``str(code)``)."""
    sc = _scorecardpy()
    if attribute.type == "numeric":
        x: pd.Series[Any] = pd.to_numeric(pd.Series(values), errors="coerce").astype(float)
    else:
        x = pd.Series(values).astype("string").astype(object).where(pd.Series(values).notna())
    frame = pd.DataFrame({"x": x.to_numpy(), "y": np.asarray(target, dtype=int)})
    codes = [b.code for b in attribute.bins if b.kind == "special" and b.count]
    # ignore_datetime_cols / replace_blank: scorecardpy 0.1.9.7's checks use pandas < 3 APIs.
    with warnings.catch_warnings():
        # scorecardpy builds frames the way pandas 4 will refuse: its deprecations, not ours.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        out = sc.woebin(
            frame,
            y="y",
            x=["x"],
            breaks_list={"x": breaks_of(attribute)},
            special_values={"x": codes} if codes else None,
            ignore_datetime_cols=False,
            replace_blank=False,
            print_info=False,
        )
    table: pd.DataFrame = out["x"]
    return table


Woebin = Callable[[AttributeBinning, "pd.Series[Any]", np.ndarray], pd.DataFrame]


@pytest.fixture(scope="session")
def woebin() -> Woebin:
    return woebin_table


def schema_of(columns: list[dict[str, Any]], name: str = "generated") -> LoanSchema:
    label = {"name": "bad", "role": "label", "type": "integer"}
    return LoanSchema.model_validate({"name": name, "columns": [*columns, label]})
