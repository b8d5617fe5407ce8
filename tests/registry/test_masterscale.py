"""The rating master scale: what makes one, the grade of a PD, and a bank's scale file."""

from __future__ import annotations

import bisect
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loanrisk.errors import InvalidInput
from loanrisk.registry.masterscale import (
    DEFAULT_SCALE,
    MAX_GRADES,
    Grade,
    MasterScale,
    parse_master_scale,
    scale_of,
)

#: Probabilities of default, the boundaries themselves included.
PDS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def scales(draw: st.DrawFn) -> MasterScale:
    """A valid scale: 1 to 30 grades over sorted distinct inner boundaries in (0, 1)."""
    inner = draw(
        st.lists(
            st.floats(min_value=1e-9, max_value=1 - 1e-9, allow_nan=False),
            max_size=29,
            unique=True,
        )
    )
    edges = [0.0, *sorted(inner), 1.0]
    names = draw(
        st.lists(
            st.text(alphabet="ABCDEFGHIJ+-0123456789", min_size=1, max_size=6),
            min_size=len(edges) - 1,
            max_size=len(edges) - 1,
            unique=True,
        )
    )
    grades = [
        Grade(name=n, lower=lo, upper=hi)
        for n, (lo, hi) in zip(names, itertools.pairwise(edges), strict=True)
    ]
    return MasterScale(grades=tuple(grades))


@given(scales(), st.lists(PDS, min_size=1, max_size=50))
def test_every_pd_has_exactly_one_grade_and_vector_and_scalar_agree(
    scale: MasterScale, pds: list[float]
) -> None:
    index = scale.grade_index(np.array(pds))
    names = scale.grades_of(np.array(pds))
    for pd_, i, name in zip(pds, index, names, strict=True):
        holding = [
            g.name
            for k, g in enumerate(scale.grades)
            if g.lower <= pd_ < g.upper or (k == len(scale.grades) - 1 and pd_ == g.upper)
        ]
        assert holding == [scale.grade_of(pd_)] == [name] == [scale.grades[i].name]


@given(scales(), PDS, PDS)
def test_the_grade_never_falls_as_the_pd_rises(scale: MasterScale, a: float, b: float) -> None:
    low, high = sorted((a, b))
    position = {name: i for i, name in enumerate(scale.names)}
    assert position[scale.grade_of(low)] <= position[scale.grade_of(high)]


@given(scales())
def test_a_scale_round_trips_through_its_stored_json(scale: MasterScale) -> None:
    again = MasterScale.model_validate_json(scale.to_json())
    assert again == scale
    assert again.grade_of(0.5) == scale.grade_of(0.5)


@given(scales(), st.data())
def test_a_scale_with_a_gap_or_an_overlap_is_refused_naming_the_row(
    scale: MasterScale, data: st.DataObject
) -> None:
    if len(scale.grades) < 2:
        return
    row = data.draw(st.integers(min_value=2, max_value=len(scale.grades)))
    grades = list(scale.grades)
    before, this = grades[row - 2], grades[row - 1]
    moved = data.draw(
        st.floats(min_value=before.lower, max_value=this.upper, exclude_max=True).filter(
            lambda x: x != before.upper
        )
    )
    grades[row - 1] = this.model_copy(update={"lower": moved})
    with pytest.raises(InvalidInput, match=f"row {row} ") as refused:
        scale_of(grades)
    assert refused.value.details == {"row": row, "field": "lower"}
    with pytest.raises(ValidationError, match=f"row {row} "):
        MasterScale(grades=tuple(grades))


@given(scales(), st.data())
def test_a_scale_with_a_name_twice_is_refused(scale: MasterScale, data: st.DataObject) -> None:
    if len(scale.grades) < 2:
        return
    first, second = sorted(
        data.draw(
            st.lists(st.sampled_from(range(len(scale.grades))), min_size=2, max_size=2, unique=True)
        )
    )
    grades = list(scale.grades)
    grades[second] = grades[second].model_copy(update={"name": grades[first].name})
    with pytest.raises(InvalidInput, match=f"the name of row {first + 1} too") as refused:
        scale_of(grades)
    assert refused.value.details == {"row": second + 1, "field": "name"}


@pytest.mark.parametrize(
    ("edges", "row", "field"),
    [
        ((0.1, 0.5, 1.0), 1, "lower"),  # does not start at 0
        ((0.0, 0.5, 0.9), 2, "upper"),  # does not reach 1
        ((0.0, 0.5, 0.5, 1.0), 2, "upper"),  # an empty grade
        ((0.0, 0.7, 0.4, 1.0), 2, "upper"),  # decreasing
    ],
)
def test_a_scale_must_cover_zero_to_one_increasing(
    edges: tuple[float, ...], row: int, field: str
) -> None:
    grades = [
        Grade(name=f"G{i}", lower=lo, upper=hi)
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]
    with pytest.raises(InvalidInput, match=f"row {row} .*{field}") as refused:
        scale_of(grades)
    assert refused.value.details == {"row": row, "field": field}


def test_a_pd_outside_zero_to_one_has_no_grade() -> None:
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(InvalidInput, match="probability of default"):
            DEFAULT_SCALE.grade_of(bad)
        with pytest.raises(InvalidInput, match=r"in \[0, 1\]"):
            DEFAULT_SCALE.grade_index(np.array([0.2, bad]))


