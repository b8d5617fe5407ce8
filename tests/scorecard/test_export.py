"""``loanrisk models export --format scorecard``: the points table as CSV and HTML, and SQL
that scores a loan in a database exactly as the served scorer does (SQLite, stdlib)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loanrisk.cli import app
from loanrisk.errors import InvalidInput
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.registry.models import LoadedModel
from loanrisk.registry.scorecard import Scorecard
from loanrisk.reporting.scorecard_export import export_scorecard, points_csv, points_html
from loanrisk.reporting.scorecard_sql import probability_sql, score_sql
from loanrisk.schema import LoanSchema
from loanrisk.storage import FsspecStorage
from tests.conftest import REAL_CSV

NAME = "loan-default"
#: The attribute renamed with both quotes in it, and categories no SQL string may break on.
INTENT = 'loan\'s "intent"'
QUOTED = "HOME'IMPROVEMENT"
MARKUP = "<SCRIPT>ALERT(1)</SCRIPT>"


@pytest.fixture(scope="module")
def registry(root: Path) -> ModelRegistry:
    return ModelRegistry(FsspecStorage(str(root)), "models")


def _variant_schema(schema: LoanSchema) -> LoanSchema:
    """The built-in schema with what the public data lacks: special codes (numbers and
    text), an attribute name and categories with quotes and markup, a boolean, an integer
    that must be present and a column whose unknown categories are missing values."""
    doc = json.loads(schema.to_json())
    for column in doc["columns"]:
        name = column["name"]
        if name == "person_emp_length":
            column["special"] = [
                {"values": [-1], "meaning": "not employed"},
                {"values": [999], "meaning": "unknown"},
            ]
        elif name == "person_home_ownership":
            column["special"] = [{"values": ["UNK"], "meaning": "not asked"}]
            column["unknown"] = "missing"
        elif name == "loan_intent":
            column["name"] = INTENT
            column["categories"] = [
                QUOTED if c == "HOMEIMPROVEMENT" else c for c in column["categories"]
            ] + [MARKUP]
            column["special"] = [{"values": ["XNA"], "meaning": "not given"}]
        elif name == "person_age":
            column.update(type="integer", missing="refuse")
        elif name == "cb_person_default_on_file":
            column.update(type="boolean", categories=None, preprocess=None)
    return LoanSchema.model_validate(doc)


def _variant_scorecard(scorecard: Scorecard) -> Scorecard:
    """The version's scorecard fitted to :func:`_variant_schema`, with special bins (a code
    -1 of employment length, ``UNK`` of home ownership; 999 and ``XNA`` have none: scored as
    missing) and the boolean as ranges over 0/1."""
    doc = json.loads(scorecard.to_json())
    for c in doc["characteristics"]:
        bins = c["bins"]
        if c["name"] == "person_emp_length":
            bins.insert(-1, _special_bin(-1.0, -9))
        elif c["name"] == "person_home_ownership":
            bins.insert(-1, _special_bin("UNK", 3))
        elif c["name"] == "loan_intent":
            c["name"] = INTENT
            for b in bins:
                b["categories"] = [QUOTED if x == "HOMEIMPROVEMENT" else x for x in b["categories"]]
                b["label"] = b["label"].replace("HOMEIMPROVEMENT", QUOTED)
            bins[0]["categories"].append(MARKUP)
            bins[0]["label"] = bins[0]["label"][:-1] + ", " + MARKUP + "}"
        elif c["name"] == "cb_person_default_on_file":
            no, yes, missing = bins
            c["type"], c["edges"] = "numeric", [0.5]
            no.update(kind="range", label="[-inf, 0.5)", upper=0.5, categories=[], points=-4)
            yes.update(kind="range", label="[0.5, inf)", lower=0.5, categories=[], points=-17)
            missing["points"] = 2
    return Scorecard.model_validate(doc)


def _special_bin(code: float | str, points: int) -> dict[str, Any]:
    return {
        "kind": "special",
        "label": f"special {code}",
        "code": code,
        "count": 10,
        "events": 3,
        "woe": 0.1,
        "points": points,
    }


@pytest.fixture(scope="module")
def variant(registry: ModelRegistry) -> LoadedModel:
    """Version 2 (the scorecard) with :func:`_variant_schema` and its scorecard: served by the
    same Scorer as any version."""
    model = registry.load(NAME, 2)
    assert model.scorecard is not None
    return dataclasses.replace(
        model,
        schema=_variant_schema(model.schema),
        scorecard=_variant_scorecard(model.scorecard),
    )


def _sqlite(records: list[dict[str, Any]], columns: list[str]) -> sqlite3.Connection:
    """The loans in an in-memory SQLite table, each value stored as it is (no column types:
    numbers stay numbers, text stays text), ``id`` the record's index."""
    con = sqlite3.connect(":memory:")
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con.execute(f"CREATE TABLE loans (id INTEGER PRIMARY KEY, {quoted})")
    marks = ", ".join("?" * (len(columns) + 1))
    con.executemany(
        f"INSERT INTO loans VALUES ({marks})",  # noqa: S608 (placeholders only)
        ([i, *(r[c] for c in columns)] for i, r in enumerate(records)),
    )
    return con


