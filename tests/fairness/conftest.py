"""solas-ai, in a venv of its own (requirements/solas.lock: it needs pandas<3 and pydantic<2),
driven by subprocess: the fairness measures' second implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SOLAS_PYTHON = Path(sys.prefix) / "solas" / "bin" / "python"
DRIVER = Path(__file__).with_name("solas_driver.py")

Solas = Callable[[list[dict[str, Any]]], list[dict[str, dict[str, float]]]]


def _listed(value: Any) -> Any:
    """Arrays as JSON lists (NaN as null: a loan in no group)."""
    if isinstance(value, np.ndarray):
        return [None if v != v else float(v) for v in value.astype(np.float64)]
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    return value


def run_solas(cases: list[dict[str, Any]]) -> list[dict[str, dict[str, float]]]:
    """Runs cases (see solas_driver.py) through solas-ai: one subprocess for a batch; per
    case, per protected group, solas-ai's figures."""
    assert SOLAS_PYTHON.exists(), "solas-ai's venv is missing: run make (requirements/solas.lock)"
    answer = subprocess.run(
        [str(SOLAS_PYTHON), str(DRIVER)],
        input=json.dumps([_listed(case) for case in cases]),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    result: list[dict[str, dict[str, float]]] = json.loads(answer.stdout)
    return result


def solas_case(groups: Any, approved: np.ndarray, probability: np.ndarray) -> dict[str, Any]:
    """A case of an attribute's groups (:class:`loanrisk.fairness.AttributeGroups`)."""
    return {
        "outcome": approved.astype(float),
        "score": probability,
        "groups": {g.name: g.weight for g in (groups.reference, *groups.groups)},
        "protected": [g.name for g in groups.groups],
        "reference": [groups.reference.name],
    }


@pytest.fixture(scope="session")
def solas() -> Solas:
    return run_solas
