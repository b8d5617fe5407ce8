"""requirements/serve.lock, the serving image's, is runtime.lock without what only the ``tune``
and ``scorecard`` extras need, at the same pins. ``make lock`` derives it with pip's resolver
(runtime.lock as constraints); this test derives it again from the installed packages'
declared requirements (their metadata), the closure of pyproject's dependencies."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Iterable

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..conftest import ROOT

REQUIREMENTS = ROOT / "requirements"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: The extras the serving image leaves out.
LEFT_OUT = ("tune", "scorecard")
#: What ``pip freeze`` (make lock) never writes: the venv's own installers (OSQP asks for one).
UNFROZEN = {"pip", "setuptools", "wheel", "distribute"}


def pins(lock: str) -> dict[str, str]:
    """``name==version`` lines of a lock, by canonical name."""
    found = {}
    for line in (REQUIREMENTS / lock).read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version
    return found


def closure(requirements: Iterable[str], locked: dict[str, str]) -> set[str]:
    """Every distribution ``requirements`` need, transitively, on this platform (the image's:
    Linux, CPython 3.11), each at its locked version."""
    needed: set[str] = set()
    expanded: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements are in
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in UNFROZEN:
            continue
        assert name in locked, f"{name} (for {requirement}) is not in runtime.lock"
        needed.add(name)
        distribution = importlib.metadata.distribution(name)
        assert distribution.version == locked[name], f"{name}: installed is not the locked"
        for asked in ("", *requirement.extras):
            if (name, asked) not in expanded:
                expanded.add((name, asked))
                pending += [(Requirement(r), asked) for r in distribution.requires or ()]
    return needed


@pytest.fixture(scope="module")
def runtime() -> dict[str, str]:
    return pins("runtime.lock")


def test_serve_lock_is_the_closure_of_the_dependencies_at_runtime_locks_pins(
    runtime: dict[str, str],
) -> None:
    serve = closure(PROJECT["dependencies"], runtime)
    assert pins("serve.lock") == {name: runtime[name] for name in serve}


def test_what_serve_lock_leaves_out_is_only_what_the_extras_need(
    runtime: dict[str, str],
) -> None:
    extras = [r for extra in LEFT_OUT for r in PROJECT["optional-dependencies"][extra]]
    everything = closure([*PROJECT["dependencies"], *extras], runtime)
    assert set(runtime) == everything
    left_out = set(runtime) - set(pins("serve.lock"))
    assert {"optuna", "optbinning", "ortools", "cvxpy", "matplotlib", "sqlalchemy"} <= left_out