def _sql_scores(
    model: LoadedModel, records: list[dict[str, Any]], *, probability: bool = True
) -> dict[int, tuple[int | None, float | None]]:
    """Per record, the exported SQL's score and (with ``probability``) PD, run in SQLite."""
    assert model.scorecard is not None
    score = score_sql(model.scorecard, model.schema)
    pd_sql = probability_sql(model.scorecard, model.schema) if probability else "NULL"
    con = _sqlite(records, list(model.schema.feature_names))
    query = f"SELECT id, ({score}), ({pd_sql}) FROM loans"  # noqa: S608 (the export under test)
    return {i: (s, p) for i, s, p in con.execute(query)}


def _edge_values(scorecard: Scorecard) -> dict[str, list[float]]:
    """Per numeric attribute, each edge and the double just below it."""
    return {
        c.name: [v for e in c.edges for v in (e, math.nextafter(e, -math.inf))]
        for c in scorecard.characteristics
        if c.type == "numeric"
    }


def _perturbed(model: LoadedModel, rows: int, seed: int) -> list[dict[str, Any]]:
    """``rows`` public-dataset loans drawn with replacement (renamed to the variant schema),
    a share of them changed into what a database may hold: missing values (NULL, blank and
    whitespace text), special codes (as numbers and as text), unseen categories, categories in
    other cases and padded with Unicode spaces, numbers as text, values on and just below
    every edge, and loans the scorer refuses (impossible values, text that is not a number,
    infinity, a fractional age, no age, a boolean that is neither)."""
    rng = np.random.default_rng(seed)
    raw = (
        pd.read_csv(REAL_CSV).drop(columns=["loan_status"]).rename(columns={"loan_intent": INTENT})
    )
    raw = raw.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    raw[INTENT] = raw[INTENT].replace({"HOMEIMPROVEMENT": QUOTED.lower()})
    raw["cb_person_default_on_file"] = raw["cb_person_default_on_file"].map({"Y": "yes", "N": 0})
    records = raw.astype(object).where(raw.notna(), None).to_dict("records")
    assert model.scorecard is not None
    edges = _edge_values(model.scorecard)
    changes: dict[str, list[Any]] = {
        "person_emp_length": [None, "", "  ", -1, "-1", " 999 ", 999.0, " 4 ", "1e1"],
        "person_home_ownership": [
            *(None, "\u00a0", "unk", " Unk ", "rent", " Mortgage\u3000"),
            *("CASTLE", "\u00a0own\u2003", 7),
        ],
        INTENT: [None, "travel", "xna", f" {QUOTED.lower()} ", "peR\u017fonal", MARKUP.lower()],
        "loan_grade": [None, " b ", "z", "\u3000g"],
        "loan_int_rate": [None, "", "12.5", 150.0, -1, "N"],
        "person_income": ["  ", "59000", " 1e5 ", "12x", math.inf],
        "cb_person_default_on_file": [None, "", "TRUE", " n ", 1, "maybe", 1.0],
        "person_age": [None, 22.5, "31", 200],
        "loan_percent_income": [None, "0.25", 0.0],
    }
    for name, values in changes.items():
        for i in np.flatnonzero(rng.random(rows) < 0.02):
            records[i][name] = values[int(rng.integers(len(values)))]
    for name, values in edges.items():
        for i in np.flatnonzero(rng.random(rows) < 0.02):
            records[i][name] = values[int(rng.integers(len(values)))]
    return records


@pytest.mark.slow
def test_the_sql_scores_100_000_loans_exactly_as_the_served_scorer(variant: LoadedModel) -> None:
    records = _perturbed(variant, 100_000, seed=28)
    served = Scorer(variant).score_records(records, on_error="skip")
    sql = _sql_scores(variant, records, probability=False)  # the PD: the tests below
    assert len(sql) == len(records)
    assert len(served.results) > 90_000
    for result in served.results:
        assert sql[result.record][0] == result.score, records[result.record]
    refused = {r.record for r in served.rejected}
    assert refused, "the loans include ones the scorer refuses"
    assert refused == {i for i, (score, _) in sql.items() if score is None}


def test_the_sql_scores_the_trained_scorecard_as_served(registry: ModelRegistry) -> None:
    model = registry.load(NAME, 2)
    records = _perturbed(model, 3_000, seed=1)
    for record in records:  # the built-in schema: no variant names or types
        record["loan_intent"] = record.pop(INTENT)
        record["cb_person_default_on_file"] = "Y" if record["cb_person_default_on_file"] else "n"
    served = Scorer(model).score_records(records, on_error="skip")
    sql = _sql_scores(model, records)
    assert len(served.results) > 2_500
    for result in served.results:
        assert sql[result.record] == (result.score, result.probability), records[result.record]
    assert {r.record for r in served.rejected} == {i for i, (s, _) in sql.items() if s is None}


