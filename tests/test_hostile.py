"""Hostile input at the edge (issue 26): text that cannot be stored is refused where it enters,
and JSON and CSV read a loan's text and numbers by one rule. Through a real app.

The finding: a JSON loan with a lone surrogate (``"\\ud800"``) in a category was scored and
logged by ``/v1/predict`` and the reference's ``/predict``, and from then on the drift report
answered 500."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.schema.text import CONTROL, MAX_TEXT_CHARS, NOT_A_NUMBER, TOO_LONG, UNENCODABLE
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN, FEATURES, SCHEMA

CATEGORY = next(c.name for c in SCHEMA.features if c.type == "categorical")
NUMBER = next(c.name for c in SCHEMA.features if c.type == "numeric")
SURROGATE_LOAN = {**EXAMPLE_LOAN, CATEGORY: "\ud800"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-text")
    storage = FsspecStorage(str(path))
    process_dataset(validate_frame(generate_sample(1_000, seed=6)), storage, source="sample")
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    return path


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    options = Settings(storage=str(root), nthread=1, log_flush_seconds=0.2)
    with TestClient(create_app(options), raise_server_exceptions=False) as test_client:
        yield test_client


def json_body(text: str) -> bytes:
    """A JSON body whose escapes carry a lone surrogate (an HTTP client cannot encode one)."""
    return text.encode("ascii")


def drift(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/models/loan-default/drift")
    assert response.status_code == 200, response.text[:300]
    report: dict[str, Any] = response.json()
    return report


def test_a_surrogate_loan_is_refused_everywhere_and_drift_keeps_answering(
    client: TestClient,
) -> None:
    body = f'{{"records": [{_loan_json(SURROGATE_LOAN)}]}}'
    v1 = client.post(
        "/v1/predict", content=json_body(body), headers={"content-type": "application/json"}
    )
    assert v1.status_code == 422, v1.text[:300]
    assert CATEGORY in v1.json()["error"]["message"]
    assert UNENCODABLE in v1.json()["error"]["message"]

    reference = client.post(
        "/predict",
        content=json_body(
            '{"backend": "local", "model_name": "loan-default", "local_model_path": "models",'
            f' "sample": [{_loan_json(SURROGATE_LOAN)}]}}'
        ),
        headers={"content-type": "application/json"},
    )
    assert reference.status_code == 422, reference.text[:300]
    assert CATEGORY in reference.text

    good = client.post("/v1/predict", json=[EXAMPLE_LOAN] * 3)
    assert good.status_code == 200, good.text[:300]
    deadline = time.monotonic() + 20
    while (report := drift(client))["rows"] < 3:  # the log is flushed every 0.2 s
        assert time.monotonic() < deadline, report
        time.sleep(0.2)
    assert report["rows"] == 3


def _loan_json(loan: dict[str, Any]) -> str:
    """``loan`` as JSON text with non-ASCII characters escaped (surrogates included)."""
    return json.dumps(loan, ensure_ascii=True)


def test_a_surrogate_anywhere_in_a_json_body_is_refused_naming_its_place(
    client: TestClient,
) -> None:
    for loan, place in [
        ({**EXAMPLE_LOAN, "id": "\udc00"}, "body[0].id"),
        ({**EXAMPLE_LOAN, "note": ["ok", "\ud83d"]}, "body[0].note[1]"),
    ]:
        response = client.post(
            "/v1/predict",
            content=json_body(f"[{_loan_json(loan)}]"),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text[:300]
        assert response.json()["error"]["details"] == {"field": place}
    # A surrogate pair is a character (an emoji, escaped as ASCII JSON writes it): text.
    paired = json_body(_loan_json({**EXAMPLE_LOAN, "id": "loan-\U0001f600"}))
    answer = client.post(
        "/v1/predict", content=paired, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200, answer.text[:300]


# -- one rule for JSON and CSV ---------------------------------------------------------------

#: Text no loan field may hold: lone surrogates, C0 and C1 control characters, DEL.
BAD_CHARACTERS = st.one_of(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),
    st.characters(min_codepoint=0x7F, max_codepoint=0x9F),
)
#: Numbers Python's float() reads and CSV does not: other scripts' digits, underscores.
OTHER_DIGITS = st.sampled_from(
    ["٠١٢٣٤٥٦٧٨٩", "".join(chr(0xFF10 + i) for i in range(10)), "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९"]
)


@st.composite
def bad_numbers(draw: st.DrawFn) -> str:
    digits = draw(OTHER_DIGITS)
    kind = draw(st.sampled_from(["script", "mixed", "underscore"]))
    if kind == "underscore":
        return f"{draw(st.integers(1, 99))}_{draw(st.integers(100, 999))}"
    text = "".join(draw(st.lists(st.sampled_from(digits), min_size=1, max_size=6)))
    return text if kind == "script" else f"{draw(st.integers(1, 9))}{text}"


def _csv(loan: dict[str, Any]) -> bytes:
    frame = pd.DataFrame([loan], columns=FEATURES)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


def refusals(client: TestClient, loan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The errors of ``loan`` sent as JSON (v1) and as CSV (v1, text/csv)."""
    as_json = client.post(
        "/v1/predict",
        content=json_body(_loan_json(loan)),
        headers={"content-type": "application/json"},
    )
    as_csv = client.post("/v1/predict", content=_csv(loan), headers={"content-type": "text/csv"})
    assert as_json.status_code == 422, as_json.text[:300]
    assert as_csv.status_code == 422, as_csv.text[:300]
    return as_json.json()["error"], as_csv.json()["error"]


