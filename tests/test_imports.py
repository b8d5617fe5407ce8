"""Light modules stay light: the error tree, the settings and the contracts load no ML library
(the CLI's error handling and the service's edge must not pay for xgboost)."""

from __future__ import annotations

import subprocess
import sys


def test_the_error_tree_settings_and_contracts_load_no_ml_library() -> None:
    code = (
        "import sys, loanrisk.errors, loanrisk.settings, loanrisk.contracts\n"
        "heavy = [m for m in ('xgboost', 'sklearn', 'daal4py', 'fastapi') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_the_public_api_is_still_importable_by_name() -> None:
    import loanrisk

    assert loanrisk.Scorer.__name__ == "Scorer"
    assert loanrisk.TrainingRequest(rounds=3).rounds == 3
    assert set(loanrisk.__all__) <= set(dir(loanrisk)) | set(loanrisk._LAZY) | {"__version__"}


def test_the_service_and_the_command_line_never_import_mlflow() -> None:
    """MLflow is an optional extra, absent from the server image: only exporting and logging a
    run import it."""
    code = (
        "import sys, loanrisk.cli, loanrisk.jobs.tasks\n"
        "from loanrisk.service import create_app\n"
        "from loanrisk.settings import Settings\n"
        "create_app(Settings(storage='memory://x'))\n"
        "print('mlflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


#: What no command line help may load: the ML, data-frame and web libraries.
HEAVY = (
    "xgboost",
    "sklearn",
    "pandas",
    "pyarrow",
    "numpy",
    "scipy",
    "fastapi",
    "starlette",
    "uvicorn",
    "daal4py",
    "dask",
    "optuna",
    "optbinning",
    "ortools",
    "fsspec",
    "s3fs",
    "adlfs",
    "matplotlib",
    "pygal",
    "mlflow",
)


def test_the_command_line_and_its_help_load_no_heavy_library() -> None:
    """``loanrisk --help`` and every group's and command's help start in a fraction of a
    second because they import no ML, data or web library (issue 25)."""
    code = (
        "import sys\n"
        "import typer.main\n"
        "import loanrisk.cli\n"
        "typer.main.get_command(loanrisk.cli.app)\n"
        "sys.argv = ['loanrisk', *sys.argv[1:]]\n"
        "try:\n"
        "    loanrisk.cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('loaded:' + ','.join(heavy), file=sys.stderr)\n"
    )
    for argv in (
        ["--help"],
        ["train", "--help"],
        ["models", "--help"],
        ["models", "promote", "--help"],
        ["data", "process", "--help"],
        ["data", "show", "--help"],
        ["predict", "--help"],
        ["schema", "infer", "--help"],
        ["monitor", "drift", "--help"],
        ["tune", "--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["storage", "check", "--help"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert "Usage: loanrisk" in done.stdout, done.stderr
        assert done.stderr.strip().splitlines()[-1] == "loaded:", (argv, done.stderr)


def test_the_contracts_and_the_request_builders_load_no_data_library() -> None:
    """The typed requests are built at every front end's edge: the HTTP routes, the command
    line, the job runner. Building one never pays for pandas or numpy."""
    code = (
        "import sys, loanrisk.contracts, loanrisk.requests\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
