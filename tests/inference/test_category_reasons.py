"""Statements per category: declared in the schema (``reasons``) or in a lender's catalog, they
reach a declined applicant's reasons in place of the attribute's; the schema refuses a
statement for a category it does not declare; catalogs stored before them still read."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.errors import InvalidInput
from loanrisk.inference.results import scored_json
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.registry.reasons import ReasonCatalog, ReasonEntry, derived_catalog
from loanrisk.schema import LoanSchema, builtin_schema, validate_frame
from loanrisk.storage import MemoryStorage
from loanrisk.training.job import TrainingRequest, run_training

HOME = {"RENT|other": "The applicant does not own a home", "mortgage": "A mortgage is held"}
GRADE = {"E|F|G": "The loan's grade is among the riskiest (E to G)"}
#: A lender's catalog: a statement for one purpose, and its own words for renters.
CATALOG = ReasonCatalog(
    reasons=(
        ReasonEntry(
            attribute="loan_intent",
            direction="value",
            value="medical",
            code="MED1",
            statement="Medical loans default more often",
        ),
        ReasonEntry(
            attribute="person_home_ownership",
            direction="value",
            value="Rent",
            code="HOME1",
            statement="The applicant rents ({value})",
        ),
    )
)


def lender_schema(**changes: dict[str, Any]) -> LoanSchema:
    """The built-in schema with per-category statements (and ``changes`` per column)."""
    doc = builtin_schema().model_dump(mode="json", exclude_defaults=True)
    per_column: dict[str, dict[str, Any]] = {
        "person_home_ownership": {"reasons": HOME},
        "loan_grade": {"reasons": GRADE},
        "loan_intent": {"reason": None},  # no reason: the generated "<title>: <value>"
        **changes,
    }
    for column in doc["columns"]:
        column.update(per_column.get(column["name"], {}))
    return LoanSchema.model_validate({**doc, "name": "lender"})


def schema_error(**changes: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        lender_schema(**changes)
    return str(caught.value)


def test_a_schema_declares_statements_per_category_or_group_matched_case_insensitively() -> None:
    column = lender_schema().column("person_home_ownership")
    assert column.category_reasons() == {
        "RENT": "The applicant does not own a home",
        "OTHER": "The applicant does not own a home",
        "MORTGAGE": "A mortgage is held",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"person_home_ownership": {"reasons": {"CASTLE": "x"}}},
            "reasons: 'CASTLE' is not a declared category",
        ),
        ({"person_home_ownership": {"reasons": {"RENT|CASTLE": "x"}}}, "'CASTLE' is not a"),
        (
            {"person_home_ownership": {"reasons": {"RENT": "x", "rent|OWN": "y"}}},
            "category 'RENT' has two statements",
        ),
        ({"person_home_ownership": {"reasons": {"RENT": " "}}}, "must be 1 to 300 characters"),
        (
            {"loan_amnt": {"reasons": {"HIGH": "x"}}},
            "reasons (a statement per category) apply to categorical and ordinal features",
        ),
    ],
)
def test_the_schema_refuses_a_statement_for_what_is_not_a_declared_category(
    changes: dict[str, dict[str, Any]], message: str
) -> None:
    assert message in schema_error(**changes)


def test_the_catalog_carries_the_schema_s_statements_after_the_attribute_codes() -> None:
    plain = derived_catalog(builtin_schema())
    catalog = derived_catalog(lender_schema())
    # the per-attribute codes are numbered as before; the per-category ones follow
    assert [e.code for e in catalog.reasons[: len(plain.reasons)]] == [
        e.code for e in plain.reasons
    ]
    by_value = catalog.value_lookup()
    rent, other = (
        by_value[("person_home_ownership", "RENT")],
        by_value[("person_home_ownership", "OTHER")],
    )
    assert rent.code == other.code  # one statement for the group: one code
    assert rent.code != by_value[("person_home_ownership", "MORTGAGE")].code
    assert int(rent.code[1:]) == len(plain.reasons) + 1
    assert {v for (a, v) in by_value if a == "loan_grade"} == {"E", "F", "G"}
    assert catalog.lookup()[("loan_intent", "value")].statement == "Loan purpose: {value}"


def test_a_lender_catalog_replaces_or_adds_statements_per_category() -> None:
    merged = derived_catalog(lender_schema(), CATALOG)
    by_value = merged.value_lookup()
    assert by_value[("person_home_ownership", "RENT")].code == "HOME1"  # replaced
    assert by_value[("person_home_ownership", "RENT")].value == "RENT"  # as declared
    assert by_value[("person_home_ownership", "OTHER")].code.startswith("R")  # its group kept
    assert by_value[("loan_intent", "MEDICAL")].statement == "Medical loans default more often"
    assert merged.reasons[-1].code == "MED1"  # a category the schema gave none: added last


def test_a_catalog_entry_for_a_category_must_name_a_declared_one() -> None:
    schema = lender_schema()
    for entry, message in (
        (
            ReasonEntry(
                attribute="loan_intent", direction="value", value="holiday", code="X", statement="x"
            ),
            "'holiday' is not a category of 'loan_intent'",
        ),
        (
            ReasonEntry(
                attribute="loan_amnt", direction="value", value="high", code="X", statement="x"
            ),
            "'loan_amnt' is numeric",
        ),
    ):
        with pytest.raises(InvalidInput, match=message):
            derived_catalog(schema, ReasonCatalog(reasons=(entry,)))
    with pytest.raises(ValidationError, match="has direction 'value'"):
        ReasonEntry(attribute="loan_grade", direction="high", value="G", code="X", statement="x")


def test_a_catalog_stored_before_statements_per_category_reads_as_it_did() -> None:
    stored = (
        '{"format": "loanrisk.reasons", "version": 1, "reasons": ['
        '{"attribute": "loan_intent", "direction": "value", "code": "R07", '
        '"statement": "Purpose of the loan"}]}'
    )
    catalog = ReasonCatalog.model_validate_json(stored)
    assert catalog.lookup()[("loan_intent", "value")].says("MEDICAL") == "Purpose of the loan"
    assert catalog.value_lookup() == {}


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    """A version of the lender's schema trained with the lender's catalog."""
    storage = MemoryStorage()
    schema = lender_schema()
    process_dataset(
        validate_frame(generate_sample(3_000, seed=3), schema=schema),
        storage,
        source="sample",
        schema=schema,
    )
    # a fast learning rate: 30 rounds of the reference's 0.02 would decline no one
    run_training(
        TrainingRequest(
            rounds=30, params={"max_depth": 4, "learning_rate": 0.3}, reason_catalog=CATALOG
        ),
        storage,
        nthread=1,
    )
    return Scorer(ModelRegistry(storage).load("loan-default", 1))


def expected(reason: dict[str, Any]) -> tuple[str, str]:
    """The (direction, statement) a reason of the lender's model must carry."""
    value = str(reason["value"]).upper()
    feature = reason["feature"]
    if feature == "person_home_ownership" and value == "RENT":
        return "value", f"The applicant rents ({reason['value']})"
    if feature == "person_home_ownership" and value in ("OTHER", "MORTGAGE"):
        return "value", lender_schema().column(feature).category_reasons()[value]
    if feature == "loan_intent" and value == "MEDICAL":
        return "value", "Medical loans default more often"
    if feature == "loan_intent":
        return "value", f"Loan purpose: {reason['value']}"
    if feature == "loan_grade" and value in ("E", "F", "G"):
        return "value", GRADE["E|F|G"]
    return reason["direction"], reason["reason"]  # not a category with a statement


