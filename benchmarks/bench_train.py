"""Training benchmark: quality on the public dataset, and our overhead over a bare xgb.train.

    .venv/bin/python benchmarks/bench_train.py --sizes 1000000 4000000 --repeat 1

1. Quality: the public dataset, 75/25 stratified split (seed 0), the default configuration
   (the reference's parameters, 500 rounds): AUC, accuracy, Brier on the test split.
2. Overhead, per size: the public dataset expanded to N rows and processed (not timed). Then,
   each in its own subprocess, interleaved: loanrisk's whole training job (load Parquet,
   encode, train 500 rounds, evaluate, publish) and a bare ``xgb.train`` on a DMatrix built
   from the same encoded arrays (read from .npy, not timed). Overhead = ours - bare.
3. Continued training: +500 rounds on a new 1M-row batch from the production model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.features.transform import FeatureTransformer
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
NTHREAD = len(os.sched_getaffinity(0))
LABEL = builtin_schema().label_name

OURS = """
import json, resource, sys, time
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
root, dataset, nthread, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
start = time.perf_counter()
result = run_training(TrainingRequest(dataset=dataset, promote=True, **extra), FsspecStorage(root),
                      nthread=nthread)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  * 1024, "timings": result.manifest.timings, "auc": result.report.auc}))
"""

BARE = """
import json, resource, sys, time
import numpy as np, xgboost as xgb
from loanrisk.contracts import DEFAULT_ROUNDS
from loanrisk.training.train import DEFAULT_PARAMS

features, labels, nthread = np.load(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
matrix = xgb.DMatrix(features, label=labels, nthread=nthread)
xgb.train({**DEFAULT_PARAMS, "nthread": nthread}, matrix, DEFAULT_ROUNDS)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  * 1024}))
"""


def child(script: str, *args: str) -> dict[str, object]:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def quality(csv: Path, root: str) -> None:
    storage = FsspecStorage(root)
    dataset = process_dataset(read_csv(str(csv)), storage, source=csv.name, directory="quality")
    request = TrainingRequest(dataset=dataset.id, data_directory="quality", model_name="quality")
    result = run_training(request, storage, nthread=NTHREAD)
    report = result.report
    print(
        f"quality on {csv.name} (75/25 stratified, seed 0, reference parameters, 500 rounds): "
        f"AUC {report.auc:.4f}, accuracy {report.classification_report.accuracy:.4f}, "
        f"Brier {report.brier:.4f}"
    )


def overhead(csv: Path, root: str, size: int, repeat: int) -> str:
    storage = FsspecStorage(root)
    dataset = process_dataset(read_csv(str(csv)), storage, source=csv.name, size=size)
    catalogue = DatasetCatalogue(storage)
    train = catalogue.load_split(dataset.id, "train")
    spec = catalogue.load_spec(dataset.id)
    arrays = Path(root) / f"arrays-{size}"
    arrays.mkdir()
    np.save(arrays / "x.npy", FeatureTransformer(spec).transform(train, dtype=np.float32))
    np.save(arrays / "y.npy", train[LABEL].to_numpy())
    del train
    ours, bare = [], []
    for _ in range(repeat):
        ours.append(child(OURS, root, dataset.id, str(NTHREAD), "{}"))
        bare.append(child(BARE, str(arrays / "x.npy"), str(arrays / "y.npy"), str(NTHREAD)))
    ours_s = statistics.median(float(str(r["seconds"])) for r in ours)
    bare_s = statistics.median(float(str(r["seconds"])) for r in bare)
    ours_gib = float(str(ours[-1]["rss"])) / 2**30
    bare_gib = float(str(bare[-1]["rss"])) / 2**30
    print(
        f"\n{size:,} rows ({dataset.rows.train:,} train) x 500 rounds, {NTHREAD} threads, "
        f"median of {repeat}"
    )
    print(f"  bare xgb.train   {bare_s:8.1f}s   peak RSS {bare_gib:.2f} GiB")
    print(f"  loanrisk job     {ours_s:8.1f}s   peak RSS {ours_gib:.2f} GiB")
    print(f"  overhead         {ours_s - bare_s:8.1f}s = {(ours_s - bare_s) / bare_s:.1%} of bare")
    print(f"  loanrisk stages (last run): {ours[-1]['timings']}")
    return str(dataset.id)


def continued(csv: Path, root: str) -> None:
    storage = FsspecStorage(root)
    batch = process_dataset(read_csv(str(csv)), storage, source=csv.name, size=1_000_000, seed=7)
    result = child(OURS, root, batch.id, str(NTHREAD), json.dumps({"continue_from": "production"}))
    print(
        f"\ncontinued training: +500 rounds on a new 1,000,000-row batch: "
        f"{float(str(result['seconds'])):.1f}s (stages {result['timings']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-continued", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        quality(args.csv, root)
        for size in args.sizes:
            overhead(args.csv, root, size, args.repeat)
        if not args.no_continued and args.sizes:
            continued(args.csv, root)


if __name__ == "__main__":
    main()
