"""The command line, run as a user runs it: the installed ``loanrisk`` entry point."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from loanrisk.registry.masterscale import DEFAULT_SCALE
from loanrisk.registry.scaling import DEFAULT_SCALING
from loanrisk.settings import Settings
from tests.builtin import EXAMPLE_LOAN

from .conftest import FIXTURES, REAL_CSV, ROOT, free_port, wait_until_serving

LOANRISK = shutil.which("loanrisk", path=os.path.dirname(sys.executable))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert LOANRISK, "the loanrisk entry point is not installed next to this Python"
    return subprocess.run(
        [LOANRISK, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        cwd=cwd,
    )


def test_version_is_the_packages() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = run("--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"loanrisk {declared}\n"


def test_demo_processes_trains_and_serves_the_built_in_sample(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [str(LOANRISK), "demo", "--storage", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        wait_until_serving(demo, port, "loanrisk demo", timeout=240)
        base = f"http://127.0.0.1:{port}"
        scored = httpx.post(f"{base}/v1/predict", json=EXAMPLE_LOAN, timeout=30).json()
        assert scored["model"]["version"] == 1
    finally:
        demo.send_signal(signal.SIGINT)
        stdout, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 0, stderr
    assert "15,000 train / 5,000 test" in stdout
    assert "data quality" in stdout
    assert "model loan-default version 1" in stdout
    assert "rounds     │ 500 new, 500 trees in all" in stdout
    assert f"curl -X POST http://127.0.0.1:{port}/v1/predict" in stderr
    assert "the service is OPEN" in stderr
    listed = run("data", "list", "--storage", str(tmp_path))
    assert listed.returncode == 0 and "sample" in listed.stdout
    models = run("models", "list", "--storage", str(tmp_path))
    assert "production -> 1" in models.stdout


def test_process_a_csv_with_expansion_then_show_it(tmp_path: Path) -> None:
    done = run(
        "data",
        "process",
        str(REAL_CSV),
        "--size",
        "40000",
        "--storage",
        str(tmp_path),
        "--directory",
        "bench",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["rows"]["total"] == 40_000 and manifest["requested_size"] == 40_000
    shown = run(
        "data",
        "show",
        "latest",
        "--storage",
        str(tmp_path),
        "--directory",
        "bench",
        "--json",
        "--no-characteristics",
    )
    assert json.loads(shown.stdout)["manifest"]["id"] == manifest["id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["data", "process", str(FIXTURES / "bad_csv" / "non_numeric.csv")],
            "error: 1 invalid value: column 'person_income': not a number at row 2 ('abc')",
        ),
        (["data", "process", "/no/such.csv"], "error: no such file: /no/such.csv"),
        (["data", "show", "ds-missing"], "error: no dataset 'ds-missing' in 'data'"),
        (
            ["data", "process", "sample", "--storage", "ftp://x/y"],
            "error: invalid setting storage: Value error, unsupported storage scheme 'ftp'",
        ),
        (  # numpy's generator takes 0 .. 2**32 - 1: this was a traceback from inside training
            ["data", "process", "sample", "--seed", "-1"],
            "error: invalid setting seed: Input should be greater than or equal to 0",
        ),
        (
            ["data", "process", "sample", "--seed", str(2**32)],
            "error: invalid setting seed: Input should be less than or equal to 4294967295",
        ),
        (  # checked as the setting is, before any connection is tried
            ["predict", "x.parquet", "--dask-scheduler", "http://x:1", "--output", "out"],
            "error: invalid setting dask_scheduler: String should match pattern",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    if "--storage" not in args:
        args = [*args, "--storage", str(tmp_path)]
    done = run(*args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[0].startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_process_from_s3_into_s3(s3_settings: Settings) -> None:
    import boto3

    bucket = s3_settings.storage.split("/")[2]
    endpoint = s3_settings.s3_endpoint_url
    boto3.client("s3", endpoint_url=endpoint).upload_file(str(REAL_CSV), bucket, "raw/loans.csv")
    env = {"LOANRISK_S3_ENDPOINT_URL": str(endpoint), "LOANRISK_STORAGE": s3_settings.storage}
    done = run("data", "process", f"s3://{bucket}/raw/loans.csv", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["input"] == 32_581
    listed = run("data", "list", env=env)
    assert "s3://" in listed.stdout
    missing = run("data", "process", f"s3://{bucket}/raw/nope.csv", env=env)
    assert missing.returncode == 2 and "no such object" in missing.stderr


@pytest.fixture(scope="module")
def demo_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage holding the sample's dataset and no model (the error cases write nothing)."""
    path = tmp_path_factory.mktemp("demo")
    assert run("data", "process", "sample", "--storage", str(path)).returncode == 0
    return path