def test_a_quote_in_a_name_or_category_survives_the_sql(variant: LoadedModel) -> None:
    assert variant.scorecard is not None
    sql = score_sql(variant.scorecard, variant.schema)
    assert '"loan\'s ""intent"""' in sql
    assert "'HOME''IMPROVEMENT'" in sql
    example = variant.schema.example_record()
    records = [
        {**example, INTENT: intent}
        for intent in (QUOTED, QUOTED.lower(), "HOME'IMPROVEMENT' OR 1=1 --", "HOMEIMPROVEMENT")
    ]
    served = Scorer(variant).score_records(records)
    got = _sql_scores(variant, records)
    assert [got[r.record] for r in served.results] == [
        (r.score, r.probability) for r in served.results
    ]
    quoted = variant.scorecard.by_name[INTENT]
    bin_of = quoted.index_of(QUOTED)
    assert quoted.bins[bin_of].categories == [QUOTED]  # a bin of its own: its points differ
    assert served.results[0].score != served.results[2].score


def test_a_name_with_a_control_character_is_refused(variant: LoadedModel) -> None:
    assert variant.scorecard is not None
    broken = variant.scorecard.model_copy(
        update={
            "characteristics": [
                c.model_copy(update={"name": "line\nbreak"}) if i == 0 else c
                for i, c in enumerate(variant.scorecard.characteristics)
            ]
        }
    )
    with pytest.raises(InvalidInput, match="control character"):
        score_sql(broken, variant.schema)


def test_the_csv_holds_every_bin_and_reads_back(variant: LoadedModel) -> None:
    card = variant.scorecard
    assert card is not None
    rows = list(csv.DictReader(points_csv(card).splitlines()))
    assert rows[0]["kind"] == "base"
    assert int(rows[0]["points"]) == card.base_points
    expected = [(c.name, b) for c in card.characteristics for b in c.bins]
    assert len(rows) - 1 == len(expected)
    for row, (name, b) in zip(rows[1:], expected, strict=True):
        assert row["attribute"] == name
        assert (row["bin"], row["kind"]) == (b.label, b.kind)
        assert (float(row["lower"]) if row["lower"] else None) == b.lower
        assert (float(row["upper"]) if row["upper"] else None) == b.upper
        assert (json.loads(row["categories"]) if row["categories"] else []) == b.categories
        assert row["special_code"] == ("" if b.code is None else str(b.code))
        assert (int(row["count"]), int(row["events"])) == (b.count, b.events)
        assert float(row["woe"]) == b.woe
        assert int(row["points"]) == b.points
    assert sum(1 for r in rows if r["kind"] == "special") == 2


def test_the_html_page_escapes_every_name_and_label(variant: LoadedModel) -> None:
    assert variant.scorecard is not None
    page = points_html(variant, variant.scorecard)
    assert "<script" not in page.lower()
    assert "&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt;" in page
    assert "loan&#x27;s &quot;intent&quot;" in page
    assert page.count("<table>") == len(variant.scorecard.characteristics)
    assert "http" not in page  # standalone: nothing fetched


def test_the_cli_writes_the_points_table_and_sql(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    args = ["models", "export", f"{NAME}@2", str(out), "--format", "scorecard"]
    done = CliRunner().invoke(app, [*args, "--storage", str(root)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [
        "points.csv",
        "points.html",
        "probability.sql",
        "score.sql",
    ]
    sql = (out / "score.sql").read_text(encoding="utf-8")
    model = ModelRegistry(FsspecStorage(str(root)), "models").load(NAME, 2)
    example = model.schema.example_record()
    columns = list(model.schema.feature_names)
    con = _sqlite([example], columns)
    (score,) = con.execute(f"SELECT ({sql}) FROM loans").fetchone()  # noqa: S608 (under test)
    assert score == Scorer(model).score_record(example).score
    again = CliRunner().invoke(app, [*args, "--storage", str(root)])
    assert again.exit_code != 0
    assert "not an empty directory" in again.output


def test_an_xgboost_version_is_refused_naming_its_kind(
    root: Path, registry: ModelRegistry, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    args = ["models", "export", f"{NAME}@1", str(out), "--format", "scorecard"]
    done = CliRunner().invoke(app, [*args, "--storage", str(root)], env={"COLUMNS": "240"})
    assert done.exit_code != 0
    assert "is of kind xgboost" in done.output
    assert "needs a version of kind scorecard" in done.output
    assert not out.exists()
    with pytest.raises(InvalidInput, match="is of kind xgboost") as caught:
        export_scorecard(registry, NAME, "production", out)
    assert caught.value.details == {"kind": "xgboost"}
