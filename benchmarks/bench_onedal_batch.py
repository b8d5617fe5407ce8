"""What oneDAL takes a loan, by the number of loans a call scores: with daal4py's
``predict_proba`` (a prediction algorithm built per call) and with :class:`OneDALBackend`
(one reused per thread and row count), with the processor's caches warm (the same call
repeated) and flushed (16 MB written between calls, as a server's request handling does to
the model between two batches).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_onedal_batch.py

The reference's model (500 rounds, depth 10) trained on the public dataset (or the built-in
sample); rows of random features of its width. Each cell: the median of --calls timed calls,
in µs a loan, oneDAL on one thread (as in each server worker).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench_http import DEFAULT_CSV, prepare
from loanrisk.inference.backends import OneDALBackend, limit_onedal_threads
from loanrisk.registry import ModelRegistry
from loanrisk.storage import FsspecStorage

ROWS = (1, 2, 4, 8, 16, 32, 64)
#: Written between two calls to push the model out of the caches (beyond a 2-core L3's share).
FLUSH_BYTES = 16 * 2**20


def per_loan(call: Callable[[], object], rows: int, calls: int, flush: np.ndarray | None) -> float:
    for _ in range(10):
        call()
    spent = []
    for _ in range(calls):
        if flush is not None:
            flush += 1.0
        start = time.perf_counter()
        call()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent) / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--data", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    limit_onedal_threads(1)  # as each server worker
    with tempfile.TemporaryDirectory(prefix="bench-onedal-") as tmp:
        root = Path(tmp)
        print(f"training the reference model ({args.rounds} rounds) ...", flush=True)
        prepare(root, args.data, args.rounds)
        model = ModelRegistry(FsspecStorage(str(root))).load("loan-default")
    backend = OneDALBackend(model.booster)
    rng = np.random.default_rng(0)
    width = backend.model.n_features_in_
    loans = rng.normal(size=(max(ROWS), width)).astype(np.float32)
    flush = np.ones(FLUSH_BYTES // 8)
    print("\nµs a loan (median of the calls): caches warm, then flushed between calls")
    print("loans a call | warm: daal4py  reused | flushed: daal4py  reused")
    for rows in ROWS:
        batch = np.ascontiguousarray(loans[:rows])
        cells = [
            per_loan(call, rows, args.calls, flushing)
            for flushing in (None, flush)
            for call in (
                lambda: backend.model.predict_proba(batch),  # noqa: B023 (called at once)
                lambda: backend.predict_proba(batch),  # noqa: B023
            )
        ]
        print(f"{rows:>12} | {cells[0]:>13.1f} {cells[1]:>7.1f} | ", end="")
        print(f"{cells[2]:>16.1f} {cells[3]:>7.1f}")


if __name__ == "__main__":
    main()