def test_train_continue_promote_and_roll_back(tmp_path: Path) -> None:
    storage = ["--storage", str(tmp_path)]
    assert run("data", "process", "sample", *storage).returncode == 0
    first = run("train", *storage, "--rounds", "20")
    assert first.returncode == 0, first.stderr
    assert "model loan-default version 1" in first.stdout
    assert "production │ promoted" in first.stdout
    assert "parent     │ none (new model)" in first.stdout
    assert "points     │ 600 at good:bad odds 50:1, 20 to double the odds" in first.stdout
    second = run(
        "train",
        *storage,
        "--rounds",
        "5",
        "--continue-from",
        "production",
        "--param",
        "max_depth=4",
        "--json",
    )
    assert second.returncode == 0, second.stderr
    manifest = json.loads(second.stdout)
    assert manifest["rounds"]["total_trees"] == 25
    assert manifest["params"]["max_depth"] == 4
    listed = run("models", "list", *storage)
    assert "production -> 1" in listed.stdout
    promoted = run("models", "promote", "loan-default", "2", *storage)
    assert "production -> version 2 (was 1)" in promoted.stdout
    rolled = run("models", "rollback", "loan-default", *storage)
    assert "production -> version 1 (was 2)" in rolled.stdout
    shown = json.loads(run("models", "show", "loan-default", "production", *storage).stdout)
    assert shown["manifest"]["version"] == 1 and shown["scaling"]["pdo"] == 20
    assert "Default" in shown["report"]["classification_report"]
    fresh = run("train", *storage, "--rounds", "2", "--no-promote")
    assert fresh.returncode == 0, fresh.stderr
    assert "model loan-default version 3" in fresh.stdout
    assert "parent     │ none (trained from scratch)" in fresh.stdout  # not a new model


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--continue-from", "production"],
            "error: cannot continue training model 'loan-default' from 'production'",
        ),
        (
            ["train", "--param", "max_depth=-2", "--rounds", "2"],
            "error: XGBoost refused the training",
        ),
        (["train", "--size", "77"], "error: no dataset processed with size 77"),
        (
            ["train", "--calibration", "platt", "--calibration-fraction", "0.01"],
            "error: platt calibration needs at least 50 defaults in its held-out set, and "
            "calibration_fraction 0.01 of the 15,000 training loans holds out 150 loans",
        ),
        (
            ["models", "promote", "loan-default", "1", "--alias", "latest"],
            "error: 'latest' always means the newest version",
        ),
        (["models", "show", "../etc"], "error: invalid model name '../etc'"),
    ],
)
def test_training_errors_exit_2_with_one_line(
    demo_storage: Path, args: list[str], message: str
) -> None:
    done = run(*args, "--storage", str(demo_storage))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(message), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("fraction", ["0", "0.5", "x"])
def test_a_calibration_fraction_outside_the_request_s_bounds_is_a_usage_error(
    fraction: str,
) -> None:
    done = run("train", "--calibration-fraction", fraction, "--storage", "/nonexistent")
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--calibration-fraction'" in done.stderr
    assert "Traceback" not in done.stderr


