"""The compact outcomes a window's backtest reads (:func:`read_outcome_arrays`): the same
latest outcome per loan as :func:`read_outcomes` (the pandas frame), held as sorted 64-bit
hashes of the loan ids with aligned arrays; unreadable files skipped and named alike."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from loanrisk.monitoring.outcomes import (
    loan_id_hashes,
    read_outcome_arrays,
    read_outcomes,
    store_outcomes,
)
from loanrisk.storage import MemoryStorage
from loanrisk.storage.problems import Problem


def upload(storage: MemoryStorage, ids: list[str], defaulted: list[bool], **dated: list) -> None:
    frame = pd.DataFrame(
        {"loan_id": ids, "defaulted": defaulted, "observed_on": [date(2026, 11, 30)] * len(ids)}
    )
    for column, values in dated.items():
        frame[column] = pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
    store_outcomes(storage, "outcomes", frame)
    time.sleep(0.002)  # the files are named by the microsecond they were stored


def test_the_latest_upload_of_a_loan_wins_as_in_the_frame() -> None:
    storage = MemoryStorage()
    upload(storage, ["a", "b", "c"], [False, False, True])
    upload(
        storage,
        ["b", "d"],
        [True, False],
        defaulted_at=["2026-10-01T12:00:00Z", None],
        observed_at=[None, "2026-11-02T08:00:00Z"],
    )
    frame = read_outcomes(storage, "outcomes").set_index("loan_id").sort_index()
    found = read_outcome_arrays(storage, "outcomes")
    assert len(found) == len(frame) == 4
    at = found.positions(loan_id_hashes(pa.array(list(frame.index))))
    assert (at >= 0).all()
    assert found.defaulted[at].tolist() == frame["defaulted"].tolist()
    assert found.defaulted_at[at[1]] == np.datetime64("2026-10-01T12:00:00", "us")
    assert np.isnat(found.defaulted_at[at[[0, 2, 3]]]).all()
    # observed: observed_at, else the last microsecond of observed_on
    assert found.observed[at[3]] == np.datetime64("2026-11-02T08:00:00", "us")
    assert found.observed[at[0]] == np.datetime64("2026-11-30T23:59:59.999999", "us")


def test_ids_without_an_outcome_are_not_found_and_hashes_are_stable() -> None:
    storage = MemoryStorage()
    upload(storage, ["x", "y"], [True, False])
    found = read_outcome_arrays(storage, "outcomes")
    where = found.positions(loan_id_hashes(pa.array(["y", "nope", "x", "zz" * 60])))
    assert (where >= 0).tolist() == [True, False, True, False]
    assert found.defaulted[where[[0, 2]]].tolist() == [False, True]
    # the same id hashes alike from a chunked column and a plain array
    chunked = pa.chunked_array([pa.array(["x"]), pa.array(["y"])])
    assert loan_id_hashes(chunked).tolist() == loan_id_hashes(pa.array(["x", "y"])).tolist()
    assert np.all(np.diff(found.ids.astype(np.float64)) >= 0)


def test_no_outcomes_and_an_unreadable_file_are_read_as_the_frame_reads_them() -> None:
    storage = MemoryStorage()
    empty = read_outcome_arrays(storage, "outcomes")
    assert len(empty) == 0
    assert empty.positions(loan_id_hashes(pa.array(["a"]))).tolist() == [-1]
    upload(storage, ["a", "b"], [True, False])
    storage.write_bytes("outcomes/0-broken.parquet", b"PAR1 truncated")
    problems: list[Problem] = []
    found = read_outcome_arrays(storage, "outcomes", problems=problems)
    assert len(found) == 2
    assert [(p.kind, p.path) for p in problems] == [("outcome_file", "outcomes/0-broken.parquet")]
