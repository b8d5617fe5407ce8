"""Decline notices and statements per category through every front end that scores loans:
``/v1/predict`` (JSON options, CSV query parameters), OIP's ``decline_reasons`` output and the
reference's ``/predict`` (a field of ours its clients never send); bad options are refused at
the edge naming the field."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.inference.test_category_reasons import CATALOG, expected, lender_schema

MOUNT = "/loan_app/azure-fileshare"
LOANS = generate_sample(120, seed=21).drop(columns=["loan_status"])
RECORDS: list[dict[str, Any]] = (
    LOANS.astype(object).where(LOANS.notna(), None).to_dict(orient="records")
)
CSV = LOANS.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of the lender's schema (statements per category) trained with its catalog."""
    path = tmp_path_factory.mktemp("notices")
    storage = FsspecStorage(str(path))
    schema = lender_schema()
    process_dataset(
        validate_frame(generate_sample(3_000, seed=3), schema=schema),
        storage,
        source="sample",
        schema=schema,
    )
    run_training(
        TrainingRequest(
            rounds=30, params={"max_depth": 4, "learning_rate": 0.3}, reason_catalog=CATALOG
        ),
        storage,
        nthread=1,
    )
    return path


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(storage=str(root), nthread=1))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def scored(client: TestClient) -> list[dict[str, Any]]:
    """The loans scored as JSON with their reasons and decline notices."""
    body = {"records": RECORDS, "explain": True, "decline_reasons": True}
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def notices(results: list[dict[str, Any]]) -> list[str]:
    return ["; ".join(r["reason"] for r in result["decline_reasons"]) for result in results]


def test_json_decline_reasons_are_the_declined_loans_reasons(
    scored: list[dict[str, Any]],
) -> None:
    declined = [r for r in scored if r["label"]]
    assert declined and len(declined) < len(scored)
    for result in scored:
        notice = [{"code": r["code"], "reason": r["reason"]} for r in result["reasons"]]
        assert result["decline_reasons"] == (notice if result["label"] else [])
        for reason in result["reasons"]:  # the schema's and the catalog's per-category words
            assert (reason["direction"], reason["reason"]) == expected(reason)
    statements = {r["reason"] for result in scored for r in result["reasons"]}
    assert any(s.startswith("The applicant rents") for s in statements)  # the catalog's
    assert any(s.startswith("Loan purpose: ") for s in statements)  # generated, with the value


