"""OIP v2 over HTTP against a real ``loanrisk serve``: tritonclient.http unchanged (binary
tensors, its default, and JSON ones), MLServer's ``pd`` request, the [N, k] matrix form, a
named version, and every kind of bad tensor refused with a 4xx in OIP's error shape."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from loanrisk.inference.results import scored_json
from loanrisk.inference.scorer import Scorer
from loanrisk.monitoring.log.reader import read_log
from loanrisk.registry import ModelRegistry
from loanrisk.schema import builtin_schema
from loanrisk.storage import FsspecStorage

from .conftest import ADMIN_KEY, LOANS, Served

FEATURES = builtin_schema().feature_names
TEXT = {c.name for c in builtin_schema().features if c.type in ("categorical", "ordinal")}


def expected(served: Served, version: int, loans: list[dict[str, Any]]) -> dict[str, Any]:
    scorer = Scorer(ModelRegistry(FsspecStorage(str(served.root))).load("loan-default", version))
    return scored_json(scorer.score_records(loans, explain=True))


def columnar(
    loans: list[dict[str, Any]], *, binary: bool = True, client: Any = triton
) -> list[Any]:
    """One InferInput per attribute, of ``client`` (tritonclient.http, or .grpc, which sends
    raw bytes always)."""
    inputs = []
    for name in FEATURES:
        values = [loan[name] for loan in loans]
        if name in TEXT:
            array, datatype = np.array(values, dtype=object), "BYTES"
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            datatype = "FP64"
        tensor = client.InferInput(name, [len(loans)], datatype)
        if client is triton:
            tensor.set_data_from_numpy(array, binary_data=binary)
        else:
            tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


@pytest.fixture
def client(served: Served) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(served.http)


def test_tritonclient_reads_the_server_and_the_model(
    client: triton.InferenceServerClient, served: Served
) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("loan-default", headers=served.headers)
    assert client.is_model_ready("loan-default", "2", headers=served.headers)
    assert client.get_server_metadata(headers=served.headers)["name"] == "loanrisk"
    meta = client.get_model_metadata("loan-default", headers=served.headers)
    assert [i["name"] for i in meta["inputs"]] == list(FEATURES)
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["loan_grade"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == [
        "probability",
        "label",
        "band",
        "grade",
        "score",
        "reasons",
        "decline_reasons",
    ]
    assert meta["versions"] == ["1", "2"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_scores_as_the_model_does(
    client: triton.InferenceServerClient, served: Served, binary: bool
) -> None:
    result = client.infer(
        "loan-default", columnar(LOANS, binary=binary), request_id="r-1", headers=served.headers
    )
    truth = expected(served, 1, LOANS)["results"]
    np.testing.assert_allclose(
        result.as_numpy("probability"), [r["probability"] for r in truth], rtol=0, atol=1e-12
    )
    assert result.as_numpy("label").tolist() == [r["label"] for r in truth]
    assert [b.decode() if isinstance(b, bytes) else b for b in result.as_numpy("band")] == [
        r["band"] for r in truth
    ]
    response = result.get_response()
    assert (response["model_version"], response["id"]) == ("1", "r-1")


def test_a_named_version_scores_exactly_that_version_with_reasons(
    client: triton.InferenceServerClient, served: Served
) -> None:
    wanted = [triton.InferRequestedOutput("probability"), triton.InferRequestedOutput("reasons")]
    result = client.infer(
        "loan-default", columnar(LOANS), model_version="2", outputs=wanted, headers=served.headers
    )
    truth = expected(served, 2, LOANS)["results"]
    assert result.get_response()["model_version"] == "2"
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probability", "reasons"]
    np.testing.assert_allclose(
        result.as_numpy("probability"), [r["probability"] for r in truth], atol=1e-12
    )
    reasons = [json.loads(r) for r in result.as_numpy("reasons")]
    assert [[x["feature"] for x in r] for r in reasons] == [
        [x["feature"] for x in t["reasons"]] for t in truth
    ]


def post(served: Served, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        f"http://{served.http}{path}", json=body, timeout=30, headers={**served.headers, **headers}
    )


def pd_request(loans: list[dict[str, Any]]) -> dict[str, Any]:
    """MLServer's ``pd`` content type: one input per column."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [len(loans)],
                "datatype": "BYTES" if name in TEXT else "FP64",
                "data": [loan[name] for loan in loans],
            }
            for name in FEATURES
        ],
    }


def test_an_mlserver_pd_request_and_the_matrix_form(served: Served) -> None:
    loans = LOANS[:2]
    truth = [r["probability"] for r in expected(served, 1, loans)["results"]]
    answer = post(served, "/v2/models/loan-default/infer", pd_request(loans))
    assert answer.status_code == 200, answer.text
    probability = next(o for o in answer.json()["outputs"] if o["name"] == "probability")
    assert probability["shape"] == [2] and probability["datatype"] == "FP64"
    np.testing.assert_allclose(probability["data"], truth, atol=1e-12)
    rows = [[str(loan[f]) for f in FEATURES] for loan in loans]
    matrix = {
        "inputs": [
            {"name": "loans", "shape": [2, len(FEATURES)], "datatype": "BYTES", "data": rows}
        ]
    }
    answer = post(served, "/v2/models/loan-default/infer", matrix)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"][0]["data"], truth, atol=1e-9)


