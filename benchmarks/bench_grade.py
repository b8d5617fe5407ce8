"""What grading costs one loan: ``Scorer.score_record`` with the master-scale lookup against
the same scorer with the lookup replaced by a constant, interleaved, median of --runs.

    .venv/bin/python benchmarks/bench_grade.py --runs 7 --calls 3000

The model: --rounds rounds of depth 6 on --rows sample loans (the default backend). Also
printed: the lookup alone (``Grader.of``, a bisection over the default scale's 11 boundaries).
On a shared machine the two medians differ by run-to-run noise; the lookup alone says what
grading adds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training


def per_call(scorer: Scorer, record: dict[str, object], calls: int) -> float:
    """Microseconds per ``score_record`` call."""
    started = time.perf_counter()
    for _ in range(calls):
        scorer.score_record(record)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3_000)
    args = parser.parse_args()

    storage = MemoryStorage()
    loans = validate_frame(generate_sample(args.rows, seed=1), schema=builtin_schema())
    process_dataset(loans, storage, source="sample")
    run_training(TrainingRequest(rounds=args.rounds, params={"max_depth": 6}), storage, nthread=1)
    model = ModelRegistry(storage).load("loan-default", 1)
    graded, plain = Scorer(model), Scorer(model)
    plain.grader = types.SimpleNamespace(of=lambda _p: "")  # type: ignore[assignment]
    record = model.schema.example_record()
    with_grade: list[float] = []
    without: list[float] = []
    for _ in range(args.runs):
        without.append(round(per_call(plain, record, args.calls), 1))
        with_grade.append(round(per_call(graded, record, args.calls), 1))
    grader = model.master_scale.grader
    started = time.perf_counter()
    for _ in range(200_000):
        grader.of(0.37)
    lookup = (time.perf_counter() - started) / 200_000 * 1e6
    a, b = statistics.median(without), statistics.median(with_grade)
    print(f"backend: {graded.backend.name}")
    for label, runs, median in (("without", without, a), ("with", with_grade, b)):
        print(f"score_record {label} the grade: median {median:.1f} us, runs {runs}")
    print(f"ratio (with / without): {b / a:.3f}")
    print(f"Grader.of alone: {lookup:.3f} us ({lookup / b:.2%} of a loan's scoring)")


if __name__ == "__main__":
    main()
