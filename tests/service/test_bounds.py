"""Scoring work is bounded and cancellable (issue 26, item 4), through the real app: a
request over ``max_request_work`` is refused (413, naming the bound and its cost) on every
transport before anything is scored; a big request is scored in chunks that give the answer
one call gives; a cancelled request stops and leaves nothing counted or logged; the parse
budget makes bodies wait, then refuses them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import TooBusy
from loanrisk.inference.results import scored_json
from loanrisk.schema import builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.serving.cancel import EXPLAIN_COST, Cancellation, ClientGone, ParseBudget
from loanrisk.serving.scoring import score_records
from loanrisk.serving.state import services_of
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN, LABEL

BOUND = 1_000
#: Loans whose cost with reasons is just over the bound (and without, far under it).
OVER = BOUND // EXPLAIN_COST + 1
MOUNT = "/loan_app/azure-fileshare"
TEXT = {c.name for c in builtin_schema().features if c.type in ("categorical", "ordinal")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bounds") / "share"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=20, params={"max_depth": 4}), storage, nthread=1)
    return root


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    settings = Settings(storage=str(store), nthread=1, max_request_work=BOUND, score_chunk_work=100)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def loans(n: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` loans, each with its own id and income (so results differ loan by loan)."""
    return [
        {**EXAMPLE_LOAN, "id": f"{prefix}-{i}", "person_income": 20_000 + 97 * i} for i in range(n)
    ]


def csv_of(n: int) -> bytes:
    frame = generate_sample(n, seed=5).drop(columns=[LABEL])
    return frame.to_csv(index=False).encode()


def predicted(client: TestClient) -> float:
    """The loans the service has counted as predicted, over every label and role."""
    text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("loanrisk_predictions_total")
    )


def refused_for_work(answer: httpx.Response, cost: int) -> None:
    assert answer.status_code == 413, answer.text[:300]
    error = answer.json()["error"]
    message = error if isinstance(error, str) else error["message"]
    assert f"{cost:,} loan-units" in message
    assert f"at most {BOUND:,}" in message
    assert "max_request_work" in message
    if isinstance(error, dict):
        assert error["details"]["cost"] == cost
        assert error["details"]["max_request_work"] == BOUND


def test_json_requests_over_the_work_bound_are_refused_before_scoring(client: TestClient) -> None:
    before = predicted(client)
    many = {"records": loans(OVER, "over"), "explain": True}
    refused_for_work(client.post("/v1/predict", json=many), OVER * EXPLAIN_COST)
    declined = {"records": loans(OVER, "over"), "decline_reasons": True}
    refused_for_work(client.post("/v1/predict", json=declined), OVER * EXPLAIN_COST)
    refused_for_work(client.post("/v1/predict", json=loans(BOUND + 1, "x")), BOUND + 1)
    assert predicted(client) == before  # nothing was scored
    # the same loans without reasons cost one unit each
    answer = client.post("/v1/predict", json={"records": loans(OVER, "under")})
    assert answer.status_code == 200, answer.text[:300]
    assert predicted(client) == before + OVER


def test_csv_bodies_are_bounded_by_their_lines(client: TestClient) -> None:
    before = predicted(client)
    csv = {"content-type": "text/csv"}
    refused_for_work(client.post("/v1/predict", content=csv_of(BOUND + 1), headers=csv), BOUND + 1)
    refused_for_work(
        client.post("/v1/predict?explain=true", content=csv_of(OVER), headers=csv),
        OVER * EXPLAIN_COST,
    )
    # a JSON answer to a CSV body is held whole: over MAX_RECORDS rows, refused before scoring
    whole = client.post(
        "/v1/predict", content=csv_of(10_001), headers={**csv, "accept": "application/json"}
    )
    assert whole.status_code == 413, whole.text[:300]
    assert "a JSON answer holds at most 10,000" in whole.json()["error"]["message"]
    assert predicted(client) == before
    answer = client.post("/v1/predict", content=csv_of(BOUND), headers=csv)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.text.count("\n") == BOUND + 1


def test_the_reference_routes_are_bounded(client: TestClient, store: Path) -> None:
    aws = {"backend": "local", "model_name": "loan-default", "local_model_path": "models"}
    sample = {**aws, "sample": loans(OVER, "ref"), "decline_reasons": True}
    refused_for_work(client.post("/predict", json=sample), OVER * EXPLAIN_COST)
    (store / "incoming").mkdir(exist_ok=True)
    (store / "incoming" / "big.csv").write_bytes(csv_of(BOUND + 1))
    stored = {**aws, "bucket": "loan-default", "csv_payload": "incoming/big.csv"}
    refused_for_work(client.post("/predict", json=stored), BOUND + 1)
    form = {
        "az_file_path": MOUNT,
        "model_directory": "models",
        "model_name": "loan-default",
        "sample_directory": "samples",
    }
    upload = {"file": ("big.csv", csv_of(BOUND + 1), "text/csv")}
    refused_for_work(client.post("/predict", data=form, files=upload), BOUND + 1)
    assert not list((store / "samples").glob("*.csv"))  # no results file was begun


