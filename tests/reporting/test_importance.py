"""Importance per attribute: one-hot inputs summed to their attribute and labelled by the
schema, for gain of any version (per model input, with or without a schema, or per
attribute already), and the chart that shows it with long names and many attributes."""

from __future__ import annotations

import html
import re

import pytest

from loanrisk.reporting.charts import importance
from loanrisk.reporting.importance import AttributeGain, attribute_of, by_attribute, top_and_others
from loanrisk.schema import builtin_schema, parse_schema
from tests.reporting.long_names import CATEGORIES, long_schema

#: Gain as the built-in schema's model reports it: one input per category of a one-hot column.
BUILTIN_GAIN = {
    "person_income": 40.0,
    "loan_grade": 25.0,
    "person_home_ownership=RENT": 10.0,
    "person_home_ownership=OWN": 5.0,
    "person_home_ownership=MORTGAGE": 3.0,
    "loan_intent=MEDICAL": 2.0,
}


def test_one_hot_inputs_are_summed_to_their_attribute_and_labelled_by_the_schema() -> None:
    ranked = by_attribute(BUILTIN_GAIN, schema=builtin_schema())
    assert ranked == [
        AttributeGain("person_income", "Income", 40.0, 1),
        AttributeGain("loan_grade", "Loan grade", 25.0, 1),
        AttributeGain("person_home_ownership", "Home ownership", 18.0, 3),
        AttributeGain("loan_intent", "Loan purpose", 2.0, 1),
    ]


def test_an_older_versions_gain_without_a_schema_is_summed_by_the_name_before_the_equals() -> None:
    ranked = by_attribute(BUILTIN_GAIN)
    assert [(a.name, a.label, a.gain, a.inputs) for a in ranked][2] == (
        "person_home_ownership",
        "person_home_ownership",
        18.0,
        3,
    )
    assert sum(a.gain for a in ranked) == sum(BUILTIN_GAIN.values())


def test_gain_already_per_attribute_passes_unchanged() -> None:
    once = {a.name: a.gain for a in by_attribute(BUILTIN_GAIN)}
    assert {a.name: a.gain for a in by_attribute(once)} == once


def test_a_column_name_holding_an_equals_sign_is_still_found() -> None:
    assert attribute_of("a=b=c", {"a", "a=b"}) == "a=b"
    assert attribute_of("a=b=c", {"a"}) == "a"
    assert attribute_of("a=b=c") == "a"
    assert attribute_of("a=b", {"a=b"}) == "a=b"


def test_two_attributes_with_one_title_are_told_apart_by_their_names() -> None:
    schema = parse_schema("""
format: loanrisk.schema
version: 1
name: twins
columns:
  - {name: income_applicant, type: numeric, title: Income}
  - {name: income_household, type: numeric, title: Income}
  - {name: bad, role: label, type: categorical, positive: ["1"], negative: ["0"]}
""")
    labels = [
        a.label for a in by_attribute({"income_applicant": 2, "income_household": 1}, schema=schema)
    ]
    assert labels == ["Income (income_applicant)", "Income (income_household)"]


def test_past_the_top_the_rest_is_one_item() -> None:
    ranked = [AttributeGain(f"a{i}", f"A{i}", 10.0 - i, 1) for i in range(10)]
    assert top_and_others(ranked, 10) == (ranked, None)
    shown, others = top_and_others(ranked, 7)
    assert shown == ranked[:7]
    assert others == AttributeGain("", "3 other attributes", 3.0 + 2.0 + 1.0, 3)


def long_gain() -> dict[str, float]:
    """Gain of every input of a model of the long-names schema: 60 one-hot inputs."""
    gain: dict[str, float] = {}
    for i, column in enumerate(long_schema().features):
        inputs = [f"{column.name}={c}" for c in CATEGORIES] if column.categories else [column.name]
        for j, name in enumerate(inputs):
            gain[name] = 100.0 / (1 + i) / (1 + j)
    return gain


def labels_of(svg: str) -> list[tuple[list[str], str]]:
    """Each label of the bars' axis: its lines and its title."""
    found = re.findall(
        r'<text x="-5" [^>]*>((?:<tspan[^>]*>[^<]*</tspan>)+)</text>'
        r"<title>([^<]*)</title>",
        svg,
    )
    return [
        ([html.unescape(t) for t in re.findall(r">([^<]*)</tspan>", spans)], html.unescape(title))
        for spans, title in found
    ]


def test_the_chart_shows_the_top_attributes_by_title_and_the_others_in_one_bar() -> None:
    gain = long_gain()
    assert len(gain) == 60 + 17
    schema = long_schema()
    chart = importance(gain, schema=schema, top=15)
    assert chart is not None
    assert chart.title == "Top 15 of 32 attributes by gain"
    ranked = by_attribute(gain, schema=schema)
    total = sum(gain.values())
    assert [r[0] for r in chart.rows] == [a.label for a in ranked]  # the table: every one
    inputs = {c.label_text: "4" if c.categories else "1" for c in schema.features}
    assert {r[0]: r[1] for r in chart.rows} == inputs
    assert chart.rows[0][3] == f"{ranked[0].gain / total:.1%}"
    labels = labels_of(chart.svg)[::-1]  # drawn from the bottom up
    assert [title for _, title in labels][:15] == [a.label for a in ranked[:15]]
    assert labels[15][1].startswith("17 other attributes: " + ranked[15].label)
    assert labels[15][1].endswith(ranked[24].label + ", \u2026")
    assert len(labels) == 16
    for lines, title in labels:
        assert 1 <= len(lines) <= 2 and all(len(line) <= 24 for line in lines), lines
        shown = " ".join(lines)
        assert shown == title or shown.endswith("\u2026") or title.startswith(shown), lines
    assert not re.search("[\ue000-\uf8ff]", chart.svg), "a placeholder was left in the chart"
    assert "<script" not in chart.svg


def test_the_chart_grows_with_its_bars() -> None:
    few = importance({"a": 1.0, "b": 2.0})
    many = importance(long_gain(), top=15)
    assert few is not None and many is not None
    height = re.compile(r'viewBox="0 0 640 (\d+)"')
    few_height, many_height = (int(height.search(c.svg).group(1)) for c in (few, many))  # type: ignore[union-attr]
    assert few_height < 200 < 16 * 30 < many_height
    assert few.title == "2 attributes by gain"


@pytest.mark.parametrize("gain", [{}, {"a": 0.0}])
def test_a_model_without_splits_has_no_chart_or_an_even_one(gain: dict[str, float]) -> None:
    chart = importance(gain)
    assert (chart is None) == (not gain)