def _same_refusal(json_error: dict[str, Any], csv_error: dict[str, Any], field: str) -> str:
    """The problem both name for ``field``: JSON's record field, CSV's column issue."""
    (named,) = json_error["details"]["fields"]
    assert named["field"] == field
    (issue,) = csv_error["details"]["issues"]
    assert issue["column"] == field and issue["rows"] == [1]
    assert named["message"].startswith(issue["message"]), (named, issue)
    return str(issue["message"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), max_size=3),
    bad=BAD_CHARACTERS,
    where=st.sampled_from(["category", "number"]),
)
def test_json_and_csv_refuse_bad_text_alike(
    client: TestClient, prefix: str, bad: str, where: str
) -> None:
    field = CATEGORY if where == "category" else NUMBER
    text = f"{prefix}{bad}RENT" if where == "category" else f"1{bad}2"
    loan = {**EXAMPLE_LOAN, field: text}
    if "\ud800" <= bad <= "\udfff":
        # CSV is UTF-8 bytes: a surrogate cannot be written, so the file is not UTF-8 text.
        error = refusals_json_only(client, loan)
        assert error["details"] == {"field": f"body.{field}"}
        assert UNENCODABLE in error["message"]
        return
    if bad == "\x00":
        return  # a NUL byte makes the whole CSV binary data, refused as such
    if bad == "\r":  # unquoted, a line break to CSV: the row is cut, and refused as short
        json_error, csv_error = refusals(client, loan)
        assert json_error["details"]["fields"] == [{"field": field, "message": CONTROL}]
        assert csv_error["message"].startswith("malformed CSV: row 1 has")
        return
    json_error, csv_error = refusals(client, loan)
    assert _same_refusal(json_error, csv_error, field) == CONTROL


def refusals_json_only(client: TestClient, loan: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/predict",
        content=json_body(_loan_json(loan)),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text[:300]
    error: dict[str, Any] = response.json()["error"]
    return error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number=bad_numbers())
def test_json_and_csv_read_the_same_digits(client: TestClient, number: str) -> None:
    json_error, csv_error = refusals(client, {**EXAMPLE_LOAN, NUMBER: number})
    assert _same_refusal(json_error, csv_error, NUMBER) == NOT_A_NUMBER


@pytest.mark.parametrize("number", ["12", "+12", "12.", ".5", "1e1", " 12 ", "1.5E+1"])
def test_json_and_csv_read_ascii_decimals_alike(client: TestClient, number: str) -> None:
    loan = {**EXAMPLE_LOAN, NUMBER: number}
    as_json = client.post("/v1/predict", json=loan)
    as_csv = client.post(
        "/v1/predict",
        content=_csv(loan),
        headers={"content-type": "text/csv", "accept": "application/json"},
    )
    assert as_json.status_code == 200, as_json.text[:300]
    assert as_csv.status_code == 200, as_csv.text[:300]


def test_json_and_csv_share_the_length_limit_of_a_category(client: TestClient) -> None:
    at_limit = {**EXAMPLE_LOAN, CATEGORY: "X" * MAX_TEXT_CHARS}
    assert client.post("/v1/predict", json=at_limit).status_code == 200
    over = {**EXAMPLE_LOAN, CATEGORY: "X" * (MAX_TEXT_CHARS + 1)}
    as_json = client.post("/v1/predict", json=over)
    assert as_json.status_code == 422, as_json.text[:300]
    assert as_json.json()["error"]["details"]["fields"] == [
        {"field": CATEGORY, "message": TOO_LONG}
    ]
    as_csv = client.post("/v1/predict", content=_csv(over), headers={"content-type": "text/csv"})
    assert as_csv.status_code == 422, as_csv.text[:300]
    assert CATEGORY in as_csv.json()["error"]["message"]
    assert f"longer than {MAX_TEXT_CHARS}" in as_csv.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (NUMBER, "\u0662\u0662", "not a number"),
        (NUMBER, "1_000", "not a number"),
        (CATEGORY, "RE\x01NT", CONTROL),
        (CATEGORY, "X" * (MAX_TEXT_CHARS + 1), TOO_LONG),
    ],
)
def test_oip_bytes_tensors_read_text_and_numbers_by_the_same_rule(
    client: TestClient, field: str, value: str, problem: str
) -> None:
    row = [str({**EXAMPLE_LOAN, field: value}[f]) for f in FEATURES]
    tensor = {"name": "loans", "shape": [1, len(FEATURES)], "datatype": "BYTES", "data": [row]}
    answer = client.post("/v2/models/loan-default/infer", json={"inputs": [tensor]})
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert field in answer.text and problem in answer.text, answer.text[:300]


def test_a_csv_row_with_2_of_11_fields_is_refused_as_a_json_loan_without_them_is(
    client: TestClient,
) -> None:
    full = _csv(EXAMPLE_LOAN).decode()
    short = ",".join(str(EXAMPLE_LOAN[f]) for f in FEATURES[:2])
    as_csv = client.post(
        "/v1/predict", content=f"{full}{short}\n", headers={"content-type": "text/csv"}
    )
    assert as_csv.status_code == 422, as_csv.text[:300]
    error = as_csv.json()["error"]
    assert error["message"].startswith("malformed CSV: row 2 has 2 fields, the header names 11")
    as_json = client.post(
        "/v1/predict", json=[EXAMPLE_LOAN, {f: EXAMPLE_LOAN[f] for f in FEATURES[:2]}]
    )
    assert as_json.status_code == 422, as_json.text[:300]
    assert as_json.json()["error"]["details"]["record"] == 1
    # An empty field is a missing value in both: sent, not left out.
    blanks = ",".join(str(EXAMPLE_LOAN[f]) for f in FEATURES[:2]) + "," * (len(FEATURES) - 2)
    scored = client.post(
        "/v1/predict",
        content=f"{full}{blanks}\n",
        headers={"content-type": "text/csv", "accept": "application/json"},
    )
    assert scored.status_code == 200, scored.text[:300]
