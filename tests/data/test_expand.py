"""Expansion: size, label kept, noise as documented, seeded, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.expand import CHUNK_ROWS, expand
from loanrisk.schema import Validated
from tests.builtin import LABEL

from ..conftest import REAL_CSV


@pytest.fixture(scope="module")
def expanded(real_loans: Validated) -> pd.DataFrame:
    return expand(real_loans.frame, 100_000, seed=1)


def source_of(real_loans: Validated, n: int) -> pd.DataFrame:
    return real_loans.frame.iloc[np.arange(n) % len(real_loans.frame)].reset_index(drop=True)


def test_no_expansion_when_size_is_not_larger(real_loans: Validated) -> None:
    assert expand(real_loans.frame, 1_000) is real_loans.frame
    assert expand(real_loans.frame, len(real_loans.frame)) is real_loans.frame


def test_rows_are_repeated_in_order_with_the_label_kept(
    real_loans: Validated, expanded: pd.DataFrame
) -> None:
    assert len(expanded) == 100_000
    source = source_of(real_loans, 100_000)
    np.testing.assert_array_equal(expanded[LABEL].to_numpy(), source[LABEL].to_numpy())
    assert expanded[LABEL].dtype == np.int8


def test_integer_noise_is_symmetric_for_age_and_one_sided_for_credit_history(
    real_loans: Validated, expanded: pd.DataFrame
) -> None:
    source = source_of(real_loans, 100_000)
    age_noise = expanded["person_age"] - source["person_age"]
    assert set(np.unique(age_noise)) == {-1.0, 0.0, 1.0}  # the reference never adds +1
    assert abs(age_noise.mean()) < 0.02
    history_noise = expanded["cb_person_cred_hist_length"] - source["cb_person_cred_hist_length"]
    assert set(np.unique(history_noise)) == {0.0, 1.0}
    percent_noise = expanded["loan_percent_income"] - source["loan_percent_income"]
    assert percent_noise.min() >= 0 and percent_noise.max() <= 0.099 + 1e-12


def test_normal_noise_has_the_documented_spread(
    real_loans: Validated, expanded: pd.DataFrame
) -> None:
    source = source_of(real_loans, 100_000)
    for column, sd in (("person_income", 10), ("loan_amnt", 5), ("loan_int_rate", 0.2)):
        noise = (expanded[column] - source[column]).dropna()
        assert abs(noise.std() / sd - 1) < 0.03, column
        assert abs(noise.mean()) < sd * 0.02, column


def test_missing_values_stay_missing_and_nothing_goes_negative(
    real_loans: Validated, expanded: pd.DataFrame
) -> None:
    source = source_of(real_loans, 100_000)
    for column in ("person_emp_length", "loan_int_rate"):
        np.testing.assert_array_equal(expanded[column].isna(), source[column].isna())
    assert expanded["person_emp_length"].min() == 0  # clipped: the reference can give -1


def test_about_one_category_in_ten_is_redrawn(
    real_loans: Validated, expanded: pd.DataFrame
) -> None:
    source = source_of(real_loans, 100_000)
    for column, k in (("loan_grade", 7), ("cb_person_default_on_file", 2)):
        changed = (expanded[column].astype(str) != source[column].astype(str)).mean()
        assert abs(changed - 0.1 * (1 - 1 / k)) < 0.01, column
        assert list(expanded[column].cat.categories) == list(source[column].cat.categories)


def test_same_seed_same_rows_other_seed_other_rows(real_loans: Validated) -> None:
    a = expand(real_loans.frame, 50_000, seed=5)
    pd.testing.assert_frame_equal(a, expand(real_loans.frame, 50_000, seed=5))
    assert not a.equals(expand(real_loans.frame, 50_000, seed=6))


def test_progress_is_reported_per_chunk(real_loans: Validated) -> None:
    calls: list[tuple[int, int]] = []
    expand(real_loans.frame, CHUNK_ROWS + 10, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(CHUNK_ROWS, CHUNK_ROWS + 10), (CHUNK_ROWS + 10, CHUNK_ROWS + 10)]


PEAK_SCRIPT = """
import json, resource, sys
from loanrisk.data.ingest import read_csv
from loanrisk.data.expand import expand
loans = read_csv(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = expand(loans.frame, 4_000_000, seed=0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after, "output": int(out.memory_usage().sum())}))
"""


@pytest.mark.slow
def test_expanding_to_4m_rows_holds_one_copy_plus_a_bounded_working_set() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(REAL_CSV)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout)
    growth = figures["after"] - figures["before"]
    assert figures["output"] // 10_000 == 4_000_000 * (7 * 8 + 4 + 1) // 10_000
    # One output table plus one chunk's working set (~100 MB), never a second copy.
    assert growth < figures["output"] + 150 * 2**20, figures
