"""A PD backtest over millions of synthetic loans: time and peak memory, streamed in chunks
through :class:`loanrisk.validation.BacktestAccumulator` against the same loans held whole and
passed to :func:`loanrisk.validation.backtest` at once.

Each way runs in a fresh subprocess (its peak RSS is its own), beside a floor (the interpreter
with loanrisk.validation imported). Loans are drawn in the child, chunk by chunk from one seed,
so both ways see the same loans; the time is the backtest's alone (drawing excluded).

Then a window of the prediction log (issue 27, "Bounded"): ``--window-rows`` logged loans of a
small trained model, every one with an outcome, written as log and outcome files of a million
rows each under a temporary storage; :func:`loanrisk.validation.window.backtest_for` (outcomes
read a file at a time into compact arrays, the log streamed; without vintages, as the gauge
runs it, and with them, as the API does by default) against the in-memory path (the
outcomes as :func:`~loanrisk.monitoring.outcomes.read_outcomes`'s pandas frame, the window's
log read whole into pandas, joined, and :func:`loanrisk.validation.backtest` at once), each in
a fresh subprocess, with the same floor. Times include reading the files.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_backtest.py --rows 10000000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _timing import run_child

MIB = 2**20

CHILD = """
import json, resource, sys, time
import numpy as np
from loanrisk.validation import BacktestAccumulator, backtest

rows, chunk, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = ["A", "B", "C", "D", "E", "F", "G"]
edges = np.array([0.005, 0.01, 0.02, 0.05, 0.1, 0.2])

def draw(seed, size):
    rng = np.random.default_rng(seed)
    pd_ = np.clip(rng.beta(1.0, 15.0, size), 1e-4, 0.9)
    return pd_, (rng.random(size) < pd_).astype(np.int8), np.searchsorted(edges, pd_, side="right")

spent = 0.0
if mode == "floor":
    result = None
elif mode == "chunked":
    accumulator = BacktestAccumulator(names)
    for index, start in enumerate(range(0, rows, chunk)):
        pd_, defaulted, grade = draw(index, min(chunk, rows - start))
        began = time.perf_counter()
        accumulator.add(pd_, defaulted, grade)
        spent += time.perf_counter() - began
    began = time.perf_counter()
    result = accumulator.result(development_auc=0.8, development_grade_shares=[1] * 7)
    spent += time.perf_counter() - began
else:
    starts = enumerate(range(0, rows, chunk))
    parts = [draw(index, min(chunk, rows - start)) for index, start in starts]
    pd_, defaulted, grade = (np.concatenate(column) for column in zip(*parts))
    del parts
    began = time.perf_counter()
    result = backtest(pd_, defaulted, grade, names, development_auc=0.8,
                      development_grade_shares=[1] * 7)
    spent = time.perf_counter() - began
print(json.dumps({
    "seconds": spent,
    "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "loans": None if result is None else result.rows,
    "defaults": None if result is None else result.portfolio.defaults,
    "lights": None if result is None else [g.light for g in result.grades],
}))
"""


WINDOW_CHILD = """
import json, resource, sys, time
from datetime import datetime, UTC
root, mode = sys.argv[1], sys.argv[2]
from loanrisk.validation.window import Window, backtest_for
from loanrisk.registry import ModelRegistry
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage

settings = Settings(storage=root)
storage = FsspecStorage(root)
registry = ModelRegistry(storage, storage.resolve(settings.model_directory))
log = storage.resolve(settings.log_directory)
outcome_directory = storage.resolve(settings.outcome_directory)
began = time.perf_counter()
if mode == "floor":
    loans = defaults = None
elif mode.startswith("streamed"):
    where = Window(storage, log, outcome_directory, None, None)
    report = backtest_for(
        where, registry, "loan-default", 1, with_vintages=mode == "streamed-vintages"
    )
    loans, defaults = report.rows, report.portfolio.defaults
