"""The binning engine: declared directions hold, special codes and missing get bins of their
own, values map back to the bins optbinning counted, the flags and the bounds, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from loanrisk.binning import (
    BinningLimits,
    SchemaBinning,
    bin_indices,
    fit_schema,
    iv_band,
    trend_of,
    woe_of,
)
from loanrisk.errors import InvalidInput
from loanrisk.schema import builtin_schema
from tests.binning.conftest import schema_of


def test_declared_directions_of_risk_hold_on_the_public_dataset(
    public_binning: SchemaBinning,
) -> None:
    declared = {c.name: c.risk for c in builtin_schema().features if c.risk}
    assert declared  # the built-in schema declares some
    for name, risk in declared.items():
        attribute = public_binning.attribute(name)
        rates = [b.event_rate for b in attribute.bins[: attribute.regular] if b.count]
        expected = sorted(rates, reverse=risk == "decreasing")
        assert rates == expected, (name, risk, rates)
        assert attribute.constraint == ("ascending" if risk == "increasing" else "descending")
        assert attribute.quality.follows_declared is True
    free = [a for a in public_binning.attributes if a.name not in declared]
    assert all(a.constraint == "none" and a.quality.follows_declared is None for a in free)


def test_values_map_to_the_bins_optbinning_counted(
    public_binning: SchemaBinning, public_frame: pd.DataFrame
) -> None:
    """bin_indices on the fitted rows gives every bin its count and defaults."""
    target = public_frame["loan_status"].to_numpy()
    for attribute in public_binning.attributes:
        index = bin_indices(attribute, public_frame[attribute.name].to_numpy(dtype=object))
        counts = np.bincount(index, minlength=len(attribute.bins))
        events = np.bincount(index, weights=target, minlength=len(attribute.bins))
        assert counts.tolist() == [b.count for b in attribute.bins], attribute.name
        assert events.astype(int).tolist() == [b.events for b in attribute.bins], attribute.name
        assert attribute.iv == pytest.approx(sum(b.iv for b in attribute.bins), abs=1e-12)


def test_gini_is_two_auc_minus_one_of_the_woe(
    public_binning: SchemaBinning, public_frame: pd.DataFrame
) -> None:
    """Held to scikit-learn's AUC of the attribute's WoE (bins with both classes only: a pure
    bin's WoE is 0 by convention, which reorders it)."""
    target = public_frame["loan_status"].to_numpy()
    checked = 0
    for attribute in public_binning.attributes:
        if any(b.count and b.events in (0, b.count) for b in attribute.bins):
            continue
        woe = woe_of(attribute, public_frame[attribute.name].to_numpy(dtype=object))
        assert attribute.gini == pytest.approx(2 * roc_auc_score(target, woe) - 1, abs=1e-9)
        checked += 1
    assert checked >= 5


SPECIAL_COLUMNS = [
    {
        "name": "months",
        "type": "numeric",
        "risk": "decreasing",
        "special": [{"values": [999, -1], "meaning": "not known"}],
    },
    {
        "name": "job",
        "type": "categorical",
        "categories": ["A", "B", "C", "UNKNOWN"],
        "special": [{"values": ["UNKNOWN"], "treat": "category", "meaning": "not given"}],
    },
]


@pytest.fixture(scope="module")
def specials() -> tuple[pd.DataFrame, SchemaBinning]:
    rng = np.random.default_rng(3)
    rows = 2_000
    months = rng.integers(0, 120, rows).astype(float)
    months[rng.random(rows) < 0.1] = 999.0
    months[rng.random(rows) < 0.05] = np.nan
    job = rng.choice(np.array(["A", "B", "C", "UNKNOWN"], dtype=object), rows)
    job[rng.random(rows) < 0.05] = None
    risk = 1 / (1 + np.exp(0.03 * np.nan_to_num(months, nan=60) - 1))
    bad = (rng.random(rows) < risk).astype(np.int8)
    frame = pd.DataFrame({"months": months, "job": job, "bad": bad})
    return frame, fit_schema(schema_of(SPECIAL_COLUMNS), frame)


def test_special_codes_and_missing_have_bins_of_their_own(
    specials: tuple[pd.DataFrame, SchemaBinning],
) -> None:
    frame, binned = specials
    months = binned.attribute("months")
    kinds = [b.kind for b in months.bins]
    assert kinds[-3:] == ["special", "special", "missing"]
    assert set(kinds[:-3]) == {"range"}
    by_code = {b.code: b for b in months.bins if b.kind == "special"}
    assert by_code[999.0].count == int((frame["months"] == 999).sum())
    assert by_code[-1.0].count == 0  # declared, never seen: an empty bin, WoE 0
    assert by_code[-1.0].woe == 0.0
    assert months.bins[-1].count == int(frame["months"].isna().sum())
    job = binned.attribute("job")
    assert [b.kind for b in job.bins][-2:] == ["special", "missing"]
    assert job.bins[-2].count == int((frame["job"] == "UNKNOWN").sum())
    assert all("UNKNOWN" not in b.categories for b in job.bins)
    assert job.bins[-1].count == int(frame["job"].isna().sum())
    # Scoring puts the codes, missing and an unseen category where the fit counted them.
    assert bin_indices(months, [999, -1, None, float("nan")]).tolist() == [
        len(months.bins) - 3,
        len(months.bins) - 2,
        len(months.bins) - 1,
        len(months.bins) - 1,
    ]
    assert bin_indices(job, [" unknown", None, "Z"]).tolist() == [
        len(job.bins) - 2,
        len(job.bins) - 1,
        len(job.bins) - 1,
    ]


def test_an_ordinal_is_binned_in_its_declared_order() -> None:
    rng = np.random.default_rng(5)
    grades = np.array(list("ABCDEFG"), dtype=object)
    codes = rng.integers(0, 7, 3_000)
    bad = (rng.random(3_000) < 0.05 + 0.1 * codes).astype(np.int8)
    frame = pd.DataFrame({"grade": grades[codes], "bad": bad})
    column = {"name": "grade", "type": "ordinal", "categories": list("ABCDEFG")}
    binned = fit_schema(schema_of([{**column, "risk": "increasing"}]), frame)
    grade = binned.attribute("grade")
    groups = [b.categories for b in grade.bins[: grade.regular]]
    assert [c for g in groups for c in g] == list("ABCDEFG")  # contiguous, in order
    rates = [b.event_rate for b in grade.bins[: grade.regular]]
    assert rates == sorted(rates)


def test_bands_and_trends() -> None:
    assert [iv_band(v) for v in (0.0, 0.0199, 0.02, 0.1, 0.29, 0.3, 0.5, 2.0)] == [
        "unpredictive",
        "unpredictive",
        "weak",
        "medium",
        "medium",
        "strong",
        "suspicious",
        "suspicious",
    ]
    assert trend_of([0.1, 0.2, 0.2, 0.3]) == "ascending"
    assert trend_of([0.3, 0.1]) == "descending"
    assert trend_of([0.1, 0.3, 0.2]) == "peak"
    assert trend_of([0.3, 0.1, 0.2]) == "valley"
    assert trend_of([0.1, 0.3, 0.2, 0.4]) == "none"
    assert trend_of([0.2]) == "ascending"


def test_a_small_bin_is_flagged(specials: tuple[pd.DataFrame, SchemaBinning]) -> None:
    _, binned = specials
    months = binned.attribute("months")
    missing = months.bins[-1]
    assert missing.small == (0 < missing.share < 0.05)
    assert months.quality.small_bins == sum(b.small for b in months.bins)


def test_above_max_rows_a_seeded_sample_is_binned(public_frame: pd.DataFrame) -> None:
    schema = builtin_schema()
    limits = BinningLimits(max_rows=800, max_bins=4)
    one = fit_schema(schema, public_frame, limits=limits)
    again = fit_schema(schema, public_frame, limits=limits)
    assert (one.rows, one.fitted_rows, one.sampled) == (len(public_frame), 800, True)
    assert one == again
    assert all(a.count == 800 and a.regular <= 4 for a in one.attributes)


def test_bad_input_is_refused_naming_the_column(public_frame: pd.DataFrame) -> None:
    schema = builtin_schema()
    with pytest.raises(InvalidInput, match="person_income") as absent:
        fit_schema(schema, public_frame.drop(columns=["person_income"]))
    assert absent.value.details["columns"] == ["person_income"]
    one_class = public_frame.assign(loan_status=0)
    with pytest.raises(InvalidInput, match="both defaults and repaid") as single:
        fit_schema(schema, one_class)
    assert single.value.details["field"] == "loan_status"
    with pytest.raises(InvalidInput, match="0 or 1"):
        fit_schema(schema, public_frame.assign(loan_status=2))


def test_an_attribute_with_no_value_to_split_still_has_its_bins() -> None:
    """Every row missing or a special code: one empty regular bin, the code's and the
    missing bin, with WoE and IV from their counts."""
    rng = np.random.default_rng(9)
    months = np.where(np.arange(1_000) < 400, 999.0, np.nan)
    bad = (rng.random(1_000) < np.where(months == 999, 0.4, 0.2)).astype(np.int8)
    frame = pd.DataFrame({"months": months, "job": None, "bad": bad})
    binned = fit_schema(schema_of(SPECIAL_COLUMNS), frame)
    months_bins = binned.attribute("months").bins
    assert [b.kind for b in months_bins] == ["range", "special", "special", "missing"]
    assert [b.count for b in months_bins] == [0, int((months == 999).sum()), 0, 1_000 - 400]
    events, count = (
        np.array([b.events for b in months_bins]),
        np.array([b.count for b in months_bins]),
    )
    share_bad, share_good = events / events.sum(), (count - events) / (count - events).sum()
    for i in (1, 3):
        assert months_bins[i].woe == pytest.approx(np.log(share_bad[i] / share_good[i]), abs=1e-12)
        assert months_bins[i].iv == pytest.approx(
            (share_bad[i] - share_good[i]) * months_bins[i].woe, abs=1e-12
        )
    job = binned.attribute("job")
    assert job.bins[0].categories == ["A", "B", "C"] and job.bins[0].count == 0
    assert job.bins[-1].count == 1_000
