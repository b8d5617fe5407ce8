"""A report's window of the prediction log, bounded: past ``max_rows`` loans, a uniform sample
that is the same on every read, keeps a shadowed loan's two rows together, and still counts
every loan (per day and per version); the loan ids an outcome upload names, found a file at
a time."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loanrisk.monitoring.log import COLUMNS
from loanrisk.monitoring.log.reader import (
    known_loan_ids,
    logged_features,
    read_log,
    read_window,
)
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.storage import MemoryStorage, Storage
from loanrisk.storage.problems import Problem

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def write_day(
    storage: Storage, day: int, count: int, *, shadow: bool = True, file: str = "a"
) -> None:
    """``count`` loans scored on day ``day`` by version 1 (the champion) and, when
    ``shadow``, each also by version 2 as the shadow: the same request id and loan."""
    start = DAY + timedelta(days=day)
    rng = np.random.default_rng(day)
    rows = []
    for i in range(count):
        loan = json.dumps({"loan_amnt": int(rng.integers(500, 35_000)), "n": f"{day}-{i}"})
        base = {
            "time": start + timedelta(seconds=i),
            "request_id": f"r-{day}-{i}",
            "loan_id": f"L-{day}-{i}",
            "model": "m",
            "backend": "xgboost",
            "source": "v1",
            "features": loan,
            "probability": float(rng.random()),
            "label": False,
            "band": "A",
        }
        rows.append({**base, "version": 1, "role": "champion"})
        if shadow:
            rows.append(
                {
                    **base,
                    "time": base["time"] + timedelta(milliseconds=5),
                    "version": 2,
                    "role": "shadow",
                }
            )
    table = pa.Table.from_pylist(rows, schema=COLUMNS)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    storage.write_bytes(f"log/model=m/day={start:%Y-%m-%d}/{file}.parquet", buffer.getvalue())


def keys(frame) -> set[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return set(zip(frame["request_id"], frame["features"], frame["version"], strict=True))


def test_past_the_bound_a_stable_uniform_sample_that_keeps_pairs_and_counts_every_loan() -> None:
    storage = MemoryStorage()
    for day, count in enumerate((900, 1_500, 600)):
        write_day(storage, day, count)
    write_day(storage, 1, 300, shadow=False, file="b")  # a second file of day 1
    whole = read_log(storage, "log", model="m")
    assert len(whole) == 2 * 3_000 + 300

    window = read_window(storage, "log", model="m", max_rows=1_000)
    assert window.rows == len(whole)
    assert window.days == {
        (DAY + timedelta(days=d)).date(): n for d, n in enumerate((1_800, 3_300, 1_200))
    }
    assert window.versions == {1: 3_300, 2: 3_000}
    sample = window.frame
    assert 500 <= len(sample) <= 1_000 and window.sampled == len(sample)
    assert keys(sample) <= keys(whole)  # rows of the log, as they are
    assert sample["time"].is_monotonic_increasing
    # A shadowed loan is in with both of its rows, or not at all.
    paired = sample[sample["role"] == "shadow"]["request_id"]
    champions = set(sample[sample["role"] == "champion"]["request_id"])
    assert set(paired) <= champions
    shadowed = {f"r-{d}-{i}" for d, n in enumerate((900, 1_500, 600)) for i in range(n)}
    assert champions & shadowed <= set(paired)
    # Uniform: each day's share of the sample is its share of the log (within noise).
    shares = sample["time"].dt.floor("D").value_counts(normalize=True).sort_index().to_numpy()
    assert np.allclose(shares, np.array([1_800, 3_300, 1_200]) / 6_300, atol=0.05)
    # The same sample on every read; the bound not reached: every row, not sampled.
    again = read_window(storage, "log", model="m", max_rows=1_000).frame
    assert keys(again) == keys(sample)
    full = read_window(storage, "log", model="m", max_rows=10_000)
    assert full.sampled is None and len(full.frame) == full.rows == len(whole)


def test_one_loan_logged_over_and_over_is_still_cut_to_the_bound() -> None:
    storage = MemoryStorage()
    row = {
        "time": DAY,
        "request_id": None,
        "loan_id": None,
        "model": "m",
        "version": 1,
        "backend": "xgboost",
        "source": "v1",
        "features": "{}",
        "probability": 0.5,
        "label": False,
        "band": "A",
        "role": "champion",
    }
    table = pa.Table.from_pylist([row] * 2_000, schema=COLUMNS)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    storage.write_bytes("log/model=m/day=2026-11-20/a.parquet", buffer.getvalue())
    window = read_window(storage, "log", model="m", max_rows=300)
    assert window.rows == 2_000 and len(window.frame) == 300


def test_the_loan_ids_an_upload_names_are_found_a_file_at_a_time() -> None:
    storage = MemoryStorage()
    write_day(storage, 0, 50)
    write_day(storage, 1, 50, file="b")
    asked = ["L-0-3", "L-1-49", "L-9-9", "L-0-3"]
    assert known_loan_ids(storage, "log", model="m", among=asked) == {"L-0-3", "L-1-49"}
    assert known_loan_ids(storage, "log", model="other", among=asked) == set()


def test_an_unreadable_log_file_is_skipped_and_named() -> None:
    storage = MemoryStorage()
    write_day(storage, 0, 50)
    write_day(storage, 1, 30, shadow=False)
    folder = f"log/model=m/day={DAY:%Y-%m-%d}"
    whole = storage.read_bytes(f"{folder}/a.parquet")
    storage.write_bytes(f"{folder}/b.parquet", whole[: len(whole) // 2])
    storage.write_bytes(f"{folder}/c.parquet", b"not parquet")
    window = read_window(storage, "log", model="m")
    assert window.rows == 130 and window.versions == {1: 80, 2: 50}
    assert [(p.kind, p.path) for p in window.problems] == [
        ("log_file", f"{folder}/b.parquet"),
        ("log_file", f"{folder}/c.parquet"),
    ]
    assert len(read_log(storage, "log", model="m")) == 130
    problems: list[Problem] = []
    found = known_loan_ids(storage, "log", model="m", among=["L-0-1", "L-1-2"], problems=problems)
    assert found == {"L-0-1", "L-1-2"}
    assert [p.path for p in problems] == [f"{folder}/b.parquet", f"{folder}/c.parquet"]


def test_loans_logged_from_a_file_and_from_json_read_back_as_one_set_of_columns() -> None:
    """A file's loans are logged with its header's spelling (``LOAN_AMNT``), JSON loans with
    theirs: read back, each key is matched as validation matches a header, so a window holding
    both validates (it used to fail with "duplicate column(s)")."""
    schema = builtin_schema()
    loan = dict(schema.example_record())
    texts = [
        json.dumps(loan),
        json.dumps({f" {k.upper()}": v for k, v in loan.items()}),
    ]
    frame = logged_features(texts)
    assert list(frame.columns) == list(loan)
    loans = validate_frame(frame, schema=schema, mode="score", on_error="drop")
    assert len(loans.frame) == 2
    assert loans.frame.iloc[0].equals(loans.frame.iloc[1])
