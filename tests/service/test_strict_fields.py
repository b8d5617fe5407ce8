"""Counts and flags in v1 bodies are strict (issue 26, item 5): a string, a number or a
boolean where the other is expected is refused with a 422 naming the field, never coerced
("yes" is no flag, "3" is no count, true is no version)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loanrisk.service import create_app
from loanrisk.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("strict")
    with TestClient(create_app(Settings(storage=str(root)))) as test_client:
        yield test_client


ALIAS = "/v1/models/loan-default/aliases/production"
LOOSE = [
    ("post", f"{ALIAS}/retire", {"force": "yes"}, "body.force"),
    ("post", f"{ALIAS}/retire", {"force": 1}, "body.force"),
    ("post", f"{ALIAS}/retire", {"force": "true"}, "body.force"),
    ("put", ALIAS, {"version": True}, "body.version"),
    ("put", ALIAS, {"version": 2, "if_not_worse": "yes"}, "body.if_not_worse"),
    ("put", ALIAS, {"version": 2, "max_auc_drop": False}, "body.max_auc_drop"),
    ("put", ALIAS, {"version": 2, "max_auc_drop": "0.1"}, "body.max_auc_drop"),
    ("post", "/v1/models/loan-default/versions", {"rounds": "3"}, "body.rounds"),
    ("post", "/v1/models/loan-default/versions", {"promote": "yes"}, "body.promote"),
    ("post", "/v1/datasets", {"source": "raw.csv", "size": "100"}, "body.size"),
    ("post", "/v1/datasets", {"source": "raw.csv", "size": True}, "body.size"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), LOOSE)
def test_a_loose_count_or_flag_is_refused_naming_the_field(
    client: TestClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    answer = client.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    fields = [f["field"] for f in answer.json()["error"]["details"]["fields"]]
    assert field in fields, answer.text


def test_a_strict_flag_still_reaches_the_route(client: TestClient) -> None:
    # A well-typed body passes the edge: the answer is about the (absent) model, not the body.
    answer = client.post(f"{ALIAS}/retire", json={"force": True, "reason": "gone"})
    assert answer.status_code == 404, answer.text
