"""Scoring benchmark: a batch of loans from CSV to probabilities, and one loan at a time.

    .venv/bin/python benchmarks/bench_score.py --rows 1000000 --repeat 3

The model: 500 rounds, depth 10 (the reference's parameters), trained on the public dataset
expanded to --train-rows rows. The batch: --rows loans (expanded, no label) in one CSV.

Batch, each approach in its own subprocess (peak RSS is its own), interleaved, median of
--repeat:
* loanrisk: ``Scorer.score_csv`` (streamed in 100k-row chunks, numpy transform, oneDAL) with
  a scorer built beforehand, as a server holds it (its build time is printed separately);
* reference approach: pandas read, sklearn ``ColumnTransformer.transform``, the booster
  converted to daal4py and ``predict_proba`` (the reference converts on every request);
* stock XGBoost: pandas read, sklearn transform, ``Booster.predict``.
Probabilities of all three are compared (max abs difference).

One loan (dict in, result out, in-process, --calls calls): loanrisk's ``Scorer.score_record``
against the reference's per-record path (a one-row DataFrame, sklearn transform, daal4py
predict on an already converted model); then, side by side in interleaved rounds, the same
``score_record`` of the XGBoost version and of a scorecard trained on the same dataset
(``kind: scorecard``: bins, points table, numpy), and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _timing import p99, run_child, time_calls
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.data.expand import expand
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.features.fit import fit_column_transformer, sklearn_input
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

EXAMPLE_LOAN = builtin_schema().example_record()
LABEL = builtin_schema().label_name
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
NTHREAD = len(os.sched_getaffinity(0))
RECORD = EXAMPLE_LOAN

SETUP = """
import json, resource, sys, time
import numpy as np, pandas as pd
root, csv, out = sys.argv[1], sys.argv[2], sys.argv[3]
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.features.fit import fit_column_transformer, sklearn_input
storage = FsspecStorage(root)
model = ModelRegistry(storage).load("bench", "latest")
def sklearn_fitted():
    catalogue = DatasetCatalogue(storage)
    return fit_column_transformer(catalogue.load_split(model.manifest.dataset["id"], "train"))
def done(seconds, probability, **extra):
    np.save(out, probability)
    print(json.dumps({"seconds": seconds,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, **extra}))
"""

OURS = (
    SETUP
    + """
import io
from loanrisk.inference.scorer import Scorer
built = time.perf_counter()
scorer = Scorer(model, nthread=int(sys.argv[4]))  # once per model version when serving
built = time.perf_counter() - built
start = time.perf_counter()
with open(csv, "rb") as source:
    summary = scorer.score_csv(source, None)
seconds = time.perf_counter() - start
assert summary.scored > 0 and summary.scorer.backend == "onedal", summary
buffer = io.BytesIO()  # the probabilities, for the comparison (not timed)
with open(csv, "rb") as source:
    scorer.score_csv(source, buffer)
buffer.seek(0)
done(seconds, pd.read_csv(buffer)["probability"].to_numpy(), build=built)
"""
)

REFERENCE = (
    SETUP
    + """
import daal4py
preprocessor = sklearn_fitted()
start = time.perf_counter()
features = preprocessor.transform(sklearn_input(pd.read_csv(csv)))
daal_model = daal4py.mb.convert_model(model.booster)
probability = daal_model.predict_proba(features)[:, 1]
done(time.perf_counter() - start, probability)
"""
)

STOCK = (
    SETUP
    + """
import xgboost as xgb

