"""The lean models: tuned and calibrated (one of them monotone), against the reference's
model and approach, side by side in one run.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_lean.py --repeat 3

1. Quality on the public dataset's standard 75/25 split (seed 0): the reference's model (500
   rounds, depth 10) against two lean models, each ``loanrisk tune`` (``--trials`` trials,
   ``--objective``, 3-fold CV on the training split) then ``train --params-from STUDY:lean
   --calibration isotonic``: ``lean`` without constraints, ``lean monotone`` with the
   schema's monotone constraints in the search and the training. Test AUC, Brier, ECE, trees,
   tree nodes, and the directions of risk that hold.
2. Speed: ``--rows`` loans (the public data expanded, no label) from CSV to PD, each approach
   in its own subprocess, interleaved, median of ``--repeat``:
   * stock XGBoost scoring the reference model through the reference's approach: pandas
     read, sklearn ``ColumnTransformer.transform``, ``Booster.predict``;
   * loanrisk with each lean model: ``Scorer.score_csv`` to calibrated PD (streamed chunks,
     numpy transform, oneDAL, the calibration map);
   * loanrisk with the reference model, for context.
3. One loan in-process with the lean model: ``Scorer.score_record``, median over ``--calls``.
4. Scaling (``--scaling``): the lean model's ``score_csv`` time and peak RSS per size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _timing import p99, run_child, time_calls
from loanrisk.contracts import TuneJob
from loanrisk.data.expand import expand
from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from loanrisk.training.tune import run_tuning, tree_nodes, tuned_params

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
NTHREAD = len(os.sched_getaffinity(0))
#: The lean models: name -> searched and trained with monotone constraints.
LEAN = {"lean": False, "lean monotone": True}
LABEL = builtin_schema().label_name

SETUP = """
import json, sys, time
root, csv, name, nthread = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage
storage = FsspecStorage(root)
model = ModelRegistry(storage).load(name, "latest")
def peak_rss():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child started by a
    # parent holding a large frame would report the parent's size.
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
def done(seconds, rows, **extra):
    print(json.dumps({"seconds": seconds, "rows": rows, "rss": peak_rss(), **extra}))
"""

LOANRISK = (
    SETUP
    + """
from loanrisk.inference.scorer import Scorer
scorer = Scorer(model, nthread=nthread)  # once per model version, as a server holds it
start = time.perf_counter()
with open(csv, "rb") as source:
    summary = scorer.score_csv(source, None)
done(time.perf_counter() - start, summary.scored, backend=summary.scorer.backend,
     calibrated=model.calibration is not None)
"""
)

STOCK = (
    SETUP
    + """
import pandas as pd, xgboost as xgb
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.features.fit import fit_column_transformer, sklearn_input
preprocessor = fit_column_transformer(
    DatasetCatalogue(storage).load_split(model.manifest.dataset["id"], "train"))
