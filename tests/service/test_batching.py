"""Batched scoring gives every request exactly what scoring it alone gives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.serving.batching import ScoringQueue
from loanrisk.serving.recording import LogAs
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    storage = FsspecStorage(str(tmp_path_factory.mktemp("batching")))
    process_dataset(validate_frame(generate_sample(2_000)), storage, source="sample")
    run_training(TrainingRequest(rounds=20), storage, nthread=1)
    return Scorer(ModelRegistry(storage).load("loan-default"))


def loans(n: int, grade: str = "A") -> list[dict[str, object]]:
    return [{**EXAMPLE_LOAN, "loan_grade": grade, "loan_amnt": 1_000 * (i + 1)} for i in range(n)]


BAD = {**EXAMPLE_LOAN, "loan_amnt": "lots"}


def scored_alone(
    scorer: Scorer, records: list[dict[str, object]], on_error: str, explain: bool
) -> object:
    try:
        return scorer.score_records(records, on_error=on_error, explain=explain)  # type: ignore[arg-type]
    except InvalidInput as exc:
        return exc


def test_concurrent_requests_get_their_own_results_and_errors(scorer: Scorer) -> None:
    requests = [
        (loans(3), "raise", False),
        ([loans(1)[0], BAD, loans(2, "C")[1]], "skip", False),
        ([BAD, *loans(2)], "raise", False),
        (loans(2, "G"), "raise", True),
        (loans(5, "B"), "skip", False),
        ([{"person_age": "x"}], "skip", False),
    ]

    async def run_all() -> list[object]:
        queue = ScoringQueue(max_records=8)
        try:
            return await asyncio.gather(
                *(
                    queue.score(scorer, records, on_error=on_error, explain=explain)  # type: ignore[arg-type]
                    for records, on_error, explain in requests
                ),
                return_exceptions=True,
            )
        finally:
            queue.close()

    outcomes = asyncio.run(run_all())
    for (records, on_error, explain), outcome in zip(requests, outcomes, strict=True):
        alone = scored_alone(scorer, records, on_error, explain)
        if isinstance(alone, InvalidInput):
            assert isinstance(outcome, InvalidInput)
            assert outcome.message == alone.message
            assert outcome.message.startswith("record 0: loan_amnt")
        else:
            assert outcome == alone
    assert len(outcomes[1].rejected) == 1  # type: ignore[attr-defined]
    assert outcomes[1].rejected[0].record == 1  # type: ignore[attr-defined]
    assert [r.record for r in outcomes[4].results] == [0, 1, 2, 3, 4]  # type: ignore[attr-defined]
    assert outcomes[3].results[0].reasons is not None  # type: ignore[attr-defined]


def test_a_request_whose_client_left_does_not_stop_the_queue(scorer: Scorer) -> None:
    async def run() -> object:
        queue = ScoringQueue()
        try:
            abandoned = asyncio.ensure_future(queue.score(scorer, loans(50)))
            await asyncio.sleep(0)
            abandoned.cancel()
            return await queue.score(scorer, loans(1))
        finally:
            queue.close()

    result = asyncio.run(run())
    assert len(result.results) == 1  # type: ignore[attr-defined]


def at_once(queue: ScoringQueue, scorer: Scorer, calls: list[dict[str, Any]]) -> list[object]:
    """``queue.score`` with each of ``calls`` (its keyword arguments), all waiting together;
    what each gave back or raised."""

    async def run_all() -> list[object]:
        try:
            return await asyncio.gather(
                *(queue.score(scorer, **call) for call in calls), return_exceptions=True
            )
        finally:
            queue.close()

    return asyncio.run(run_all())


def test_the_answered_requests_of_a_batch_are_recorded_together_in_one_call(
    scorer: Scorer,
) -> None:
    recorded: list[list[tuple[int, int, LogAs]]] = []
    requests = [
        (loans(2), "raise", LogAs("champion", "v1", "a")),
        ([loans(1)[0], BAD], "skip", LogAs("champion", "reference", "b")),
        ([BAD], "raise", LogAs("champion", "v1", "c")),  # refused: nothing recorded
        (loans(3, "C"), "raise", None),  # scored, not to be recorded
        (loans(1, "B"), "raise", LogAs("champion", "v1", "d")),
    ]

    def recorder(_: Scorer, calls: object) -> None:
        recorded.append([(len(r), len(s.results), how) for r, s, how in calls])  # type: ignore[attr-defined]

    outcomes = at_once(
        ScoringQueue(recorder=recorder),
        scorer,
        [{"records": r, "on_error": on_error, "log_as": how} for r, on_error, how in requests],
    )
    assert isinstance(outcomes[2], InvalidInput)
    assert recorded == [
        [
            (2, 2, LogAs("champion", "v1", "a")),
            (2, 1, LogAs("champion", "reference", "b")),
            (1, 1, LogAs("champion", "v1", "d")),
        ]
    ]


def test_a_recording_that_fails_answers_its_requests_with_the_error(scorer: Scorer) -> None:
    def recorder(_: Scorer, calls: object) -> None:
        raise RuntimeError("the recorder broke")

    failed, answered = at_once(
        ScoringQueue(recorder=recorder),
        scorer,
        [
            {"records": loans(1), "log_as": LogAs("champion", "v1", "a")},
            {"records": loans(2)},  # not recorded: answered
        ],
    )
    assert isinstance(failed, RuntimeError)
    assert len(answered.results) == 2  # type: ignore[attr-defined]


def test_a_request_whose_client_left_is_not_recorded(scorer: Scorer) -> None:
    recorded: list[object] = []

    async def run() -> None:
        queue = ScoringQueue(recorder=lambda _, calls: recorded.extend(calls))
        try:
            left = asyncio.ensure_future(
                queue.score(scorer, loans(2), log_as=LogAs("champion", "v1", "gone"))
            )
            stays = asyncio.ensure_future(
                queue.score(scorer, loans(1), log_as=LogAs("champion", "v1", "here"))
            )
            await asyncio.sleep(0)  # both wait in the queue
            left.cancel()
            await stays
        finally:
            queue.close()

    asyncio.run(run())
    assert [how.request_id for _, _, how in recorded] == ["here"]  # type: ignore[attr-defined]


def test_requests_reaching_the_queue_within_a_turn_of_the_loop_are_scored_together(
    scorer: Scorer,
) -> None:
    """The queue scores one turn of the event loop after the first request waits: a request
    whose handler gets there a turn later (its connection read meanwhile) joins the batch;
    one two turns later is the next batch's."""
    batches: list[list[str | None]] = []

    async def run() -> None:
        queue = ScoringQueue(recorder=lambda _, calls: batches.append([c[2][2] for c in calls]))

        async def after(turns: int, name: str) -> object:
            for _ in range(turns):
                await asyncio.sleep(0)
            return await queue.score(scorer, loans(1), log_as=LogAs("champion", "v1", name))

        try:
            await asyncio.gather(after(0, "first"), after(1, "a turn later"), after(2, "two"))
        finally:
            queue.close()

    asyncio.run(run())
    assert batches == [["first", "a turn later"], ["two"]]