def refused(answer: httpx.Response, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert isinstance(error, str), error  # OIP's shape: a string, not an object
    for word in words:
        assert word in error, error


def test_bad_tensors_are_refused_with_a_4xx_naming_the_problem(served: Served) -> None:
    url = "/v2/models/loan-default/infer"
    good = pd_request(LOANS[:2])

    def changed(name: str, **fields: Any) -> dict[str, Any]:
        return {
            **good,
            "inputs": [{**t, **fields} if t["name"] == name else t for t in good["inputs"]],
        }

    refused(post(served, url, changed("loan_amnt", shape=[3])), 400, "loan_amnt", "shape [3]")
    refused(
        post(served, url, changed("loan_grade", datatype="FP64", data=[1.0, 2.0])),
        400,
        "loan_grade",
        "BYTES",
    )
    refused(post(served, url, changed("loan_amnt", data=["a", "b"])), 400, "must be numbers")
    refused(post(served, url, changed("loan_amnt", data=[1, [2]])), 400, "must be numbers")
    refused(post(served, url, changed("loan_grade", data=["A", 3])), 400, "must be strings")
    missing = {**good, "inputs": [t for t in good["inputs"] if t["name"] != "loan_grade"]}
    refused(post(served, url, missing), 400, "missing input(s) loan_grade")
    extra = {**good, "inputs": [*good["inputs"], {**good["inputs"][0], "name": "zip_code"}]}
    refused(post(served, url, extra), 400, "unknown input(s) zip_code")
    refused(post(served, url, changed("person_age", data=[500, 30])), 422, "person_age")
    refused(post(served, url, {"inputs": []}), 400, "inputs")
    refused(post(served, url, {**good, "outputs": [{"name": "shap"}]}), 400, "unknown output")
    refused(
        post(
            served,
            url,
            {"inputs": [{"name": "loans", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
        ),
        400,
        "11 attributes",
    )
    too_many = {
        "inputs": [
            {"name": "loans", "shape": [10_001, len(FEATURES)], "datatype": "FP64", "data": [0.0]}
        ]
    }
    refused(post(served, url, too_many), 413, "at most 10000")
    refused(post(served, url, good, Authorization=""), 401)
    refused(post(served, "/v2/models/nope/infer", good), 404, "nope")
    refused(post(served, "/v2/models/loan-default/versions/9/infer", good), 404, "no version 9")
    refused(post(served, "/v2/models/loan-default/versions/x1/infer", good), 400, "version")
    # Binary FP64 (tritonclient's default): NaN is a missing value, which the built-in schema
    # allows (as v1's null); infinity is no value at all.
    header = (
        json.dumps(
            {
                "inputs": [
                    {**t, "shape": [1], "data": None, "parameters": {"binary_data_size": 8}}
                    if t["name"] == "person_income"
                    else {**t, "shape": [1], "data": t["data"][:1]}
                    for t in good["inputs"]
                ]
            }
        )
        .replace('"data": null, ', "")
        .encode()
    )

    framing = {**served.headers, "Inference-Header-Content-Length": str(len(header))}

    def binary(value: float) -> httpx.Response:
        return httpx.post(
            f"http://{served.http}{url}", content=header + struct.pack("<d", value), headers=framing
        )

    refused(binary(np.inf), 400, "person_income", "infinite")
    missing_income = binary(np.nan)
    assert missing_income.status_code == 200, missing_income.text
    truth = expected(served, 1, [{**LOANS[0], "person_income": None}])["results"][0]
    assert missing_income.json()["outputs"][0]["data"] == [truth["probability"]]
    truncated = httpx.post(f"http://{served.http}{url}", content=header + b"\0\0", headers=framing)
    refused(truncated, 400, "binary_data_size")


def test_oip_scores_are_counted_and_logged_as_v1s_are(served: Served) -> None:
    before = time.time()
    answer = post(served, "/v2/models/loan-default/versions/2/infer", pd_request(LOANS[:1]))
    assert answer.status_code == 200
    deadline = time.monotonic() + 30
    storage = FsspecStorage(str(served.root))
    while True:
        log = read_log(storage, "prediction-log", model="loan-default")
        direct = log[(log["source"] == "oip") & (log["role"] == "direct")]
        if len(direct) and direct["time"].max().timestamp() >= before:
            break
        assert time.monotonic() < deadline, "the OIP loans never reached the prediction log"
        time.sleep(0.2)
    assert set(direct["version"]) == {2}
    metrics = httpx.get(
        f"http://{served.http}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ).text
    assert 'role="direct"' in metrics and 'version="2"' in metrics


def test_tritonclient_sees_oip_errors(client: triton.InferenceServerClient, served: Served) -> None:
    loans = [{**LOANS[0], "person_age": 500}]
    with pytest.raises(InferenceServerException, match="person_age"):
        client.infer("loan-default", columnar(loans), headers=served.headers)
