"""What a schema's declared origination date and amount cost the backtest on the log (issue
27, vintages): ``_Latest.add`` (validation/window.py) over one log file of ``--rows`` loans,
every one with an outcome, three ways side by side in one process, interleaved, medians:

* ``plain``: a schema that declares neither (no logged loan is read: the built-in schema);
* ``loanrisk``: both declared, read by one Arrow regular-expression search of the logged JSON;
* ``json``: both declared, read by parsing each logged loan with ``json.loads`` (the baseline
  the regular expression replaced).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_declared_vintages.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from loanrisk.monitoring.outcomes import OutcomeArrays, loan_id_hashes
from loanrisk.registry.masterscale import DEFAULT_SCALE
from loanrisk.schema.model import Column
from loanrisk.validation import window

LOAN = {
    "person_age": 30,
    "person_income": 59000,
    "person_home_ownership": "RENT",
    "person_emp_length": 3.0,
    "loan_intent": "PERSONAL",
    "loan_grade": "D",
    "loan_int_rate": 16.02,
    "loan_percent_income": 0.59,
    "cb_person_default_on_file": "Y",
    "cb_person_cred_hist_length": 3,
}
ORIGINATION = Column(name="opened_on", role="kept", type="date", origination=True)
AMOUNT = Column(name="loan_amnt", type="integer", amount=True)


def log_file(rows: int) -> tuple[pa.Table, OutcomeArrays]:
    """One log file of ``rows`` loans as the writer stores them, and an outcome for each."""
    rng = np.random.default_rng(0)
    ids = pa.array([f"L{i}" for i in range(rows)])
    texts = [
        json.dumps(
            {**LOAN, "opened_on": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", "loan_amnt": 1000 + i},
            separators=(",", ":"),
        )
        for i in range(rows)
    ]
    pds = rng.random(rows) * 0.3
    names = np.asarray(DEFAULT_SCALE.names, dtype=object)
    table = pa.table(
        {
            "time": pa.array(
                np.full(rows, np.datetime64("2026-01-01T00:00:00", "us")),
                pa.timestamp("us", tz="UTC"),
            ),
            "loan_id": ids,
            "version": pa.array(np.ones(rows, dtype=np.int64)),
            "probability": pa.array(pds),
            "grade": pa.array(names[DEFAULT_SCALE.grade_index(pds)]),
            "features": pa.array(texts),
        }
    )
    hashes = np.sort(loan_id_hashes(ids))
    outcomes = OutcomeArrays(
        hashes,
        np.zeros(rows, dtype=bool),
        np.full(rows, np.datetime64("NaT"), "datetime64[us]"),
        np.full(rows, np.datetime64("2026-06-01"), "datetime64[us]"),
    )
    return table, outcomes


class ParsedLatest(window._Latest):
    """The baseline: the declared fields read by parsing each logged loan."""

    def _read_loans(self, at: np.ndarray, texts: pa.ChunkedArray) -> None:
        loans = [json.loads(t) for t in texts.to_numpy(zero_copy_only=False)]
        assert self.originated is not None
        assert self.amounts is not None
        dates = pd.Series([loan.get("opened_on") for loan in loans], dtype=object)
        self.originated[at] = window._dates(dates, ORIGINATION)
        self.amounts[at] = window._amounts(pd.Series([loan.get("loan_amnt") for loan in loans]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; medians shown")
    args = parser.parse_args()
    table, outcomes = log_file(args.rows)
    ways = {
        "plain": lambda: window._Latest(outcomes, None, DEFAULT_SCALE),
        "loanrisk": lambda: window._Latest(outcomes, None, DEFAULT_SCALE, ORIGINATION, AMOUNT),
        "json": lambda: ParsedLatest(outcomes, None, DEFAULT_SCALE, ORIGINATION, AMOUNT),
    }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    found: dict[str, window._Latest] = {}
    for _ in range(args.repeat):
        for name, make in ways.items():
            latest = make()
            began = time.perf_counter()
            latest.add(table)
            seconds[name].append(time.perf_counter() - began)
            found[name] = latest
    ours, theirs = found["loanrisk"], found["json"]
    assert np.array_equal(ours.originated, theirs.originated)  # type: ignore[arg-type]
    assert np.array_equal(ours.amounts, theirs.amounts)  # type: ignore[arg-type]
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"{args.rows:,} logged loans, each with an outcome; medians of {args.repeat}")
    for name, value in median.items():
        print(f"{name:9} {value:8.3f} s  {value / median['plain']:5.2f}x plain")
    print(f"regex over json.loads: {median['json'] / median['loanrisk']:.2f}x faster")


if __name__ == "__main__":
    main()
