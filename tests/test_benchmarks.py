"""The benchmarks still run (at tiny sizes; nothing here is timed or judged by speed)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def run_benchmark(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def test_data_benchmark_runs_both_approaches_and_prints_the_ratio() -> None:
    out = run_benchmark("bench_data.py", "--size", "40000", "--repeat", "1")
    assert "loanrisk" in out
    assert "reference" in out
    assert "speed-up (reference / loanrisk):" in out


def test_calibration_size_benchmark_prints_the_change_per_size_and_method() -> None:
    out = run_benchmark(
        "bench_calibration_size.py",
        "--data",
        "credit",
        "--seeds",
        "0",
        "--draws",
        "2",
        "--rounds",
        "20",
        "--variants",
        "reference",
    )
    assert "credit, reference model" in out
    assert "isotonic ΔBrier" in out and "platt ΔBrier" in out
    assert "credit, reference: platt helps on average from" in out


def test_transform_benchmark_prints_both_paths_and_the_ratio() -> None:
    out = run_benchmark("bench_transform.py", "--calls", "50")
    assert "loanrisk transform_record" in out
    assert "sklearn ColumnTransformer" in out
    assert "speed-up (sklearn / loanrisk, medians):" in out


def test_training_benchmark_reports_quality_and_overhead() -> None:
    out = run_benchmark("bench_train.py", "--sizes", "30000", "--no-continued")
    assert "quality on credit_risk_dataset.csv" in out
    assert "bare xgb.train" in out
    assert "overhead" in out


def test_scoring_benchmark_compares_three_approaches_and_one_loan() -> None:
    out = run_benchmark(
        "bench_score.py",
        "--train-rows",
        "40000",
        "--rounds",
        "20",
        "--rows",
        "5000",
        "--repeat",
        "1",
        "--calls",
        "50",
    )
    for approach in ("loanrisk", "reference", "stock xgboost"):
        assert approach in out
    assert "max |p(loanrisk) - p(reference)|" in out
    assert "loanrisk score_record" in out
    assert "scorecard / xgboost time, without reasons:" in out


def test_http_benchmark_loads_a_real_server_with_wrk() -> None:
    out = run_benchmark(
        "bench_http.py",
        "--duration",
        "1",
        "--connections",
        "1,2",
        "--calls",
        "50",
        "--csv-rows",
        "2000",
        "--repeat",
        "1",
        "--rounds",
        "20",
    )
    assert "GET /healthz" in out
    assert "POST /v1/predict" in out
    assert "server-side time for one loan" in out
    assert "CSV of 2,000 loans" in out


def test_log_benchmark_serves_buffered_and_written_ahead_and_counts_what_was_logged() -> None:
    out = run_benchmark(
        "bench_log.py", "--duration", "1", "--connections", "2", "--repeat", "1", "--rounds", "20"
    )
    assert "run 1 buffered" in out and "run 1 write-ahead" in out
    line = out.split("run 1 write-ahead")[1].split("\n")[0]
    answered = int(line.split("answered ")[1].split(",")[0].replace(",", ""))
    logged = int(line.split("logged ")[1].split(",")[0].replace(",", ""))
    # Nothing lost on a clean shutdown; wrk leaves uncounted the 2 requests still in flight.
    assert answered <= logged <= answered + 2
    assert "dropped 0" in line
    assert "of the throughput" in out


def test_shadow_benchmark_serves_with_the_shadow_off_and_on_and_counts_its_loans() -> None:
    out = run_benchmark(
        "bench_shadow.py",
        "--duration",
        "1",
        "--connections",
        "2",
        "--repeat",
        "1",
        "--rounds",
        "20",
    )
    assert "run 1 shadow off" in out and "run 1 shadow on" in out
    line = out.split("run 1 shadow on")[1].split("\n")[0]
    assert "shadow scored" in line and "dropped" in line and "failed 0" in line
    assert "of the throughput" in out and "p99 x" in out


def test_oip_benchmark_compares_the_oip_route_with_v1() -> None:
    out = run_benchmark(
        "bench_oip.py", "--duration", "1", "--connections", "2", "--repeat", "1", "--rounds", "20"
    )
    assert "c2 run 1 v1" in out and "c2 run 1 oip" in out
    assert "of v1's throughput" in out


def test_memory_benchmark_prints_both_reads_and_the_expansion_table() -> None:
    out = run_benchmark("bench_memory.py", "--rows", "20000", "--sizes", "50000")
    assert "chunked GiB" in out and "whole GiB" in out
    assert "process_dataset peak RSS" in out
    assert "50,000" in out


def test_quality_benchmark_compares_the_credit_configurations() -> None:
    out = run_benchmark("bench_quality.py", "--rounds", "20")
    for name in ("reference", "reference + isotonic", "monotone + isotonic"):
        assert f"\n{name} " in out
    assert "AUC difference (monotone - reference):" in out


def test_lean_benchmark_compares_quality_speed_and_one_loan() -> None:
    out = run_benchmark(
        "bench_lean.py",
        "--trials",
        "2",
        "--rounds",
        "20",
        "--rows",
        "5000",
        "--repeat",
        "1",
        "--calls",
        "50",
        "--scaling",
        "2000",
    )
    assert "AUC difference (lean - reference):" in out
    assert "AUC difference (lean monotone - reference):" in out
    for approach in ("stock xgboost, reference model", "loanrisk, lean", "loanrisk, lean monotone"):
        assert approach in out
    assert "one loan in-process, lean model" in out
    assert "scaling, lean model" in out


def test_cli_benchmark_prints_each_help_against_the_targets() -> None:
    out = run_benchmark("bench_cli.py", "--runs", "1")
    for command in ("loanrisk --help", "loanrisk train --help", "loanrisk models --help"):
        assert command in out
    assert "python -c pass (floor)" in out
    assert "targets (<= 0.3 s, <= 80 MB):" in out


def test_job_start_benchmark_compares_the_fork_server_with_spawn() -> None:
    out = run_benchmark("bench_job_start.py", "--jobs", "2")
    assert "spawn" in out and "forkserver" in out
    assert "speed-up (spawn / fork server, medians):" in out


def test_cancel_benchmark_compares_a_baseline_tree_with_this_one() -> None:
    out = run_benchmark(
        "bench_cancel.py",
        "--baseline-src",
        str(ROOT / "src"),
        "--repeat",
        "1",
        "--duration",
        "1",
        "--connections",
        "2",
        "--calls",
        "20",
        "--big",
        "500",
        "--explain",
        "20",
        "--rounds",
        "20",
    )
    assert "run 1 before" in out and "run 1 after" in out
    assert "medians (after / before)" in out and "reasons cost" in out


def test_declared_vintages_benchmark_compares_the_regex_with_parsing() -> None:
    out = run_benchmark("bench_declared_vintages.py", "--rows", "2000", "--repeat", "1")
    assert "loanrisk" in out and "json" in out and "plain" in out
    assert "regex over json.loads:" in out


def test_overhead_benchmark_compares_a_baseline_tree_with_this_one() -> None:
    out = run_benchmark(
        "bench_overhead.py",
        "--baseline-src",
        str(ROOT / "src"),
        "--repeat",
        "1",
        "--duration",
        "1",
        "--connections",
        "2",
        "--rounds",
        "20",
    )
    assert "run 1 before" in out and "run 1 after" in out
    assert "medians of 1" in out and "no-op/predict" in out


def test_instruction_benchmark_counts_both_routes_under_callgrind() -> None:
    out = run_benchmark(
        "bench_instructions.py",
        "--requests",
        "16",
        "--concurrency",
        "4",
        "--warm-up",
        "32",
        "--rounds",
        "5",
    )
    line = next(x for x in out.splitlines() if x.strip().startswith("this"))
    assert "no-op" in line and "predict / no-op" in line
    noop = int(line.split("no-op")[1].split("(")[0].replace(",", ""))
    assert noop > 10_000  # instructions were counted around the requests, not zero