else:
    import numpy as np, pandas as pd, pyarrow.parquet as pq
    from loanrisk.monitoring.outcomes import read_outcomes
    from loanrisk.validation import backtest
    model = registry.load("loan-default", 1)
    outcomes = read_outcomes(storage, outcome_directory)
    import pyarrow as pa
    from pathlib import Path
    files = sorted(Path(root, settings.log_directory).rglob("*.parquet"))
    columns = ["time", "loan_id", "version", "probability"]
    frame = pa.concat_tables([pq.read_table(f, columns=columns) for f in files]).to_pandas()
    frame = frame[frame["version"] == 1].sort_values("time").drop_duplicates("loan_id", keep="last")
    joined = frame.merge(outcomes, on="loan_id")
    pd_ = joined["probability"].to_numpy()
    result = backtest(
        np.clip(pd_, 1e-12, 1 - 1e-12), joined["defaulted"].to_numpy(dtype=bool),
        model.master_scale.grade_index(pd_), list(model.master_scale.names),
    )
    loans, defaults = result.rows, result.portfolio.defaults
print(json.dumps({
    "seconds": time.perf_counter() - began,
    "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "loans": loans,
    "defaults": defaults,
}))
"""


def prepare_window(root: Path, rows: int, per_file: int = 1_000_000) -> None:
    """A trained model and ``rows`` logged loans with outcomes under ``root``."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loanrisk.data.process import process_dataset
    from loanrisk.data.sample import generate_sample
    from loanrisk.monitoring import outcomes
    from loanrisk.monitoring.log import COLUMNS
    from loanrisk.registry import ModelRegistry
    from loanrisk.schema import validate_frame
    from loanrisk.settings import Settings
    from loanrisk.storage import FsspecStorage
    from loanrisk.training.job import TrainingRequest, run_training

    settings = Settings(storage=str(root))
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(2_000, seed=0)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    model = ModelRegistry(storage, storage.resolve(settings.model_directory)).load(
        "loan-default", 1
    )
    names = np.asarray(model.master_scale.names, dtype=object)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index, first in enumerate(range(0, rows, per_file)):
        size = min(per_file, rows - first)
        rng = np.random.default_rng(index)
        pd_ = np.clip(rng.beta(1.0, 15.0, size), 1e-4, 0.9)
        ids = pa.array([f"L{first + i:09d}" for i in range(size)])
        day = start + timedelta(days=index)
        times = pa.array(
            np.full(size, int(day.timestamp() * 1e6), dtype=np.int64), pa.int64()
        ).cast(COLUMNS.field("time").type)
        log = pa.table(
            {
                "time": times,
                "request_id": pa.array(["r"] * size),
                "loan_id": ids,
                "model": pa.array(["loan-default"] * size),
                "version": pa.array(np.ones(size, dtype=np.int64)),
                "backend": pa.array(["xgboost"] * size),
                "source": pa.array(["bench"] * size),
                "features": pa.array(["{}"] * size),
                "probability": pa.array(pd_),
                "label": pa.array(pd_ >= 0.5),
                "band": pa.array(["low"] * size),
                "role": pa.array(["champion"] * size),
                "grade": pa.array(names[model.master_scale.grade_index(pd_)].tolist()),
                "score": pa.array(model.scaling.scores_of(pd_)),
            },
            schema=COLUMNS,
        )
        folder = root / settings.log_directory / "model=loan-default" / f"day={day:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(log, folder / "bench.parquet", compression="zstd")
        stored = pa.array(
            np.full(size, int((day + timedelta(days=300)).timestamp() * 1e6), dtype=np.int64)
        ).cast(outcomes.COLUMNS.field("stored_at").type)
        table = pa.table(
            {
                "loan_id": ids,
                "defaulted": pa.array(rng.random(size) < pd_),
                "observed_on": pa.array([(day + timedelta(days=300)).date()] * size),
                "stored_at": stored,
                "defaulted_at": pa.nulls(size, outcomes.COLUMNS.field("defaulted_at").type),
                "observed_at": pa.nulls(size, outcomes.COLUMNS.field("observed_at").type),
            },
            schema=outcomes.COLUMNS,
        )
        folder = root / settings.outcome_directory
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"2026{index:04d}T000000000000Z-bench.parquet")