preprocessor = sklearn_fitted()
model.booster.set_param({"nthread": int(sys.argv[4])})
start = time.perf_counter()
features = preprocessor.transform(sklearn_input(pd.read_csv(csv)))
probability = model.booster.predict(xgb.DMatrix(features, nthread=int(sys.argv[4])))
done(time.perf_counter() - start, probability)
"""
)


def child(script: str, root: str, csv: Path, out: Path) -> dict[str, Any]:
    return run_child(script, root, str(csv), str(out), str(NTHREAD))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        storage = FsspecStorage(root)
        loans = read_csv(str(args.csv))
        dataset = process_dataset(loans, storage, source="bench", size=args.train_rows)
        run_training(
            TrainingRequest(dataset=dataset.id, model_name="bench", rounds=args.rounds),
            storage,
            nthread=NTHREAD,
        )
        batch = Path(root) / "batch.csv"
        expand(loans.frame, args.rows, seed=99).drop(columns=[LABEL]).head(args.rows).to_csv(
            batch, index=False, float_format="%.6g"
        )
        approaches = {"loanrisk": OURS, "reference": REFERENCE, "stock xgboost": STOCK}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in approaches}
        for i in range(args.repeat):
            for name, script in approaches.items():
                results[name].append(child(script, root, batch, Path(root) / f"{i}-{name}.npy"))
                print(
                    f"  run {i + 1} {name:<14} {results[name][-1]['seconds']:7.2f}s",
                    file=sys.stderr,
                )
        probabilities = {n: np.load(Path(root) / f"0-{n}.npy") for n in approaches}
        print(
            f"\nbatch: {args.rows:,} loans from CSV to probabilities, {args.rounds}-round "
            f"depth-10 model, {NTHREAD} threads, median of {args.repeat}"
        )
        print(f"{'approach':<15} {'seconds':>8} {'peak RSS':>10} {'time / loanrisk':>16}")
        ours = statistics.median(r["seconds"] for r in results["loanrisk"])
        for name, runs in results.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            rss = statistics.median(r["rss"] for r in runs) / 2**30
            print(f"{name:<15} {seconds:8.2f} {rss:8.2f} GiB {seconds / ours:14.2f}x")
        build = statistics.median(r["build"] for r in results["loanrisk"])
        print(
            f"(loanrisk's scorer build, once per model version, not in its time: {build:.2f}s;"
            f" the reference converts its model inside every request, as above)"
        )
        for name in ("reference", "stock xgboost"):
            gap = float(np.max(np.abs(probabilities[name] - probabilities["loanrisk"])))
            print(f"max |p(loanrisk) - p({name})| = {gap:.2e}")

        model = ModelRegistry(storage).load("bench", "latest")
        scorer = Scorer(model)
        catalogue = DatasetCatalogue(storage)
        preprocessor = fit_column_transformer(catalogue.load_split(dataset.id, "train"))
        daal_model = scorer.backend.model  # type: ignore[attr-defined]

        def reference_one() -> float:
            features = preprocessor.transform(sklearn_input(pd.DataFrame([RECORD])))
            return float(daal_model.predict_proba(features)[0, 1])

        ours_one = time_calls(lambda: scorer.score_record(RECORD), args.calls)
        theirs_one = time_calls(reference_one, args.calls)
        print(f"\none loan, dict in -> result out, {args.calls} calls ({scorer.backend.name})")
        for name, values in (("loanrisk score_record", ours_one), ("reference path", theirs_one)):
            tail = p99(values)
            print(f"  {name:<22} median {statistics.median(values):9.1f} µs   p99 {tail:9.1f} µs")
        ratio = statistics.median(theirs_one) / statistics.median(ours_one)
        print(f"  loanrisk is {ratio:.0f}x faster (medians)")
        one_loan_kinds(storage, dataset.id, scorer, args.calls)


def one_loan_kinds(storage: FsspecStorage, dataset: str, trees: Scorer, calls: int) -> None:
    """``score_record`` of the XGBoost version and of a scorecard on the same dataset, in
    interleaved rounds (a busy neighbour slows both alike), with the reasons and without."""
    run_training(
        TrainingRequest(dataset=dataset, model_name="bench-scorecard", kind="scorecard"),
        storage,
        nthread=NTHREAD,
    )
    card = Scorer(ModelRegistry(storage).load("bench-scorecard", "latest"))
    rounds = 10
    print(f"\none loan by model kind, {calls} calls each in {rounds} interleaved rounds")
    for explain in (False, True):
        timed: dict[str, list[float]] = {"xgboost": [], "scorecard": []}
        for _ in range(rounds):
            for name, scorer in (("xgboost", trees), ("scorecard", card)):
                timed[name] += time_calls(
                    lambda s=scorer, e=explain: s.score_record(RECORD, explain=e),  # type: ignore[misc]
                    max(calls // rounds, 1),
                )
        for name, values in timed.items():
            label = f"{name} score_record" + (" +reasons" if explain else "")
            tail = p99(values)
            print(f"  {label:<31} median {statistics.median(values):9.1f} µs   p99 {tail:9.1f} µs")
        ratio = statistics.median(timed["scorecard"]) / statistics.median(timed["xgboost"])
        what = "with reasons" if explain else "without reasons"
        print(f"  scorecard / xgboost time, {what}: {ratio:.3f} (medians)")


if __name__ == "__main__":
    main()
