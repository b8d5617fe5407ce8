"""The gRPC checks of test_grpc.py, run in a process of their own: tritonclient.grpc and the
KServe SDK each register the protocol's messages (package ``inference``) in protobuf's one
default pool, so one process cannot import both.

    python -m tests.oip.grpc_checks ROOT HTTP_ADDRESS GRPC_ADDRESS"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from tests.oip.conftest import LOANS, Served
from tests.oip.test_rest import FEATURES, columnar, expected


def metadata(served: Served) -> dict[str, str]:
    return {"authorization": served.headers["Authorization"]}


def check_metadata(client: triton.InferenceServerClient, served: Served) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("loan-default", headers=metadata(served))
    meta = client.get_model_metadata("loan-default", headers=metadata(served), as_json=True)
    assert [i["name"] for i in meta["inputs"]] == list(FEATURES)
    assert meta["versions"] == ["1", "2"]
    server = client.get_server_metadata(headers=metadata(served), as_json=True)
    assert server["name"] == "loanrisk" and "binary_tensor_data" in server["extensions"]


def check_scores(client: triton.InferenceServerClient, served: Served) -> None:
    result = client.infer(
        "loan-default", columnar(LOANS, client=triton), request_id="g-1", headers=metadata(served)
    )
    truth = expected(served, 1, LOANS)["results"]
    np.testing.assert_allclose(
        result.as_numpy("probability"), [r["probability"] for r in truth], atol=1e-12
    )
    assert result.as_numpy("label").tolist() == [r["label"] for r in truth]
    assert [b.decode() for b in result.as_numpy("band")] == [r["band"] for r in truth]
    response = result.get_response(as_json=True)
    assert (response["model_version"], response["id"]) == ("1", "g-1")
    wanted = [triton.InferRequestedOutput("reasons")]
    named = client.infer(
        "loan-default",
        columnar(LOANS, client=triton),
        model_version="2",
        outputs=wanted,
        headers=metadata(served),
    )
    reasons = [json.loads(r) for r in named.as_numpy("reasons")]
    truth = expected(served, 2, LOANS)["results"]
    assert [[x["feature"] for x in r] for r in reasons] == [
        [x["feature"] for x in t["reasons"]] for t in truth
    ]


def check_errors(client: triton.InferenceServerClient, served: Served) -> None:
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
        client.infer("loan-default", columnar(LOANS, client=triton))
    with pytest.raises(InferenceServerException, match="NOT_FOUND"):
        client.infer("nope", columnar(LOANS, client=triton), headers=metadata(served))
    with pytest.raises(InferenceServerException, match=r"INVALID_ARGUMENT.*person_age"):
        client.infer(
            "loan-default",
            columnar([{**LOANS[0], "person_age": 500}], client=triton),
            headers=metadata(served),
        )
    partial = [t for t in columnar(LOANS, client=triton) if t.name() != "loan_grade"]
    with pytest.raises(InferenceServerException, match=r"missing input.*loan_grade"):
        client.infer("loan-default", partial, headers=metadata(served))
    wrong = triton.InferInput("loan_grade", [len(LOANS)], "FP64")
    wrong.set_data_from_numpy(np.ones(len(LOANS)))
    typed = [wrong if t.name() == "loan_grade" else t for t in columnar(LOANS, client=triton)]
    with pytest.raises(InferenceServerException, match=r"loan_grade.*BYTES"):
        client.infer("loan-default", typed, headers=metadata(served))


def main() -> None:
    root, http, grpc = sys.argv[1:4]
    served = Served(Path(root), http, grpc)
    for check in (check_metadata, check_scores, check_errors):
        check(triton.InferenceServerClient(served.grpc), served)
        print(f"ok {check.__name__}", flush=True)


if __name__ == "__main__":
    main()
