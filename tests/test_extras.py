"""Without an optional extra (the serving image has neither ``tune`` nor ``scorecard``), what
needs it is refused before any work with one clear error naming the extra and the image that
has it: 501 over HTTP (documented on exactly those routes), one line and exit 1 on the command
line, never a traceback; what needs no extra works as before. An extra is taken away the way
a missing package looks to Python: its module ``None`` in ``sys.modules``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loanrisk import errors
from loanrisk._version import __version__
from loanrisk.cli import app as cli_app
from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.extras import EXTRAS, installed, require
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.service.openapi import EXTRA_ROUTES
from loanrisk.serving.errors import status_of
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage

IMAGE = f"loanrisk-runtime:{__version__}"


@pytest.fixture
def without_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, _ in EXTRAS.values():
        monkeypatch.setitem(sys.modules, module, None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extras") / "store"
    frame = validate_frame(generate_sample(400, seed=3))
    process_dataset(frame, FsspecStorage(str(root)), source="sample")
    return root


@pytest.fixture
def client(store: Path, without_extras: None) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(storage=str(store), nthread=1))) as test_client:
        yield test_client


def test_an_installed_extra_is_required_silently() -> None:
    assert installed("tune") and installed("scorecard")  # make test installs runtime.lock
    require("tune")
    require("scorecard")


@pytest.mark.usefixtures("without_extras")
@pytest.mark.parametrize(("extra", "module"), [("tune", "optuna"), ("scorecard", "optbinning")])
def test_a_missing_extra_names_itself_its_module_and_the_full_image(
    extra: str, module: str
) -> None:
    assert not installed(extra)  # type: ignore[arg-type]
    with pytest.raises(errors.NotInstalled) as refused:
        require(extra)  # type: ignore[arg-type]
    assert refused.value.details == {"extra": extra, "module": module, "image": IMAGE}
    assert f"loanrisk[{extra}]" in refused.value.message and IMAGE in refused.value.message


def test_not_installed_is_501_and_crosses_a_process_boundary() -> None:
    # its gRPC code (UNIMPLEMENTED) is held in tests/oip/test_grpc_codes.py, in a fresh
    # interpreter: the service's messages clash with a client library's loaded here
    error = errors.NotInstalled("needs the tune extra", details={"extra": "tune"})
    assert status_of(error) == 501
    again = errors.error_from_dict(error.to_dict())
    assert type(again) is errors.NotInstalled and again.details == {"extra": "tune"}


def test_the_routes_that_need_an_extra_answer_501_naming_it(client: TestClient) -> None:
    answers = {
        ("get", "/v1/datasets/{dataset_id}/characteristics"): client.get(
            "/v1/datasets/latest/characteristics"
        ),
        ("post", "/v1/datasets/{dataset_id}/studies"): client.post(
            "/v1/datasets/latest/studies", json={"study": "s", "trials": 2}
        ),
        ("post", "/v1/models/{name}/versions"): client.post(
            "/v1/models/card/versions", json={"kind": "scorecard"}
        ),
    }
    assert set(answers) == EXTRA_ROUTES
    extras = []
    for response in answers.values():
        assert response.status_code == 501, response.text
        error = response.json()["error"]
        assert error["code"] == "not_installed" and error["details"]["image"] == IMAGE
        extras.append(error["details"]["extra"])
    assert extras == ["scorecard", "tune", "scorecard"]
    documented = {
        (method, path)
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method, operation in operations.items()
        if "501" in operation["responses"]
    }
    assert documented == EXTRA_ROUTES


@pytest.mark.usefixtures("without_extras")
@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["tune", "--trials", "2"], "tune"),
        (["train", "--kind", "scorecard", "--model", "card"], "scorecard"),
        (["data", "show", "latest", "--characteristics"], "scorecard"),
    ],
)
def test_the_commands_that_need_an_extra_exit_1_with_one_line(
    store: Path, args: list[str], extra: str
) -> None:
    shown = CliRunner().invoke(cli_app, [*args, "--storage", str(store)])
    assert shown.exit_code == 1, shown.output
    assert f"needs loanrisk's {extra!r} extra" in shown.output and IMAGE in shown.output
    assert isinstance(shown.exception, SystemExit)  # typer's exit, not an error raised
    assert "Traceback" not in shown.output


@pytest.mark.usefixtures("without_extras")
def test_data_show_without_the_scorecard_extra_shows_the_manifest_and_says_why_no_analysis(
    store: Path,
) -> None:
    shown = CliRunner().invoke(cli_app, ["data", "show", "latest", "--storage", str(store)])
    assert shown.exit_code == 0, shown.output
    assert "no characteristic analysis" in shown.output and IMAGE in shown.output
