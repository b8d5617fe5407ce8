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
