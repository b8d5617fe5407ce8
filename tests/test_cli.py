"""The command line, run as a user runs it: the installed ``loanrisk`` entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loanrisk.settings import Settings

from .conftest import FIXTURES, REAL_CSV

LOANRISK = shutil.which("loanrisk", path=os.path.dirname(sys.executable))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert LOANRISK, "the loanrisk entry point is not installed next to this Python"
    return subprocess.run(
        [LOANRISK, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


def test_demo_processes_the_built_in_sample(tmp_path: Path) -> None:
    done = run("demo", "--storage", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "15,000 train / 5,000 test" in done.stdout
    assert "data quality" in done.stdout
    listed = run("data", "list", "--storage", str(tmp_path))
    assert listed.returncode == 0 and "sample" in listed.stdout


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
    shown = run("data", "show", "latest", "--storage", str(tmp_path), "--directory", "bench")
    assert json.loads(shown.stdout)["id"] == manifest["id"]


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