def test_predict_streams_a_csv_to_the_path_typed_and_explains_csv_and_json(
    tmp_path: Path,
) -> None:
    storage = ["--storage", str(tmp_path / "store")]
    assert run("demo", "--no-serve", *storage).returncode == 0
    source = tmp_path / "loans.csv"
    lines = REAL_CSV.read_text().splitlines()[:6]
    rows = [line.split(",") for line in lines]
    source.write_text("\n".join(",".join(r[:8] + r[9:]) for r in rows) + "\n")  # no label
    to_stdout = run("predict", str(source), *storage)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout.splitlines()[0] == "row,probability,label,band,grade,score"
    assert len(to_stdout.stdout.splitlines()) == 6
    assert "5 loans scored, 0 rejected" in to_stdout.stderr
    here = tmp_path / "work"
    (here / "scores").mkdir(parents=True)
    stored = run("predict", str(source), *storage, "--output", "scores/out.csv", cwd=here)
    assert stored.returncode == 0, stored.stderr
    assert (here / "scores/out.csv").read_text() == to_stdout.stdout
    outside = tmp_path / "elsewhere.csv"  # an absolute path of the user's own: fine
    assert run("predict", str(source), *storage, "--output", str(outside)).returncode == 0
    assert outside.read_text() == to_stdout.stdout

    explained_csv = run("predict", str(source), *storage, "--explain")
    assert explained_csv.returncode == 0, explained_csv.stderr
    header = explained_csv.stdout.splitlines()[0].split(",")
    assert header[:4] == ["row", "probability", "label", "band"]
    assert header[4:10] == [
        "grade",
        "score",
        "reason_1",
        "reason_1_code",
        "reason_1_value",
        "reason_1_points",
    ]
    assert "reason_4_points" in header
    first = explained_csv.stdout.splitlines()[1].split(",")
    assert first[4] in DEFAULT_SCALE.names  # the loan's grade
    assert int(first[5]) == DEFAULT_SCALING.score_of(float(first[1]))  # its points
    assert first[6] in rows[0]  # a loan attribute's name
    assert first[7].startswith("R")  # its reason code

    notices = run("predict", str(source), *storage, "--decline-reasons")
    assert notices.returncode == 0, notices.stderr
    table = list(csv.DictReader(io.StringIO(notices.stdout)))
    assert list(table[0])[-2:] == ["decline_codes", "decline_reasons"]
    assert {r["label"] for r in table} == {"True", "False"}
    for row in table:
        declined = row["label"] == "True"
        assert bool(row["decline_reasons"]) == declined and bool(row["decline_codes"]) == declined
        if declined:
            codes, statements = row["decline_codes"].split("; "), row["decline_reasons"].split("; ")
            assert 1 <= len(codes) == len(statements) <= 4

    record = dict(zip(rows[0], rows[1], strict=True))
    record.pop("loan_status")
    records = tmp_path / "loans.json"
    records.write_text(json.dumps([record]))
    explained = run("predict", str(records), *storage, "--explain")
    assert explained.returncode == 0, explained.stderr
    result = json.loads(explained.stdout)["results"][0]
    assert len(result["reasons"]) == 4
    written = run(
        "predict", str(records), *storage, "--explain", "--output", "scores/one.json", cwd=here
    )
    assert written.returncode == 0, written.stderr
    assert json.loads((here / "scores/one.json").read_text()) == json.loads(explained.stdout)
    assert "1 loans scored, 0 rejected -> scores/one.json" in written.stderr
    folder = run("predict", str(source), *storage, "--output", str(here))
    assert folder.returncode == 2
    assert "is a directory" in folder.stderr
    no_model = run("predict", str(source), "--storage", str(tmp_path / "empty"))
    assert no_model.returncode == 2
    assert "has no alias 'production'" in no_model.stderr


def test_predict_follows_the_threshold_and_band_settings(tmp_path: Path) -> None:
    storage = ["--storage", str(tmp_path)]
    assert run("demo", "--no-serve", *storage).returncode == 0
    source = tmp_path / "loans.csv"
    rows = [line.split(",") for line in REAL_CSV.read_text().splitlines()[:4]]
    source.write_text("\n".join(",".join(r[:8] + r[9:]) for r in rows) + "\n")
    env = {
        "LOANRISK_THRESHOLD": "0.999",
        "LOANRISK_BAND_CUTOFFS": "[0.999]",
        "LOANRISK_BAND_NAMES": '["fine", "bad"]',
        "LOANRISK_BACKEND": "xgboost",
    }
    done = run("predict", str(source), *storage, env=env)
    assert done.returncode == 0, done.stderr
    assert "(xgboost)" in done.stderr
    lines = done.stdout.splitlines()[1:]
    assert [line.split(",")[2:4] for line in lines] == [["False", "fine"]] * 3
    bad = run("predict", str(source), *storage, env={"LOANRISK_BACKEND": "gpu"})
    assert bad.returncode == 2
    assert "invalid setting backend" in bad.stderr
    clash = run("predict", str(source), *storage, env={"LOANRISK_CANARY": "production:10"})
    assert clash.returncode == 2  # a check across settings names no single one
    assert "invalid settings: Value error, canary must name another alias" in clash.stderr


