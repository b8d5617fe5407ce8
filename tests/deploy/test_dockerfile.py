"""The container image, checked statically: it installs what CI installs, runs as a non-root
user, has no build tools, and starts a real CLI command. tests/image runs the built image."""

from __future__ import annotations

import json
import re

from loanrisk.settings import Settings

from ..conftest import ROOT
from .conftest import DEPLOY, cli_context

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_multi_stage_on_slim_python_311() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    assert args["PYTHON"] == "python:3.11-slim-bookworm"
    build, final = stages()
    assert build[0] == ("FROM", "${PYTHON} AS build")
    assert final[0] == ("FROM", "${PYTHON}")


def test_the_image_installs_with_the_script_ci_uses() -> None:
    build, final = stages()
    runs = " ".join(rest for keyword, rest in build if keyword == "RUN")
    assert 'sh requirements/install.sh /opt/loanrisk "${LOCK}"' in runs
    assert ("ARG", "LOCK=serve") in build  # the serving image; make demo installs runtime
    makefile = (ROOT / "Makefile").read_text()
    assert "sh requirements/install.sh $(VENV) runtime --editable" in makefile
    assert ("COPY", "--from=build /opt/loanrisk /opt/loanrisk") in final
    for lock in ("serve", "runtime", "dask"):
        assert (ROOT / "requirements" / f"{lock}.lock").is_file()


def test_binutils_strip_the_build_stage_and_never_reach_the_image() -> None:
    build, final = stages()
    build_runs = " ".join(rest for keyword, rest in build if keyword == "RUN")
    assert "apt-get $apt_ca install -y --no-install-recommends binutils" in build_runs
    assert build_runs.index("binutils") < build_runs.index("prune.py")
    final_runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "binutils" not in final_runs
    assert [rest for keyword, rest in final if keyword == "COPY"] == [
        "--from=build /opt/loanrisk /opt/loanrisk"
    ]


def test_the_final_stage_has_no_build_tools_and_runs_as_a_user() -> None:
    _, final = stages()
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    installed = re.findall(
        r"apt-get \$apt_ca install -y --no-install-recommends ([\w\s.-]+?);", runs
    )
    assert [packages.split() for packages in installed] == [
        ["libgomp1"]
    ]  # XGBoost's OpenMP runtime, nothing to compile with
    for tool in ("gcc", "g++", "build-essential", "make ", "python3-dev"):
        assert tool not in runs
    (user,) = [rest for keyword, rest in final if keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert "useradd --system --uid 10001" in runs


def test_port_health_check_and_entrypoint_are_the_apps() -> None:
    _, final = stages()
    by_keyword = dict(final)
    port = Settings(_env_file=None).port  # type: ignore[call-arg]
    assert by_keyword["EXPOSE"] == str(port)
    assert "http://127.0.0.1:%s/healthz" in by_keyword["HEALTHCHECK"]
    assert f"os.environ.get('LOANRISK_PORT', '{port}')" in by_keyword["HEALTHCHECK"]
    assert "LOANRISK_HOST=0.0.0.0" in by_keyword["ENV"]
    entrypoint = json.loads(by_keyword["ENTRYPOINT"])
    assert entrypoint == ["loanrisk", "serve"]
    assert cli_context(entrypoint).command.name == "serve"


def test_a_corporate_ca_is_a_build_secret_of_every_step_that_downloads() -> None:
    build, final = stages()
    for stage in (build, final):
        downloads = [rest for keyword, rest in stage if keyword == "RUN" and "install" in rest]
        assert downloads and all(r.startswith("--mount=type=secret,id=ca ") for r in downloads)
    (pip_step,) = [rest for keyword, rest in build if keyword == "RUN" and "install.sh" in rest]
    assert "export PIP_CERT=/run/secrets/ca" in pip_step
    (build_apt,) = [rest for keyword, rest in build if keyword == "RUN" and "apt-get" in rest]
    (final_apt,) = [rest for keyword, rest in final if keyword == "RUN"]
    for apt_step in (build_apt, final_apt):
        assert 'apt_ca="-o Acquire::https::CAInfo=/run/secrets/ca"' in apt_step
    # nothing copies it into a layer
    assert "/run/secrets" not in " ".join(rest for keyword, rest in final if keyword != "RUN")
