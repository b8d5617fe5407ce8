"""The OpenAPI document is true: every example in it is accepted by the route it documents,
and every operation lists its errors in the one error shape."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.schema.second import SECOND, second_loans

#: Files the examples name, created on the storage so that the examples can be accepted.
EXAMPLE_FILES = (
    "raw/credit_risk_dataset.csv",
    "data/credit_risk_dataset.csv",
    "incoming/loans-2026-11.csv",
)
#: Answers that say the request itself was wrong: an example must never get one.
REFUSALS = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("openapi")
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(1_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=3), storage, nthread=1)
    loans = generate_sample(200)
    loans.insert(0, "application_id", [f"A-{i}" for i in range(len(loans))])  # the id_column
    raw = loans.to_csv(index=False).encode()
    for name in EXAMPLE_FILES:
        storage.write_bytes(name, raw)
    # One job slot, no queue: the examples that start jobs are parsed, checked and then
    # answered 429 while a long job holds the slot, so none of them trains for minutes.
    settings = Settings(storage=str(root), max_jobs=1, max_queued_jobs=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def second_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A service whose served model is of the second schema (tests/schema/second.py)."""
    root = tmp_path_factory.mktemp("openapi-second")
    storage = FsspecStorage(str(root))
    schema = LoanSchema.model_validate(SECOND)
    loans = validate_frame(second_loans(1_000), schema=schema)
    process_dataset(loans, storage, source="second", schema=schema)
    run_training(TrainingRequest(rounds=3), storage, nthread=1)
    with TestClient(create_app(Settings(storage=str(root), nthread=1))) as test_client:
        deadline = time.monotonic() + 30
        while not test_client.get("/readyz").json().get("model"):
            assert time.monotonic() < deadline, "the model was never served"
            time.sleep(0.1)
        yield test_client


def examples(document: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, media type, example) for every request-body example in the document."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                schema = body.get("schema", {})
                if "$ref" in schema:
                    schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                found = [body["example"]] if "example" in body else []
                found += [e["value"] for e in body.get("examples", {}).values()]
                found += schema.get("examples", [])
                for example in found:
                    yield method, path, media, example


def concrete(path: str) -> str:
    return (
        path.replace("{name}", "loan-default")
        .replace("{alias}", "production")
        .replace("{version}", "1")
    )


def send(client: TestClient, method: str, path: str, media: str, example: Any) -> Any:
    url = concrete(path)
    if media == "multipart/form-data":
        files = {"file": ("loans.csv", generate_sample(50).to_csv(index=False), "text/csv")}
        return client.request(method, url, data=example, files=files)
    if media == "text/csv":
        return client.request(method, url, content=example, headers={"content-type": media})
    return client.request(method, url, json=example)