def test_reasons_and_decline_notices_use_the_loan_s_category_statement(scorer: Scorer) -> None:
    loans = generate_sample(400, seed=11).drop(columns=["loan_status"])
    records = loans.astype(object).where(loans.notna(), None).to_dict(orient="records")
    scored = scorer.score_records(records, explain=True, decline_reasons=True, top_k=6)
    results = scored_json(scored)["results"]
    seen = set()
    for result in results:
        for reason in result["reasons"]:
            assert (reason["direction"], reason["reason"]) == expected(reason)
            seen.add((reason["feature"], str(reason["value"]).upper()))
        notice = [{"code": r["code"], "reason": r["reason"]} for r in result["reasons"]]
        assert result["decline_reasons"] == (notice if result["label"] else [])
    assert {("person_home_ownership", "RENT"), ("loan_intent", "MEDICAL")} <= seen
    assert any(r["decline_reasons"] for r in results)
    assert any(f == "loan_grade" and v in "EFG" for f, v in seen)


def test_a_batch_carries_the_same_category_statements(scorer: Scorer) -> None:
    loans = generate_sample(300, seed=12).drop(columns=["loan_status"])
    frame, _ = scorer.score_frame(loans, explain=True, decline_reasons=True)
    records = loans.astype(object).where(loans.notna(), None).to_dict(orient="records")
    results = scored_json(scorer.score_records(records, decline_reasons=True))["results"]
    assert list(frame["decline_reasons"]) == [
        "; ".join(r["reason"] for r in result["decline_reasons"]) for result in results
    ]
    assert frame["decline_reasons"].str.contains("The applicant rents").any()
