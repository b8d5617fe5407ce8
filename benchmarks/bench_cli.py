"""The command line's start-up: ``loanrisk --help`` and two subcommands' help, in fresh processes.

    .venv/bin/python benchmarks/bench_cli.py [--runs 10]

Runs each command ``--runs`` times through the installed ``loanrisk`` entry point, interleaved,
and prints the median wall time and the largest peak RSS against the targets of issue 25
(<= 0.3 s, <= 80 MB), and the median CPU time (user + system), which a busy neighbour
inflates less than the wall time. Beside them, in the same run: the bare interpreter (the
floor no command can go under) and importing what every command paid before the CLI became a
package (xgboost, scikit-learn, pandas, pyarrow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

#: Issue 25's targets for any ``--help``: median wall seconds and peak RSS.
TARGET_SECONDS = 0.3
TARGET_MB = 80.0
LOANRISK = shutil.which("loanrisk", path=os.path.dirname(sys.executable))
HEAVY = "import xgboost, sklearn.metrics, pandas, pyarrow"


def run_once(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one run of ``argv``, its
    output discarded."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "COLUMNS": "100"}
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if LOANRISK is None:
        raise SystemExit("the loanrisk entry point is not installed next to this Python")
    commands = {
        "loanrisk --help": [LOANRISK, "--help"],
        "loanrisk train --help": [LOANRISK, "train", "--help"],
        "loanrisk models --help": [LOANRISK, "models", "--help"],
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "import xgboost, sklearn, pandas (before)": [sys.executable, "-c", HEAVY],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, float] = dict.fromkeys(commands, 0.0)
    for _ in range(args.runs):  # interleaved: a busy moment hits every command alike
        for name, argv in commands.items():
            wall, cpu, peak = run_once(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
            peaks[name] = max(peaks[name], peak)
    print(f"command-line start-up, median of {args.runs} runs each (os.wait4 rusage)")
    print(f"{'command':<42} {'median s':>9} {'cpu s':>7} {'peak MB':>8}  target")
    met = True
    for name in commands:
        median = statistics.median(walls[name])
        judged = name.startswith("loanrisk")
        verdict = ""
        if judged:
            ok = median <= TARGET_SECONDS and peaks[name] <= TARGET_MB
            met = met and ok
            verdict = "met" if ok else "MISSED"
        cpu = statistics.median(cpus[name])
        print(f"{name:<42} {median:9.3f} {cpu:7.3f} {peaks[name]:8.1f}  {verdict}")
    floor = statistics.median(walls["python -c pass (floor)"])
    help_median = statistics.median(walls["loanrisk --help"])
    before = statistics.median(walls["import xgboost, sklearn, pandas (before)"])
    print(
        f"loanrisk --help: {help_median - floor:.3f} s over the bare interpreter; "
        f"the heavy imports alone take {before / help_median:.1f}x as long"
    )
    print(f"targets (<= {TARGET_SECONDS} s, <= {TARGET_MB:.0f} MB): {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