def test_data_with_missing_values_is_kept_and_unusable_rows_can_be_dropped(
    tmp_path: Path,
) -> None:
    lines = REAL_CSV.read_text().splitlines()[:401]
    header = lines[0].split(",")
    income, label = header.index("person_income"), header.index("loan_status")
    rows = [line.split(",") for line in lines[1:]]
    rows[0][income] = ""
    rows[1][label] = ""
    source = tmp_path / "loans.csv"
    source.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    storage = ["--storage", str(tmp_path / "store")]

    refused = run("data", "process", str(source), *storage)
    assert refused.returncode == 2
    assert "column 'loan_status': label must be 0 or 1 at row 2" in refused.stderr

    done = run("data", "process", str(source), *storage, "--skip-bad-rows", "--json")
    assert done.returncode == 0, done.stderr
    assert "dropped 1 row(s) that cannot be used: rows 2" in done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["rows"]["input"] == 399
    assert manifest["quality"]["missing"]["person_income"] == 1
    assert manifest["quality"]["rejected_rows"] == [2]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["data", "process", "ONE_ROW"], {}, "error: cannot split the loans into train and test"),
        (
            ["data", "process", "sample", "--size", "30000000"],
            {},
            "error: --size of 30,000,000 rows is over the limit of 20,000,000",
        ),
        (
            ["serve"],
            {"LOANRISK_API_KEYS": '["admin:short"]'},
            "error: LOANRISK_API_KEYS entry 1: keys need at least 16 characters",
        ),
        (
            ["serve"],
            {"LOANRISK_ENVIRONMENT": "production"},
            "error: production refuses to serve without API keys",
        ),
    ],
)
def test_more_bad_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    one_row = tmp_path / "one.csv"
    one_row.write_text("\n".join(REAL_CSV.read_text().splitlines()[:2]) + "\n")
    args = [str(one_row) if a == "ONE_ROW" else a for a in args]
    done = run(*args, "--storage", str(tmp_path / "store"), env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[0].startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the tree under ``command``, with the words that reach it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _squeezed(text: str) -> str:
    """Text as compared across rich's rendering: no colour codes, box lines or whitespace
    (so a help text wrapped over several lines of its table cell still matches)."""
    return re.sub(r"\x1b\[[0-9;]*m|[\s│]", "", text)


def test_every_bracket_of_the_help_is_shown() -> None:
    """Rich markup takes ``[mlflow]`` or ``[the setting]`` for a tag and drops it: a help text
    writes every bracket escaped (``\\[``), and each one with a bracket is shown whole."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from loanrisk.cli import app

    runner = CliRunner()
    checked: list[str] = []
    for path, command in _commands(get_command(app)):
        texts = [command.help or ""] + [
            getattr(p, "help", None) or ""
            for p in command.params
            if not getattr(p, "hidden", False)
        ]
        wanted = [t.partition("\f")[0].replace("\\[", "[") for t in texts if "[" in t]
        if not wanted:
            continue
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "240"})
        assert shown.exit_code == 0, shown.output
        for text in wanted:
            assert _squeezed(text) in _squeezed(shown.output), (" ".join(path), text)
        checked += wanted
    assert any("(needs loanrisk[mlflow])" in text for text in checked)
    assert any("directions of risk [the setting]" in text for text in checked)
    assert any("NAME[@VERSION|ALIAS]" in text for text in checked)

    # As a user sees it, from the installed entry point.
    train = run("train", "--help").stdout
    assert "(needs loanrisk[mlflow])" in train
    assert "Constrain the model to the schema's directions of risk [the setting]." in train
    top = run("--help").stdout
    assert "or CSV on stdin ('-')" in top
    assert "JSON records on stdin" not in top


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--band-cutoffs", "0.5,0.2"], "error: band cut-offs must increase: 0.5 then 0.2"),
        (["--band-cutoffs", "0.1,x"], "error: --band-cutoffs '0.1,x': comma-separated numbers"),
        (
            ["--band-cutoffs", "0.1,0.2,0.3"],
            "error: 3 band cut-off(s) make 4 bands: give 4 band names, not 3",
        ),
        (["--band-names", "a,,b"], "error: band name '': printable text of 1 to 40 characters"),
        (["--threshold", "1.5"], "error: threshold 1.5 is not a probability in (0, 1)"),
    ],
)
def test_train_refuses_a_decision_policy_that_is_not_one(
    demo_storage: Path, args: list[str], message: str
) -> None:
    done = run("train", "--rounds", "2", *args, "--storage", str(demo_storage))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(message), line
    assert not (demo_storage / "models").exists()  # nothing trained


def test_train_records_its_decision_policy_and_predict_follows_it(tmp_path: Path) -> None:
    storage = ["--storage", str(tmp_path)]
    assert run("data", "process", "sample", *storage).returncode == 0
    trained = run(
        "train",
        *storage,
        "--rounds",
        "30",
        "--threshold",
        "0.15",
        "--band-cutoffs",
        "0.1, 0.2,0.4",
        "--band-names",
        "A,B, C,D",
    )
    assert trained.returncode == 0, trained.stderr
    assert re.search(r"threshold\s+│ 0\.15: [\d,]+ defaults caught", trained.stdout)
    assert re.search(r"bands\s+│ A \[0, 0\.1\): [\d,]+ loans", trained.stdout)
    shown = json.loads(run("models", "show", "loan-default", *storage).stdout)
    policy = {"threshold": 0.15, "band_cutoffs": [0.1, 0.2, 0.4], "band_names": list("ABCD")}
    assert shown["manifest"]["policy"] == policy
    source = tmp_path / "loans.csv"
    lines = REAL_CSV.read_text().splitlines()[:40]
    source.write_text("\n".join(",".join(r.split(",")[:8] + r.split(",")[9:]) for r in lines))

    def scored(env: dict[str, str] | None = None) -> list[tuple[float, bool, str]]:
        done = run("predict", str(source), *storage, env=env)
        assert done.returncode == 0, done.stderr
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
        return [(float(r["probability"]), r["label"] == "True", r["band"]) for r in rows]

    for p, label, band in scored():  # the version's own policy
        assert label == (p > 0.15) and band == "ABCD"[sum(p >= c for c in (0.1, 0.2, 0.4))]
    for p, label, band in scored({"LOANRISK_THRESHOLD": "0.9"}):  # an explicit setting wins
        assert label == (p > 0.9) and band in "ABCD"


def test_a_booster_no_backend_serves_is_refused_before_training(tmp_path: Path) -> None:
    """A linear booster would publish a version nothing can serve: refused as the request is
    built (exit 2, one line naming the parameter), nothing published. A version that still
    cannot be served is published, never promoted (tests/training/test_job.py)."""
    store = str(tmp_path / "store")
    assert run("data", "process", "sample", "--size", "800", "--storage", store).returncode == 0
    trained = run("train", "--rounds", "3", "--param", "booster=gblinear", "--storage", store)
    assert trained.returncode == 2
    assert trained.stderr.strip() == (
        "error: params.booster 'gblinear' cannot be served: use gbtree or dart"
    )
    assert not (tmp_path / "store" / "models").exists()


def test_a_failure_no_command_foresaw_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A directory where a file is expected fails in the operating system, not in loanrisk's
    checks: still one line and exit status 1."""
    (tmp_path / "loans.csv").mkdir()
    store = str(tmp_path / "store")
    result = run("data", "process", str(tmp_path / "loans.csv"), "--storage", store)
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
