"""Adverse-action reasons: the version's catalog (derived from the schema, overridable), up to
four reasons that raised the risk, never a kept or protected column, the same on every backend,
and the statements a decline notice needs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.features.fit import fit_feature_spec
from loanrisk.features.spec import FeatureSpec, PassthroughColumn
from loanrisk.inference.reasons import above_typical
from loanrisk.inference.results import scored_json
from loanrisk.inference.scorer import BatchOptions, Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.registry.reasons import ReasonCatalog, ReasonEntry, derived_catalog
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training

OVERRIDE = ReasonCatalog(
    reasons=(
        ReasonEntry(
            attribute="loan_percent_income",
            direction="high",
            code="AFF1",
            statement="Loan amount is high relative to income",
        ),
    )
)


@pytest.fixture(scope="module")
def kept() -> tuple[MemoryStorage, pd.DataFrame]:
    """A sample with a protected and a kept column; version 1 with a lender's override."""
    storage = MemoryStorage()
    frame = generate_sample(4_000, seed=7)
    frame["applicant_group"] = np.where(np.arange(len(frame)) % 3 == 0, "b", "a")
    frame["branch"] = np.where(np.arange(len(frame)) % 2 == 0, "north", "south")
    loans = validate_frame(frame, keep=["applicant_group", "branch"])
    process_dataset(loans, storage, source="sample")
    run_training(
        TrainingRequest(
            rounds=40,
            params={"max_depth": 5},
            protected_attribute="applicant_group",
            privileged_value="a",
            reason_catalog=OVERRIDE,
        ),
        storage,
        nthread=2,
    )
    return storage, frame.drop(columns=["loan_status"])


def test_the_derived_catalog_covers_every_feature_and_direction_with_unique_codes() -> None:
    schema = builtin_schema()
    catalog = derived_catalog(schema)
    entries = catalog.lookup()
    codes = [e.code for e in catalog.reasons]
    assert len(codes) == len(set(codes))
    assert {e.attribute for e in catalog.reasons} == set(schema.feature_names)
    assert entries[("person_income", "low")].statement == "Income is low"  # declared, decreasing
    assert entries[("person_income", "high")].statement == "Income is higher than typical"
    assert entries[("loan_intent", "value")].statement == "Purpose of the loan"
    assert entries[("loan_int_rate", "missing")].statement == "Interest rate was not provided"
    assert ("loan_grade", "high") in entries  # ordinal: ordered directions, not "value"


def test_an_override_replaces_entries_and_refuses_what_is_not_a_feature() -> None:
    schema = builtin_schema()
    merged = derived_catalog(schema, OVERRIDE).lookup()
    assert merged[("loan_percent_income", "high")].code == "AFF1"
    assert merged[("loan_percent_income", "low")].code.startswith("R")
    for bad, message in (("loan_status", "not a feature"), ("applicant_group", "not a feature")):
        entry = ReasonEntry(attribute=bad, direction="high", code="X1", statement="no")
        with pytest.raises(InvalidInput, match=message):
            derived_catalog(schema, ReasonCatalog(reasons=(entry,)))
    wrong = ReasonEntry(attribute="loan_intent", direction="high", code="X2", statement="no")
    with pytest.raises(InvalidInput, match="takes the directions value, missing"):
        derived_catalog(schema, ReasonCatalog(reasons=(wrong,)))


