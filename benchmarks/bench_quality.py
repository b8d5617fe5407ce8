"""Quality benchmark: the reference's parameters against the credit configurations, on the public
dataset's standard 75/25 split, side by side in one run.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_quality.py [--seeds 0 1 2]

Per configuration (all with the reference's XGBoost parameters and rounds): test AUC, Brier,
expected calibration error (10 bins), how many of the schema's directions of risk hold on the
version's monotonicity check, and the training job's seconds. With several ``--seeds`` (the
split's seed), each figure is the median over the seeds.

- ``reference``: the reference's model (loanrisk's default);
- ``reference + isotonic`` / ``+ platt``: calibrated on 10% of the training rows;
- ``monotone``: the schema's directions as monotone constraints (grade encoded in order);
- ``monotone + isotonic``: both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from loanrisk.data.ingest import read_csv
from loanrisk.data.process import process_dataset
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "credit_risk_dataset.csv"
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "reference": {},
    "reference + isotonic": {"calibration": "isotonic"},
    "reference + platt": {"calibration": "platt"},
    "monotone": {"monotone": True},
    "monotone + isotonic": {"monotone": True, "calibration": "isotonic"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--nthread", type=int, default=2)
    args = parser.parse_args()

    loans = read_csv(str(args.csv))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-quality-") as root:
        storage = FsspecStorage(root)
        for seed in args.seeds:
            dataset = process_dataset(loans, storage, source=args.csv.name, seed=seed).id
            for name, options in CONFIGURATIONS.items():
                start = time.perf_counter()
                trained = run_training(
                    TrainingRequest(
                        dataset=dataset, rounds=args.rounds, promote=False, seed=seed, **options
                    ),
                    storage,
                    nthread=args.nthread,
                )
                report = trained.report
                checked = report.monotonicity.features if report.monotonicity else {}
                results[name].append(
                    {
                        "auc": report.auc,
                        "brier": report.brier,
                        "ece": report.ece,
                        "holds": sum(f.holds for f in checked.values()),
                        "directions": len(checked),
                        "seconds": time.perf_counter() - start,
                    }
                )

    print(
        f"quality on {args.csv.name}: 75/25 split, seeds {args.seeds}, {args.rounds} rounds, "
        "the reference's parameters (medians over seeds)"
    )
    print(f"{'configuration':<24}{'AUC':>9}{'Brier':>9}{'ECE':>9}{'directions':>12}{'train s':>9}")
    reference_auc = statistics.median(r["auc"] for r in results["reference"])
    for name, runs in results.items():

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        holds = f"{median('holds'):.0f}/{runs[0]['directions']:.0f}"
        print(
            f"{name:<24}{median('auc'):>9.4f}{median('brier'):>9.4f}{median('ece'):>9.4f}"
            f"{holds:>12}{median('seconds'):>9.1f}"
        )
    for name, runs in results.items():
        if name != "reference":
            gap = statistics.median(r["auc"] for r in runs) - reference_auc
            print(f"AUC difference ({name} - reference): {gap:+.4f}")


if __name__ == "__main__":
    main()