model.booster.set_param({"nthread": nthread})
start = time.perf_counter()
features = preprocessor.transform(sklearn_input(pd.read_csv(csv)))
probability = model.booster.predict(xgb.DMatrix(features, nthread=nthread))
done(time.perf_counter() - start, int(probability.size))
"""
)


def child(script: str, root: str, csv: Path, name: str) -> dict[str, Any]:
    return run_child(script, root, str(csv), name, str(NTHREAD))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--objective", choices=("auc", "auc-per-cost"), default="auc-per-cost")
    parser.add_argument("--rounds", type=int, default=500, help="The reference model's rounds.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--scaling", type=int, nargs="*", default=[])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-lean-") as root:
        storage = FsspecStorage(root)
        loans = read_csv(str(args.csv))
        dataset = process_dataset(loans, storage, source=args.csv.name).id
        baseline = TrainingRequest(dataset=dataset, model_name="reference", rounds=args.rounds)
        reference = run_training(baseline, storage, nthread=NTHREAD)
        trained = {"reference": reference}
        print(
            f"quality on {args.csv.name}, 75/25 split (seed 0); lean: studies of {args.trials}"
            f" trials ({args.objective}), the lean pick, isotonic calibration"
        )
        for name, monotone in LEAN.items():
            search = TuneJob(
                dataset=dataset,
                study=name.replace(" ", "-"),
                trials=args.trials,
                objective=args.objective,
                monotone=monotone,
            )
            study = run_tuning(search, storage, nthread=NTHREAD)
            tuned = tuned_params(storage, "data", dataset, f"{search.study}:lean")
            trained[name] = run_training(
                TrainingRequest(
                    dataset=dataset,
                    model_name=search.study,
                    params=tuned.params,
                    rounds=tuned.rounds,
                    monotone=tuned.monotone,
                    calibration="isotonic",
                    tuned_from=tuned.provenance,
                ),
                storage,
                nthread=NTHREAD,
            )
            print(
                f"  {name}: lean trial CV AUC {study.lean().auc:.4f}, best {study.best().auc:.4f}"
            )
        registry = ModelRegistry(storage)
        print(f"{'model':<15}{'AUC':>8}{'Brier':>8}{'ECE':>8}{'trees':>7}{'nodes':>9}  holds")
        for name, result in trained.items():
            report = result.report
            booster = registry.load(result.manifest.name, "latest").booster
            directions = report.monotonicity.features if report.monotonicity else {}
            holds = sum(f.holds for f in directions.values())
            print(
                f"{name:<15}{report.auc:>8.4f}{report.brier:>8.4f}{report.ece or 0:>8.4f}"
                f"{booster.num_boosted_rounds():>7}{tree_nodes(booster):>9,}"
                f"  {holds}/{len(directions)}"
            )
        for name in LEAN:
            gap = trained[name].report.auc - reference.report.auc
            print(f"AUC difference ({name} - reference): {gap:+.4f} (the bar: >= -0.001)")

        batch = Path(root) / "batch.csv"
        expand(loans.frame, args.rows, seed=99).drop(columns=[LABEL]).head(args.rows).to_csv(
            batch, index=False, float_format="%.6g"
        )
        approaches = {
            "stock xgboost, reference model": (STOCK, "reference"),
            **{f"loanrisk, {name}": (LOANRISK, name.replace(" ", "-")) for name in LEAN},
            "loanrisk, reference model": (LOANRISK, "reference"),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in approaches}
        for i in range(args.repeat):
            for name, (script, model) in approaches.items():
                runs[name].append(child(script, root, batch, model))
                print(
                    f"  run {i + 1} {name:<32} {runs[name][-1]['seconds']:7.2f}s", file=sys.stderr
                )
        print(f"\n{args.rows:,} loans from CSV to PD, {NTHREAD} threads, median of {args.repeat}")
        stock = statistics.median(r["seconds"] for r in runs["stock xgboost, reference model"])
        print(f"{'approach':<34}{'seconds':>9}{'peak RSS':>11}{'speed-up':>10}")
        for name, results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            rss = statistics.median(r["rss"] for r in results) / 2**30
            print(f"{name:<34}{seconds:>9.2f}{rss:>7.2f} GiB{stock / seconds:>9.2f}x")
        lean_runs = runs["loanrisk, lean"]
        print(
            f"(the lean models' output is calibrated: {bool(lean_runs[0]['calibrated'])}; "
            f"backend {lean_runs[0]['backend']}; the target is 4.44x, the moonshot 1.5 s)"
        )

        scorer = Scorer(registry.load("lean", "latest"))
        record = builtin_schema().example_record()
        one = time_calls(lambda: scorer.score_record(record), args.calls)
        print(
            f"\none loan in-process, lean model ({scorer.backend.name}, calibrated), "
            f"{args.calls} calls: median {statistics.median(one):.1f} µs, p99 {p99(one):.1f} µs"
            " (the target: median <= 60 µs)"
        )

        if args.scaling:
            print("\nscaling, lean model, score_csv (one run each)")
            print(f"{'rows':>12}{'seconds':>9}{'µs/loan':>9}{'peak RSS':>11}")
            for rows in args.scaling:
                sized = Path(root) / f"scale-{rows}.csv"
                expand(loans.frame, rows, seed=7).drop(columns=[LABEL]).head(rows).to_csv(
                    sized, index=False, float_format="%.6g"
                )
                result = child(LOANRISK, root, sized, "lean")
                print(
                    f"{rows:>12,}{result['seconds']:>9.2f}"
                    f"{result['seconds'] / rows * 1e6:>9.2f}{result['rss'] / 2**30:>7.2f} GiB"
                )
                sized.unlink()


if __name__ == "__main__":
    main()