def test_reasons_raise_the_risk_never_name_kept_columns_and_agree_across_backends(
    kept: tuple[MemoryStorage, pd.DataFrame],
) -> None:
    storage, frame = kept
    model = ModelRegistry(storage).load("loan-default", 1)
    assert model.reasons is not None
    assert model.reasons.lookup()[("loan_percent_income", "high")].code == "AFF1"
    records = frame.head(200).astype(object).where(frame.head(200).notna(), None)
    loans = records.to_dict(orient="records")
    onedal = scored_json(Scorer(model).score_records(loans, explain=True))["results"]
    reference = scored_json(Scorer(model, backend="xgboost").score_records(loans, explain=True))
    assert [r["reasons"] for r in onedal] == [r["reasons"] for r in reference["results"]]
    catalog = model.reasons.lookup()
    for result in onedal:
        reasons = result["reasons"]
        assert len(reasons) <= 4
        assert all(r["contribution"] > 0 for r in reasons)
        assert [r["contribution"] for r in reasons] == sorted(
            (r["contribution"] for r in reasons), reverse=True
        )
        for reason in reasons:
            assert reason["feature"] in builtin_schema().feature_names
            assert reason["feature"] not in ("applicant_group", "branch")
            entry = catalog[(reason["feature"], reason["direction"])]
            assert (reason["code"], reason["reason"]) == (entry.code, entry.statement)
    high = [r for res in onedal for r in res["reasons"] if r["feature"] == "loan_percent_income"]
    assert high and all(r["code"] in ("AFF1",) or r["direction"] != "high" for r in high)


def test_batches_carry_reason_and_decline_columns_the_same_as_records(
    kept: tuple[MemoryStorage, pd.DataFrame],
) -> None:
    storage, frame = kept
    scorer = Scorer(ModelRegistry(storage).load("loan-default", 1))
    source = io.BytesIO(frame.head(300).to_csv(index=False).encode())
    sink = io.BytesIO()
    scorer.score_csv(source, sink, BatchOptions(explain=True, decline_reasons=True))
    table = pd.read_csv(io.BytesIO(sink.getvalue()), keep_default_na=False)
    assert {
        "reason_1",
        "reason_1_code",
        "reason_4_value",
        "decline_codes",
        "decline_reasons",
    } <= set(table.columns)
    loans = frame.head(300).astype(object).where(frame.head(300).notna(), None)
    records = scored_json(
        scorer.score_records(loans.to_dict(orient="records"), explain=True, decline_reasons=True)
    )["results"]
    for row, record in zip(table.itertuples(), records, strict=True):
        assert row.reason_1 == (record["reasons"][0]["feature"] if record["reasons"] else "")
        if record["label"]:
            assert row.decline_reasons == "; ".join(r["reason"] for r in record["decline_reasons"])
            assert row.decline_codes == "; ".join(r["code"] for r in record["decline_reasons"])
        else:
            assert row.decline_reasons == "" and record["decline_reasons"] == []
    assert table["label"].any() and not table["label"].all()


def test_a_number_passed_through_is_typical_at_its_training_median() -> None:
    """Drafted schemas pass numbers through (``preprocess: none``): 12 months in a job is
    below typical when the median is 48, although it is above 0."""
    schema = LoanSchema.model_validate(
        {
            "name": "x",
            "columns": [
                {
                    "name": "months",
                    "type": "integer",
                    "risk": "decreasing",
                    "reason": "Time in the current job is short",
                },
                {"name": "flag", "type": "boolean"},
                {"name": "bad", "role": "label", "type": "integer"},
            ],
        }
    )
    train = pd.DataFrame(
        {"months": [12.0, 48.0, 60.0, np.nan, 30.0, 90.0], "flag": [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]}
    )
    spec = fit_feature_spec(train, schema)
    assert spec.passthrough[0] == PassthroughColumn("months")
    assert spec.passthrough[0].typical == 48.0
    assert FeatureSpec.from_json(spec.to_json()).passthrough[0].typical == 48.0
    features = np.array([[12.0, 1.0], [60.0, 0.0]], dtype=np.float32)
    assert above_typical(spec, features)["months"].tolist() == [False, True]
    plain = (PassthroughColumn("months"), PassthroughColumn("flag"))
    old = FeatureSpec(imputed=(), power=(), onehot=(), passthrough=plain)
    assert above_typical(old, features)["months"].tolist() == [True, True]  # 0, as before
    assert spec.fingerprint() == old.fingerprint()  # the median does not change the output
    catalog = derived_catalog(schema).lookup()
    assert catalog[("months", "low")].statement == "Time in the current job is short"
    assert catalog[("flag", "high")].statement == "flag: yes"