def test_a_csv_body_honours_explain_and_decline_reasons_as_query_parameters(
    client: TestClient, scored: list[dict[str, Any]]
) -> None:
    response = client.post(
        "/v1/predict?explain=true&decline_reasons=True&top_k=4",
        content=CSV,
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    table = pd.read_csv(io.StringIO(response.text), keep_default_na=False)
    assert {"reason_1", "reason_4_code", "decline_codes", "decline_reasons"} <= set(table.columns)
    assert list(table["decline_reasons"]) == notices(scored)
    assert list(table["reason_1_code"]) == [
        r["reasons"][0]["code"] if r["reasons"] else "" for r in scored
    ]

    as_json = {"Content-Type": "text/csv", "Accept": "application/json"}
    explained = client.post("/v1/predict?explain=true", content=CSV, headers=as_json)
    header = explained.json()["csv"].splitlines()[0].split(",")
    assert "reason_1" in header and "decline_reasons" not in header
    plain = client.post("/v1/predict", content=CSV, headers={"Content-Type": "text/csv"})
    assert plain.text.splitlines()[0] == "row,probability,label,band,grade,score"


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ("?decline_reasons=yes", "csv", "query.decline_reasons"),
        ("?explain=1", "csv", "query.explain"),
        ("?top_k=0", "csv", "query.top_k"),
        ("", {"records": RECORDS[:1], "decline_reasons": "yes"}, "body.decline_reasons"),
        ("", {"records": RECORDS[:1], "decline_reasons": 1}, "body.decline_reasons"),
        ("?decline_reasons=true", {"records": RECORDS[:1]}, "query.decline_reasons"),
    ],
)
def test_bad_options_are_refused_at_the_edge_naming_the_field(
    client: TestClient, query: str, body: Any, field: str
) -> None:
    if body == "csv":
        response = client.post(
            f"/v1/predict{query}", content=CSV, headers={"Content-Type": "text/csv"}
        )
    else:
        response = client.post(f"/v1/predict{query}", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith(field)
    assert field in json.dumps(error["details"])


def oip_tensors(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    schema = lender_schema()
    return [
        {
            "name": c.name,
            "shape": [len(records)],
            "datatype": "BYTES" if c.type in ("categorical", "ordinal") else "FP64",
            "data": [r[c.name] if r[c.name] is not None else float("nan") for r in records],
        }
        for c in schema.features
    ]


def test_oip_gives_decline_reasons_as_a_requested_output(
    client: TestClient, scored: list[dict[str, Any]]
) -> None:
    wanted = [{"name": "label"}, {"name": "reasons"}, {"name": "decline_reasons"}]
    body = {"inputs": oip_tensors(RECORDS), "outputs": wanted}
    # json.dumps writes a missing number as NaN, as tritonclient does
    response = client.post("/v2/models/loan-default/infer", content=json.dumps(body))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["decline_reasons"]["datatype"] == "BYTES"
    given = [json.loads(d) for d in outputs["decline_reasons"]["data"]]
    assert given == [r["decline_reasons"] for r in scored]
    reasons = [json.loads(d) for d in outputs["reasons"]["data"]]
    assert [[x["reason"] for x in r] for r in reasons] == [
        [x["reason"] for x in r["reasons"]] for r in scored
    ]
    meta = client.get("/v2/models/loan-default").json()
    assert "decline_reasons" in [o["name"] for o in meta["outputs"]]


def test_the_reference_predict_carries_decline_reasons_when_asked(
    client: TestClient, root: Path, scored: list[dict[str, Any]]
) -> None:
    aws = {
        "backend": "s3",
        "bucket": "loan-default",
        "model_key": "models",
        "model_name": "loan-default",
        "sample": RECORDS,
    }
    plain = client.post("/predict", json=aws).json()
    assert "decline_reasons" not in plain  # the reference's request: the reference's answer
    asked = client.post("/predict", json={**aws, "decline_reasons": True}).json()
    assert asked["Prediction Output"] == plain["Prediction Output"]
    assert asked["decline_reasons"] == [r["decline_reasons"] for r in scored]

    (root / "incoming").mkdir(exist_ok=True)
    (root / "incoming" / "loans.csv").write_bytes(CSV)
    stored = client.post(
        "/predict",
        json={
            **aws,
            "sample": None,
            "csv_payload": "incoming/loans.csv",
            "decline_reasons": "True",
        },
    ).json()
    assert stored["decline_reasons"] == notices(scored)
    assert len(stored["decline_codes"]) == len(RECORDS)

    form = {
        "az_file_path": MOUNT,
        "model_directory": "models",
        "model_name": "loan-default",
        "sample_directory": "samples",
        "decline_reasons": "True",
    }
    azure = client.post("/predict", data=form, files={"file": ("loans.csv", CSV, "text/csv")})
    assert azure.status_code == 200, azure.text
    answer = azure.json()
    assert set(answer["Prediction Output"]) == {"Probability", "Prediction"}
    assert list(answer["decline_reasons"].values()) == notices(scored)
    header = (root / answer["results_path"]).read_text().splitlines()[0]
    assert header.endswith("decline_codes,decline_reasons")
    refused = client.post(
        "/predict",
        data={**form, "decline_reasons": "maybe"},
        files={"file": ("loans.csv", CSV, "text/csv")},
    )
    assert refused.status_code == 422 and "decline_reasons" in refused.text