def test_oip_infer_is_bounded(client: TestClient) -> None:
    batch = loans(BOUND + 1, "oip")
    request = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": name,
                "shape": [len(batch)],
                "datatype": "BYTES" if name in TEXT else "FP64",
                "data": [loan[name] for loan in batch],
            }
            for name in builtin_schema().feature_names
        ],
    }
    refused_for_work(client.post("/v2/models/loan-default/infer", json=request), BOUND + 1)


def test_a_big_request_scored_in_chunks_answers_as_one_call(client: TestClient) -> None:
    batch = loans(230, "chunks")  # 100 loans a chunk: three chunks
    answer = client.post("/v1/predict", json={"records": batch})
    assert answer.status_code == 200, answer.text[:300]
    services = services_of(client.app)
    scorer = services.models.served.snapshot().champion
    whole = scored_json(scorer.score_records(batch))
    assert answer.json()["results"] == whole["results"]
    bad = [*batch]
    bad[205] = {**bad[205], "person_income": "lots"}
    refused = client.post("/v1/predict", json={"records": bad})
    assert refused.status_code == 422, refused.text[:300]
    assert refused.json()["error"]["message"].startswith("record 205")
    skipped = client.post("/v1/predict", json={"records": bad, "on_error": "skip"}).json()
    assert [r["record"] for r in skipped["rejected"]] == [205]
    assert [r["record"] for r in skipped["results"]] == [i for i in range(230) if i != 205]


def test_a_cancelled_request_stops_and_leaves_nothing_counted_or_logged(
    client: TestClient,
) -> None:
    services = services_of(client.app)
    assert services.log is not None
    services.log.flush()
    cache = services.models.served
    before = predicted(client)
    gone = Cancellation()
    gone.cancel()
    with pytest.raises(ClientGone):
        asyncio.run(
            score_records(
                services, cache, cache.snapshot(), loans(300, "gone"), source="v1", cancel=gone
            )
        )
    assert predicted(client) == before
    assert services.log.flush() == 0
    # a cancellation that is never set changes nothing
    kept = asyncio.run(
        score_records(
            services,
            cache,
            cache.snapshot(),
            loans(300, "kept"),
            source="v1",
            cancel=Cancellation(),
        )
    )
    assert len(kept.result.results) == 300
    assert predicted(client) == before + 300
    assert services.log.flush() == 300


def test_a_cancelled_csv_leaves_no_results_file_and_nothing_logged(
    client: TestClient, store: Path
) -> None:
    from loanrisk.service.routes.reference.common import score_into

    services = services_of(client.app)
    assert services.log is not None
    services.log.flush()
    gone = Cancellation()
    gone.cancel()
    path = "samples/cancelled.csv"
    with pytest.raises(ClientGone):
        score_into(
            services,
            services.models.served,
            io.BytesIO(csv_of(500)),
            path,
            inline=10,
            cancel=gone,
        )
    assert not (store / path).exists()
    assert services.log.flush() == 0


def test_the_parse_budget_makes_bodies_wait_then_refuses() -> None:
    async def scenario() -> list[str]:
        budget = ParseBudget(100, wait=0.2)
        seen: list[str] = []

        async def parse(name: str, size: int, hold: float) -> None:
            async with budget.hold(size):
                seen.append(f"{name}+")
                await asyncio.sleep(hold)
                seen.append(f"{name}-")

        # a body over the budget is parsed alone; the next waits for it
        await asyncio.gather(parse("big", 500, 0.05), parse("small", 10, 0))
        # two that fit together run together; a third waits past its patience: TooBusy
        first = asyncio.gather(parse("a", 60, 0.4), parse("b", 40, 0.4))
        await asyncio.sleep(0.01)
        with pytest.raises(TooBusy) as refused:
            await parse("c", 10, 0)
        assert refused.value.retry_after >= 1
        await first
        assert budget.held == 0
        return seen

    seen = asyncio.run(scenario())
    assert seen[:4] == ["big+", "big-", "small+", "small-"]
    assert set(seen[4:6]) == {"a+", "b+"}


def test_a_csv_body_is_counted_by_its_lines() -> None:
    # the CSV line count is an upper bound of rows: a quoted line break counts
    from loanrisk.serving.scoring import count_rows

    assert count_rows(io.BytesIO(b"a,b\n1,2\n3,4\n")) == 2
    assert count_rows(io.BytesIO(b"a,b\n1,2\n3,4")) == 2
    assert count_rows(io.BytesIO(b"a,b\n")) == 0
    assert count_rows(io.BytesIO(b"")) == 0
    assert count_rows(io.BytesIO(b'a,b\n"x\ny",2\n')) == 2
    frame = pd.read_csv(io.BytesIO(b'a,b\n"x\ny",2\n'))
    assert len(frame) == 1