def test_every_example_is_accepted_by_its_route(client: TestClient) -> None:
    busy = client.post(
        "/v1/datasets", json={"source": "raw/credit_risk_dataset.csv", "size": 20_000_000}
    )
    assert busy.status_code == 202, busy.text
    found = list(examples(client.get("/openapi.json").json()))
    assert len(found) >= 12
    try:
        for method, path, media, example in found:
            response = send(client, method, path, media, example)
            assert response.status_code not in REFUSALS, (method, path, media, response.text)
            assert response.status_code < 500, (method, path, media, response.text)
    finally:
        job = busy.headers["location"]
        client.post(f"{job}/cancel")
        deadline = time.monotonic() + 30
        while client.get(job).json()["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    uploads = Path(client.app.state.services.storage.local_path("jobs"))  # type: ignore[attr-defined]
    assert not list(uploads.glob("uploads/*/*"))  # refused jobs left no staged upload


def test_every_operation_documents_its_errors_in_the_error_shape(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "Error" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            for status, answer in responses.items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    shape = "OipError" if path.startswith("/v2") else "Error"  # OIP's own
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}, (method, path)
    assert document["components"]["schemas"]["OipError"]["properties"]["error"] == {
        "type": "string",
        "description": "What is wrong, for a person.",
    }
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422"} <= set(infer)
    predict = document["paths"]["/v1/predict"]["post"]["responses"]
    assert {"401", "403", "409", "413", "415", "422"} <= set(predict)
    assert "429" in document["paths"]["/train"]["post"]["responses"]


def every_example(node: Any) -> Iterator[Any]:
    """Every value the document shows as an example, anywhere (bodies, responses, fields)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "example":
                yield value
            elif key == "examples":
                yield from (value.values() if isinstance(value, dict) else value)
            else:
                yield from every_example(value)
    elif isinstance(node, list):
        for item in node:
            yield from every_example(item)


def test_a_model_of_another_schema_is_described_in_its_own_fields(
    second_client: TestClient,
) -> None:
    document = second_client.get("/openapi.json").json()
    shown = json.dumps(list(every_example(document)))
    builtin = [c.name for c in builtin_schema().columns]
    assert [name for name in builtin if re.search(rf"\b{name}\b", shown)] == []
    features = LoanSchema.model_validate(SECOND).feature_names
    with_loans = [
        (method, path, media, example)
        for method, path, media, example in examples(document)
        if any(re.search(rf"\b{name}\b", json.dumps(example)) for name in features)
    ]
    assert {(path, media) for _, path, media, _ in with_loans} == {
        ("/v1/predict", "application/json"),
        ("/v1/predict", "text/csv"),
        ("/v2/models/{name}/infer", "application/json"),
        ("/v2/models/{name}/versions/{version}/infer", "application/json"),
        ("/predict", "application/json"),
    }
    for method, path, media, example in with_loans:  # each, sent as it is, is scored
        response = send(second_client, method, path, media, example)
        assert response.status_code == 200, (path, media, response.text)


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> Any:
    (found,) = (p for p in document["paths"][path][method]["parameters"] if p["name"] == name)
    return found["schema"]


def test_version_references_declare_exactly_what_the_registry_resolves(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    report = "/v1/models/{name}/versions/{ref}/report"
    ref = _parameter(document, report, "get", "ref")["pattern"]
    for good in ("1", "v1", "latest", "production", "vx"):
        assert re.search(ref, good), good
        status = client.get(f"/v1/models/loan-default/versions/{good}/report").status_code
        assert status in (200, 404), (good, status)
    for bad in ("2G6", "v1x", "0123456789", "a..b", ""):
        assert not re.search(ref, bad), bad
        if bad:
            status = client.get(f"/v1/models/loan-default/versions/{bad}/report").status_code
            assert status == 422, (bad, status)
    # An empty query value is the parameter's default (the served alias), so it is declared.
    (version,) = _parameter(document, "/v1/models/{name}/drift", "get", "version")["anyOf"][:1]
    assert re.search(version["pattern"], "")
    assert client.get("/v1/models/loan-default/drift?version=").status_code == 200
    # PUT of an alias: a version as a name declares the same pattern.
    branches = document["components"]["schemas"]["AliasBody"]["properties"]["version"]["anyOf"]
    assert any(b.get("pattern") == ref for b in branches), branches


def test_every_operation_that_declares_a_key_refuses_a_request_without_one(
    tmp_path: Path,
) -> None:
    key = "openapi-admin-key-0123456789abcdef"
    settings = Settings(storage=str(tmp_path), api_keys=(SecretStr(f"admin:{key}"),))
    values = {"name": "loan-default", "version": "1", "ref": "1", "alias": "production"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        document = client.get("/openapi.json").json()
        assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
        secured = 0
        for path, operations in document["paths"].items():
            url = re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "job-x"), path)
            for method, operation in operations.items():
                if "security" not in operation:
                    assert "401" not in operation["responses"], (method, path)
                    continue
                secured += 1
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
                    answer = client.request(method, url, headers=headers)
                    assert answer.status_code == 401, (method, path, headers, answer.text)
        assert secured > 30