def test_the_default_scale_is_the_pillar_3_cr6_pd_ranges() -> None:
    """BCBS revised Pillar 3 (2015) template CR6 with the EU CR6 sub-ranges: 0.10%, 0.15%,
    0.25%, 0.50%, 0.75%, 1.75%, 2.5%, 5%, 10%, 20%, 30%."""
    inner = [g.upper for g in DEFAULT_SCALE.grades[:-1]]
    assert inner == [0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.0175, 0.025, 0.05, 0.1, 0.2, 0.3]
    assert DEFAULT_SCALE.names == tuple(str(i) for i in range(1, 13))
    # A boundary belongs to the grade above it ("0.15 to <0.25"), and PD 1 to the last.
    assert [DEFAULT_SCALE.grade_of(p) for p in (0.0, 0.0015, 0.00149, 0.3, 1.0)] == [
        "1",
        "3",
        "2",
        "12",
        "12",
    ]
    assert bisect.bisect_right(inner, 0.3) == 11


# -- a bank's scale file ----------------------------------------------------------------

CSV = b"name,lower,upper,description\nA,0,0.5%,prime\nB,0.5%,0.05,near prime\nC,5%,100%,sub\n"
YAML = b"""name: retail scale
grades:
  - {name: A, lower: 0, upper: 0.5%}
  - {name: B, lower: 0.5%, upper: 0.05}
  - {name: C, lower: 5%, upper: 1}
"""


def test_a_scale_file_is_read_from_csv_or_yaml_alike() -> None:
    from_csv = parse_master_scale(CSV, source="bank.csv")
    from_yaml = parse_master_scale(YAML, source="bank.yaml")
    assert from_csv.grades == from_yaml.grades
    assert [(g.name, g.lower, g.upper) for g in from_csv.grades] == [
        ("A", 0.0, 0.005),
        ("B", 0.005, 0.05),
        ("C", 0.05, 1.0),
    ]
    assert (from_csv.name, from_yaml.name) == ("bank.csv", "retail scale")
    as_list = b"- {name: A, lower: 0, upper: 0.5%}\n- {name: B, lower: 0.5%, upper: 1}\n"
    assert parse_master_scale(as_list, source="scale").names == ("A", "B")  # sniffed: YAML
    assert parse_master_scale(b"\xef\xbb\xbfName, Lower ,UPPER\nA,0,1\n").names == ("A",)


@pytest.mark.parametrize(
    ("data", "source", "message", "details"),
    [
        (b"name,lower\nA,0\n", "s.csv", "no upper column", {"field": "upper"}),
        (
            b"name,lower,upper\nA,0,0.1\nB,0.1,lots\n",
            "s.csv",
            r"row 2 \(grade 'B'\), upper: 'lots' is not a PD",
            {"row": 2, "field": "upper"},
        ),
        (
            b"name,lower,upper\nA,0,0.1\n,0.1,1\n",
            "s.csv",
            "row 2, name: missing",
            {"row": 2, "field": "name"},
        ),
        (
            b"name,lower,upper\nA,0,0.1\nB,0.1,150%\n",
            "s.csv",
            "row 2 .*upper: '150%' is not a PD between 0 and 1",
            {"row": 2, "field": "upper"},
        ),
        (
            b"name,lower,upper\nA,0,0.1\nB,0.2,1\n",
            "s.csv",
            r"row 2 \(grade 'B'\), lower: 0.2, where row 1 ends at 0.1",
            {"row": 2, "field": "lower"},
        ),
        (
            b"name,lower,upper\nA,0,0.1\nA,0.1,1\n",
            "s.csv",
            "row 2 .*name: the name of row 1 too",
            {"row": 2, "field": "name"},
        ),
        (b"name,lower,upper\n", "s.csv", "no grades", {"field": "grades"}),
        (
            b"grades:\n  - {name: A, lower: 0}\n",
            "s.yaml",
            "row 1 .*upper: missing",
            {"row": 1, "field": "upper"},
        ),
        (b"grades:\n  - [A, 0, 1]\n", "s.yaml", "row 1: a grade", {"row": 1}),
        (b"grades: 3\n", "s.yaml", "a list of grades", {"field": "grades"}),
        (b"grades: [\n", "s.yaml", "not YAML", {}),
        (b"\xff\xfe", "s.csv", "not UTF-8", {}),
        (
            b"grades:\n  - {name: A, lower: 0, upper: true}\n",
            "s.yml",
            "row 1 .*upper: a PD is needed",
            {"row": 1, "field": "upper"},
        ),
    ],
)
def test_a_bad_scale_file_is_refused_naming_the_row_and_field(
    data: bytes, source: str, message: str, details: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput, match=f"^{source}: .*{message}") as refused:
        parse_master_scale(data, source=source)
    assert refused.value.details == details


def test_a_scale_file_is_bounded() -> None:
    rows = b"".join(b"G%d,%f,%f\n" % (i, i / 200, (i + 1) / 200) for i in range(MAX_GRADES + 1))
    with pytest.raises(InvalidInput, match=f"at most {MAX_GRADES}"):
        parse_master_scale(b"name,lower,upper\n" + rows, source="big.csv")
    with pytest.raises(InvalidInput, match="bytes: a scale file is at most"):
        parse_master_scale(b"x" * 300_000, source="huge.csv")