def window_bench(rows: int, repeat: int) -> None:
    """The window's backtest streamed against the in-memory path (module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "store"
        prepare_window(root, rows)
        runs: dict[str, list[dict[str, object]]] = {
            "floor": [],
            "streamed": [],
            "streamed-vintages": [],
            "memory": [],
        }
        for _ in range(repeat):
            for mode in runs:
                runs[mode].append(run_child(WINDOW_CHILD, str(root), mode))
    streamed, memory = runs["streamed"][0], runs["memory"][0]
    assert streamed["loans"] == memory["loans"] == runs["streamed-vintages"][0]["loans"] == rows
    assert streamed["defaults"] == memory["defaults"]
    print(f"\nbacktest_for over a window of {rows:,} logged loans with outcomes ({repeat} runs)")
    print(f"{'way':<34}{'seconds':>10}{'peak RSS MiB':>16}")
    medians = {}
    for mode, label in [
        ("floor", "floor (interpreter + import)"),
        ("streamed", "backtest_for (compact, streamed)"),
        ("streamed-vintages", "backtest_for, with vintages"),
        ("memory", "in memory (pandas, joined)"),
    ]:
        seconds = statistics.median(float(r["seconds"]) for r in runs[mode])  # type: ignore[arg-type]
        rss = statistics.median(int(r["rss"]) for r in runs[mode]) / MIB  # type: ignore[call-overload]
        medians[mode] = (seconds, rss)
        print(f"{label:<34}{seconds:>10.2f}{rss:>16.0f}")
    above = {mode: medians[mode][1] - medians["floor"][1] for mode in ("streamed", "memory")}
    ratio = above["memory"] / max(above["streamed"], 1)
    print(f"memory above the floor, in memory / streamed: {ratio:.1f}x")
    print(f"bytes above the floor per logged loan (streamed): {above['streamed'] * MIB / rows:.0f}")
    print(f"loans counted: {streamed['loans']:,}; defaults: {streamed['defaults']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; medians shown")
    parser.add_argument(
        "--window-rows", type=int, default=None, help="logged loans of the window (default --rows)"
    )
    args = parser.parse_args()

    runs: dict[str, list[dict[str, object]]] = {"floor": [], "chunked": [], "whole": []}
    for _ in range(args.repeat):  # interleaved, so the machine's load falls on all alike
        for mode in runs:
            runs[mode].append(run_child(CHILD, str(args.rows), str(args.chunk), mode))
    chunked, whole = runs["chunked"][0], runs["whole"][0]
    assert chunked["defaults"] == whole["defaults"]
    assert chunked["lights"] == whole["lights"]

    print(f"backtest of {args.rows:,} loans, 7 grades ({args.repeat} runs each, medians)")
    print(f"{'way':<34}{'seconds':>10}{'peak RSS MiB':>16}")
    medians = {}
    for mode, label in [
        ("floor", "floor (interpreter + import)"),
        ("chunked", f"loanrisk, chunks of {args.chunk:,}"),
        ("whole", "all loans at once"),
    ]:
        seconds = statistics.median(float(r["seconds"]) for r in runs[mode])  # type: ignore[arg-type]
        rss = statistics.median(int(r["rss"]) for r in runs[mode]) / MIB  # type: ignore[call-overload]
        medians[mode] = (seconds, rss)
        print(f"{label:<34}{seconds:>10.2f}{rss:>16.0f}")
    print(f"loans per second (chunked): {args.rows / max(medians['chunked'][0], 1e-9):,.0f}")
    above = {mode: medians[mode][1] - medians["floor"][1] for mode in ("whole", "chunked")}
    ratio = above["whole"] / max(above["chunked"], 1)
    print(f"memory above the floor, whole / chunked: {ratio:.1f}x")
    print(f"defaults counted: {chunked['defaults']:,}; lights: {chunked['lights']}")
    window_rows = args.rows if args.window_rows is None else args.window_rows
    if window_rows > 0:
        window_bench(window_rows, args.repeat)


if __name__ == "__main__":
    main()
