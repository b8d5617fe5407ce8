"""One-record preprocessing: loanrisk's plain-Python path against sklearn's transform.

    .venv/bin/python benchmarks/bench_transform.py [--calls 2000]

Fits both on the public dataset's training split, then times transforming one loan, record
by record, and prints median and p99 microseconds and the ratio, measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd

from _timing import p99, time_calls
from loanrisk.data.ingest import read_csv
from loanrisk.data.split import split_frame
from loanrisk.features.fit import (
    fit_column_transformer,
    sklearn_input,
    spec_from_column_transformer,
)
from loanrisk.features.transform import FeatureTransformer
from loanrisk.schema import builtin_schema

EXAMPLE_LOAN = builtin_schema().example_record()

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
RECORD = EXAMPLE_LOAN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    train, _ = split_frame(read_csv(str(args.csv)).frame)
    fitted = fit_column_transformer(train)
    ours = FeatureTransformer(spec_from_column_transformer(fitted, rows=len(train)))
    one_row = sklearn_input(pd.DataFrame([RECORD]))
    results = {
        "loanrisk transform_record": time_calls(lambda: ours.transform_record(RECORD), args.calls),
        "sklearn ColumnTransformer": time_calls(lambda: fitted.transform(one_row), args.calls),
    }
    print(f"one-record preprocessing, {args.calls} calls each")
    print(f"{'path':<28} {'median µs':>10} {'p99 µs':>10}")
    medians = {}
    for name, values in results.items():
        medians[name] = statistics.median(values)
        tail = p99(values)
        print(f"{name:<28} {medians[name]:10.1f} {tail:10.1f}")
    ratio = medians["sklearn ColumnTransformer"] / medians["loanrisk transform_record"]
    print(f"speed-up (sklearn / loanrisk, medians): {ratio:.0f}x")


if __name__ == "__main__":
    main()
