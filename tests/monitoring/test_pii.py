"""Personal fields (``pii: true`` in the schema): the prediction log stores them as a keyed
HMAC-SHA256 or not at all, never in clear, through every route that scores; drift leaves
them out and says so."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.monitoring.log.personal import PersonalFields
from loanrisk.monitoring.log.reader import read_log
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN

KEY = "a-secret-key-of-at-least-32-characters!"
NAME = "Ann Example"
AGE = 41


def personal_schema() -> LoanSchema:
    """The built-in schema with the applicant's age personal, and a personal name column."""
    doc = builtin_schema().model_dump(mode="json")
    for column in doc["columns"]:
        if column["name"] == "person_age":
            column["pii"] = True
    doc["columns"].append(
        {"name": "applicant_name", "role": "ignored", "type": "categorical", "pii": True}
    )
    return LoanSchema.model_validate(doc)


def expected_hash(text: str) -> str:
    return "hmac-sha256:" + hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def score_everywhere(root: Path, settings: Settings, tag: str) -> None:
    """Score the applicant through JSON, a CSV body and the reference's route."""
    loan = {**EXAMPLE_LOAN, "person_age": AGE, "applicant_name": NAME}
    csv = "applicant_name," + ",".join(EXAMPLE_LOAN) + "\n"
    csv += f"{NAME}," + ",".join(str(v) for v in {**EXAMPLE_LOAN, "person_age": AGE}.values())
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post("/v1/predict", json={"records": [{**loan, "id": f"{tag}-json"}]}),
            client.post("/v1/predict", content=csv, headers={"content-type": "text/csv"}),
            client.post(
                "/predict",
                json={"model_name": "loan-default", "model_key": "models", "sample": [loan]},
            ),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
        drift = client.get("/v1/models/loan-default/drift")
        assert drift.status_code == 200, drift.text
        report = drift.json()
        assert report["left_out"] == ["person_age"]
        assert "person_age" not in [f["name"] for f in report["features"]]
        assert report["features"] and report["rejected"] == 0
    # Leaving the client shut the app down: its log is written.


def logged_text(root: Path) -> str:
    """Every cell of every log file, as text (the files are compressed: read them)."""
    tables = [pq.read_table(p) for p in (root / "prediction-log").rglob("*.parquet")]
    return json.dumps([t.to_pylist() for t in tables], default=str)


def test_personal_fields_never_reach_the_log_in_clear(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = FsspecStorage(str(root))
    schema = personal_schema()
    process_dataset(
        validate_frame(generate_sample(2_000), schema=schema),
        storage,
        source="sample",
        schema=schema,
    )
    run_training(TrainingRequest(rounds=5), storage, nthread=1)
    base: dict[str, Any] = {"storage": str(root), "nthread": 1, "log_flush_seconds": 0.2}

    score_everywhere(root, Settings(**base, log_pii="hash", log_pii_key=KEY), "hashed")
    rows = read_log(storage, "prediction-log", model="loan-default")
    assert sorted(rows["source"]) == ["reference", "v1", "v1-csv"]
    for features in map(json.loads, rows["features"]):
        assert features["applicant_name"] == expected_hash(NAME)  # joinable, not readable
        assert features["person_age"] == expected_hash(str(AGE))
        assert features["person_income"] == EXAMPLE_LOAN["person_income"]  # the rest as sent
    assert NAME not in logged_text(root)

    score_everywhere(root, Settings(**base), "dropped")  # log_pii: drop, the default
    rows = read_log(storage, "prediction-log", model="loan-default")
    dropped = [json.loads(f) for f in rows["features"][len(rows) - 3 :]]
    assert all("applicant_name" not in f and "person_age" not in f for f in dropped)
    assert all(f["loan_grade"] == EXAMPLE_LOAN["loan_grade"] for f in dropped)
    assert NAME not in logged_text(root)


def test_a_value_hashes_the_same_whatever_carried_it() -> None:
    fields = PersonalFields("hash", KEY.encode())
    names = frozenset({"age"})
    texts = [fields.protect({"Age ": v}, names)["Age "] for v in (41, 41.0, "41", " 41 ")]
    assert texts == [expected_hash("41")] * 4
    assert fields.protect({"age": None, "other": 1}, names) == {"age": None, "other": 1}
    assert PersonalFields().protect({"age": 3, "other": 1}, names) == {"other": 1}
    with pytest.raises(ValueError, match="needs a key"):
        PersonalFields("hash", None)


def test_hashing_needs_a_long_key_and_pii_is_for_attributes() -> None:
    with pytest.raises(ValidationError, match="needs log_pii_key"):
        Settings(log_pii="hash")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(log_pii="hash", log_pii_key="short")
    doc = builtin_schema().model_dump(mode="json")
    for role in ("id", "label"):
        bad = {**doc, "columns": [*doc["columns"], {"name": "x", "role": role, "type": "integer"}]}
        bad["columns"][-1]["pii"] = True
        if role == "label":
            bad["columns"] = [c for c in bad["columns"] if c["role"] != "label" or c["name"] == "x"]
        with pytest.raises(ValidationError, match=f"pii does not apply to the {role}"):
            LoanSchema.model_validate(bad)
    assert personal_schema().personal == {"person_age", "applicant_name"}


def test_declaring_pii_keeps_the_schema_s_fingerprint() -> None:
    plain = builtin_schema()
    doc = plain.model_dump()
    doc["columns"][0]["pii"] = True
    assert LoanSchema.model_validate(doc).fingerprint() == plain.fingerprint()
