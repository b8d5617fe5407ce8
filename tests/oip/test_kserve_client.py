"""The KServe SDK's v2 REST client (InferenceRESTClient) against a real ``loanrisk serve``:
readiness, and a request it builds from InferInput objects scored as the model does."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from .conftest import LOANS, Served
from .test_rest import FEATURES, TEXT, expected


async def score(served: Served, loans: list[dict[str, Any]]) -> tuple[bool, Any]:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        base = f"http://{served.http}"
        ready = await client.is_model_ready(base, "loan-default", headers=served.headers)
        inputs = [
            InferInput(
                name=name,
                shape=[len(loans)],
                datatype="BYTES" if name in TEXT else "FP64",
                data=[loan[name] for loan in loans],
            )
            for name in FEATURES
        ]
        request = InferRequest(model_name="loan-default", infer_inputs=inputs)
        return ready, await client.infer(
            base, request, model_name="loan-default", headers=served.headers
        )
    finally:
        await client.close()


def test_the_kserve_client_scores_as_the_model_does(served: Served) -> None:
    loans = [loan for loan in LOANS if loan["person_emp_length"] is not None]
    ready, response = asyncio.run(score(served, loans))
    assert ready
    outputs = {o.name: o for o in response.outputs}
    truth = expected(served, 1, loans)["results"]
    np.testing.assert_allclose(
        outputs["probability"].data, [r["probability"] for r in truth], atol=1e-12
    )
    assert list(outputs["band"].data) == [r["band"] for r in truth]
