"""Data-processing benchmark: loanrisk's pipeline against the reference's approach.

Both start from the same raw CSV and do the same job: expand to --size rows, split 75/25, fit
the preprocessing on the training part, and store the result. Each approach runs --repeat times
in a fresh subprocess (so peak RSS is its own); the table prints median seconds, peak RSS, and
the ratio reference / loanrisk measured in this one run.

    .venv/bin/python benchmarks/bench_data.py --size 4000000 --repeat 3

The reference approach is re-implemented faithfully from its description (REFERENCE.md): pandas
read, repeat the rows, noise added by Python-level comprehensions over zip(values, noise), a
categorical redraw per row, sklearn train_test_split + ColumnTransformer fit/transform, and
the transformed splits written as CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"

OURS = """
import json, resource, sys, time
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.storage import FsspecStorage
csv, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
loans = read_csv(csv)
manifest = process_dataset(loans, FsspecStorage(out), source=csv, size=size)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rss": rss, "rows": manifest.rows.total,
                  "stages": manifest.timings}))
"""

REFERENCE = """
import json, os, resource, sys, time
import numpy as np, pandas as pd
from sklearn.model_selection import train_test_split
from loanrisk.features.fit import build_column_transformer
csv, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
data = pd.read_csv(csv)
if size > len(data):
    repeats = -(-size // len(data))
    data = pd.concat([data] * repeats, ignore_index=True).iloc[:size].reset_index(drop=True)
    n = len(data)
    def noisy(column, noise):
        data[column] = [x + e for x, e in zip(data[column], noise)]
    noisy("person_age", np.random.randint(-1, 1, n))
    noisy("person_income", np.random.normal(0, 10, n))
    noisy("person_emp_length", np.random.randint(-1, 1, n))
    noisy("loan_amnt", np.random.normal(0, 5, n))
    noisy("loan_int_rate", np.random.normal(0, 0.2, n))
    noisy("loan_percent_income", np.random.randint(0, 100, n) / 1000)
    noisy("cb_person_cred_hist_length", np.random.randint(0, 2, n))
    for column in ("person_home_ownership", "loan_intent", "loan_grade",
                   "cb_person_default_on_file"):
        values = data[column].unique()
        data[column] = [np.random.choice(values) if r < 0.1 else x
                        for x, r in zip(data[column], np.random.rand(n))]
y = data.pop("loan_status")
X_train, X_test, y_train, y_test = train_test_split(data, y, test_size=0.25, random_state=0)
preprocessor = build_column_transformer().fit(X_train)
os.makedirs(out, exist_ok=True)
pd.DataFrame(preprocessor.transform(X_train)).assign(y=y_train.to_numpy()).to_csv(
    os.path.join(out, "train.csv"), index=False)
pd.DataFrame(preprocessor.transform(X_test)).assign(y=y_test.to_numpy()).to_csv(
    os.path.join(out, "test.csv"), index=False)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rss": rss, "rows": len(data)}))
"""


def run(script: str, csv: Path, size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        done = subprocess.run(
            [sys.executable, "-c", script, str(csv), str(size), out],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--size", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, list[dict[str, object]]] = {"loanrisk": [], "reference": []}
    for i in range(args.repeat):  # interleaved, so drift on a shared machine hits both alike
        for name, script in (("loanrisk", OURS), ("reference", REFERENCE)):
            clock = time.perf_counter()
            result = run(script, args.csv, args.size)
            results[name].append(result)
            print(
                f"  run {i + 1} {name:<9} {result['seconds']:8.2f}s "
                f"(wall {time.perf_counter() - clock:.1f}s)",
                file=sys.stderr,
            )

    def median(name: str, key: str) -> float:
        return statistics.median(float(str(r[key])) for r in results[name])

    print(f"\ndata processing, {args.csv.name} -> {args.size:,} rows, median of {args.repeat} runs")
    print(f"{'approach':<10} {'seconds':>9} {'peak RSS':>10}")
    for name in results:
        print(f"{name:<10} {median(name, 'seconds'):9.2f} {median(name, 'rss') / 2**30:8.2f} GiB")
    ratio = median("reference", "seconds") / median("loanrisk", "seconds")
    print(f"speed-up (reference / loanrisk): {ratio:.1f}x")
    print(f"loanrisk stages (last run): {results['loanrisk'][-1].get('stages')}")


if __name__ == "__main__":
    main()
