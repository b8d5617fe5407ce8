"""How long a job takes to start: a child forked by the fork server against a spawned one.

    .venv/bin/python benchmarks/bench_job_start.py [--jobs 6]

Each job is a training request the child refuses at once (no dataset of that size), so the
time is the child's start, its answer and its end. The first fork-server job also starts the
fork server (it imports the job modules once); the median leaves it out. Both ways are
measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from loanrisk.contracts import TrainingRequest
from loanrisk.errors import NotFound
from loanrisk.jobs.child import run_in_process
from loanrisk.settings import Settings


def job_seconds(start: str, jobs: int, settings: Settings) -> list[float]:
    times = []
    for _ in range(jobs):
        began = time.perf_counter()
        try:
            run_in_process(TrainingRequest(rounds=3, dataset_size=77), settings, start=start)
        except NotFound:
            pass
        else:
            raise SystemExit("the job was expected to be refused (no dataset)")
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loanrisk-bench-jobs-") as root:
        settings = Settings(storage=root)
        spawned = job_seconds("spawn", args.jobs, settings)
        forked = job_seconds("forkserver", args.jobs, settings)
    print(f"job start, {args.jobs} jobs each (seconds)")
    print(f"{'start':<12} {'first':>7} {'median of the rest':>19}")
    medians = {}
    for name, times in (("spawn", spawned), ("forkserver", forked)):
        medians[name] = statistics.median(times[1:])
        print(f"{name:<12} {times[0]:7.2f} {medians[name]:19.3f}")
    print(
        f"speed-up (spawn / fork server, medians): {medians['spawn'] / medians['forkserver']:.0f}x"
    )


if __name__ == "__main__":
    main()
