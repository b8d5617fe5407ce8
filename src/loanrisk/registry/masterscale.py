"""A rating master scale: ordered grades, each an interval of the probability of default.

A model version records the scale it was trained with (``master_scale.json``, hashed in its
manifest like its other files); every loan it scores gets the grade its PD falls in. Grade
``i`` holds the PDs in ``[lower_i, upper_i)``; the last grade holds its upper bound too, so
the grades together cover [0, 1] and every PD in it has exactly one grade. The grades are
listed from the lowest PD up, contiguous (each starts where the one before ends).

The default scale (:data:`DEFAULT_SCALE`) is the fixed PD scale of the Pillar 3 template
CR6, "IRB: credit risk exposures by portfolio and PD range" (Basel Committee on Banking
Supervision, *Revised Pillar 3 disclosure requirements*, January 2015), with the finer
sub-ranges the EU's template EU CR6 adds (Commission Implementing Regulation (EU) 2021/637):
twelve grades, ``1`` (PD below 0.10%) to ``12`` (30% and over). Its last row, ``100%
(default)``, is for loans already in default and no scored loan's grade. Versions published
before scales were recorded score with it.

A bank's own scale is read from a CSV or YAML file (:func:`parse_master_scale`): one row per
grade with ``name``, ``lower`` and ``upper``; PDs as fractions (``0.0015``) or percentages
(``0.15%``). Errors name the row (1-based, the grades' order) and the field.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from loanrisk.errors import InvalidInput

if TYPE_CHECKING:  # numpy is loaded when arrays are graded, not with the training request
    import numpy as np

#: Most grades a scale may have (master scales have 10 to 30).
MAX_GRADES = 100
#: Longest grade name: it is written into every scored row and log row.
MAX_GRADE_NAME = 40
#: Largest scale file read (a scale of MAX_GRADES rows is a few kB).
MAX_SCALE_BYTES = 256_000
#: The columns (keys) a scale file's rows have.
FIELDS = ("name", "lower", "upper")


class Grade(BaseModel):
    """One grade: its ``name`` and the PDs it holds, ``[lower, upper)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_GRADE_NAME, description="The grade's name.")
    lower: float = Field(ge=0.0, le=1.0, description="Lowest PD of the grade (included).")
    upper: float = Field(
        ge=0.0, le=1.0, description="PD where the next grade starts (the last grade: 1)."
    )


#: A scale's problem: the row (1-based), the field and the message (which names both).
Problem = tuple[int, str, str]


def scale_problem(grades: Sequence[Grade]) -> Problem | None:
    """The first thing that keeps ``grades`` from being a master scale, as ``(row, field,
    message)`` (the row 1-based, in the grades' order); None when they are one."""
    seen: dict[str, int] = {}
    for row, grade in enumerate(grades, start=1):
        where = f"row {row} (grade {grade.name!r})"
        if not grade.name.strip() or not grade.name.isprintable():
            text = f"printable text of 1 to {MAX_GRADE_NAME} characters"
            return row, "name", f"{where}, name: {text}"
        if grade.name in seen:
            text = f"the name of row {seen[grade.name]} too; names must differ"
            return row, "name", f"{where}, name: {text}"
        seen[grade.name] = row
        if not grade.lower < grade.upper:
            text = f"{grade.upper!r} is not above its lower {grade.lower!r}"
            return row, "upper", f"{where}, upper: {text}"
        if row == 1 and grade.lower != 0.0:
            return row, "lower", f"{where}, lower: {grade.lower!r}; the first grade starts at 0"
        if row > 1 and grade.lower != grades[row - 2].upper:
            text = (
                f"{grade.lower!r}, where row {row - 1} ends at {grades[row - 2].upper!r}; each "
                "grade starts where the one before ends (no gap, no overlap, PDs increasing)"
            )
            return row, "lower", f"{where}, lower: {text}"
    if grades and grades[-1].upper != 1.0:
        last, row = grades[-1], len(grades)
        text = f"{last.upper!r}; the last grade ends at PD 1 (100%)"
        return row, "upper", f"row {row} (grade {last.name!r}), upper: {text}"
    return None


@dataclass(frozen=True, slots=True)
class Grader:
    """A scale's lookup, in plain tuples: what a scorer keeps to grade loans (a pydantic
    model's attribute access would cost more than the bisection)."""

    #: The inner boundaries: each grade's upper bound but the last's.
    edges: tuple[float, ...]
    names: tuple[str, ...]

    def of(self, probability: float) -> str:
        """The grade of one PD (a bisection: well under a microsecond);
        :class:`~loanrisk.errors.InvalidInput` when it is not in [0, 1]."""
        if not 0.0 <= probability <= 1.0:
            raise InvalidInput(f"{probability!r} is not a probability of default in [0, 1]")
        return self.names[bisect.bisect_right(self.edges, probability)]

    def index(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's grade as its 0-based index (int64, the shape of ``probability``; one
        ``searchsorted``); :class:`~loanrisk.errors.InvalidInput` when one is not in [0, 1]
        (NaN included)."""
        import numpy as np

        values = np.asarray(probability)
        if values.size and not bool(((values >= 0.0) & (values <= 1.0)).all()):
            raise InvalidInput("probabilities of default must be in [0, 1]")
        edges = np.array(self.edges, dtype=np.float64)
        index: np.ndarray = np.searchsorted(edges, values, side="right").astype(np.int64)
        return index

    def of_many(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's grade name (an object array the shape of ``probability``)."""
        import numpy as np

        names: np.ndarray = np.array(self.names, dtype=object)[self.index(probability)]
        return names


class MasterScale(BaseModel):
    """Grades from the lowest PD up, covering [0, 1] (see the module's docstring): a loan's
    grade is the one whose ``[lower, upper)`` holds its PD (the last grade's includes 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "custom", min_length=1, max_length=200, description="What the scale is (its source)."
    )
    grades: tuple[Grade, ...] = Field(
        min_length=1,
        max_length=MAX_GRADES,
        description="The grades from the lowest PD up: contiguous, the first from 0, the last "
        "to 1, names unique.",
    )
    _grader: Grader = PrivateAttr(default=Grader((), ("",)))

    @model_validator(mode="after")
    def _is_a_scale(self) -> MasterScale:
        problem = scale_problem(self.grades)
        if problem is not None:
            raise ValueError(problem[2])
        self._grader = Grader(tuple(g.upper for g in self.grades[:-1]), self.names)
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The grades' names, from the lowest PD up."""
        return tuple(g.name for g in self.grades)

    @property
    def grader(self) -> Grader:
        """The scale's lookup (:class:`Grader`)."""
        return self._grader

    def grade_of(self, probability: float) -> str:
        """The grade of one PD; :class:`~loanrisk.errors.InvalidInput` when it is not in
        [0, 1]."""
        return self._grader.of(probability)

    def grade_index(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's grade as its 0-based index in :attr:`grades` (:meth:`Grader.index`)."""
        return self._grader.index(probability)

    def grades_of(self, probability: np.ndarray) -> np.ndarray:
        """Each PD's grade name (an object array the shape of ``probability``)."""
        return self._grader.of_many(probability)

    def to_json(self) -> str:
        """The scale as a version stores it (``master_scale.json``)."""
        return self.model_dump_json(indent=2) + "\n"


def _cr6_scale() -> MasterScale:
    edges = (0.0, 0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.0175, 0.025, 0.05, 0.10, 0.20, 0.30, 1.0)
    return MasterScale(
        name="Pillar 3 CR6 PD ranges (BCBS 2015; EU CR6 sub-ranges, Regulation (EU) 2021/637)",
        grades=tuple(
            Grade(name=str(i), lower=low, upper=high)
            for i, (low, high) in enumerate(itertools.pairwise(edges), start=1)
        ),
    )


#: The default scale: the Pillar 3 CR6 PD ranges (see the module's docstring).
DEFAULT_SCALE = _cr6_scale()


# -- files ------------------------------------------------------------------------------


def _pd(value: object, where: str, field: str) -> float:
    """A PD as a file gives it: a number (a fraction) or text (``0.0015``, ``0.15%``)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(
            f"{where}, {field}: a PD is needed (0.0015 or 0.15%), not {value!r}",
            details={"field": field},
        )
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        percent = text.endswith("%")
        try:
            number = float(text.removesuffix("%").strip())
        except ValueError:
            shown = text[:40]
            raise InvalidInput(
                f"{where}, {field}: {shown!r} is not a PD (0.0015 or 0.15%)",
                details={"field": field},
            ) from None
        number = number / 100.0 if percent else number
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise InvalidInput(
            f"{where}, {field}: {value!r} is not a PD between 0 and 1 (0% and 100%)",
            details={"field": field},
        )
    return number


def _grade(row: int, item: Mapping[str, Any]) -> Grade:
    """Row ``row`` of a scale file as a grade (its fields checked one by one)."""
    name = item.get("name")
    where = f"row {row}" + (f" (grade {str(name)[:MAX_GRADE_NAME]!r})" if name else "")
    for field in FIELDS:
        if item.get(field) is None or str(item.get(field)).strip() == "":
            raise InvalidInput(f"{where}, {field}: missing", details={"row": row, "field": field})
    text = str(name).strip()
    if len(text) > MAX_GRADE_NAME or not text.isprintable():
        raise InvalidInput(
            f"{where}, name: printable text of 1 to {MAX_GRADE_NAME} characters",
            details={"row": row, "field": "name"},
        )
    try:
        lower = _pd(item["lower"], where, "lower")
        upper = _pd(item["upper"], where, "upper")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, details={**exc.details, "row": row}) from None
    return Grade(name=text, lower=lower, upper=upper)


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    missing = [f for f in FIELDS if f not in header]
    if missing:
        raise InvalidInput(
            f"the header names no {', '.join(missing)} column: a scale file has the columns "
            "name, lower, upper",
            details={"field": missing[0]},
        )
    reader.fieldnames = header
    return [dict(row) for row in reader]


def _yaml_rows(text: str) -> tuple[str | None, list[Any]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"not YAML{at}") from None
    name = None
    if isinstance(doc, dict):
        name = str(doc["name"]) if doc.get("name") is not None else None
        doc = doc.get("grades")
    if not isinstance(doc, list):
        raise InvalidInput(
            "a list of grades (name, lower, upper), or a mapping with one under 'grades'",
            details={"field": "grades"},
        )
    return name, doc


def _is_csv(text: str, source: str) -> bool:
    suffix = source.lower().rsplit(".", 1)[-1] if "." in source else ""
    if suffix in ("yaml", "yml", "json"):
        return False
    if suffix == "csv":
        return True
    first = text.lstrip()[:1]
    return first not in ("[", "{", "-") and "grades:" not in text


def parse_master_scale(data: bytes, *, source: str = "master scale") -> MasterScale:
    """A master scale from a file's bytes: CSV (a header with ``name``, ``lower``, ``upper``,
    other columns ignored) or YAML (a list of ``{name, lower, upper}``, or a mapping with
    ``name`` and ``grades``), told apart by ``source``'s suffix (``.csv``, ``.yaml``/``.yml``
    or ``.json``), else by the text. :class:`~loanrisk.errors.InvalidInput` prefixed with
    ``source``, naming the row and field of the first problem (``details``: ``row``,
    ``field``)."""
    try:
        return _parse(data, source)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc.message}", details=exc.details) from None


def _parse(data: bytes, source: str) -> MasterScale:
    if len(data) > MAX_SCALE_BYTES:
        raise InvalidInput(f"{len(data):,} bytes: a scale file is at most {MAX_SCALE_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("not UTF-8 text") from None
    name: str | None = None
    if _is_csv(text, source):
        rows: list[Any] = _csv_rows(text)
    else:
        name, rows = _yaml_rows(text)
    if not rows:
        raise InvalidInput("no grades", details={"field": "grades"})
    if len(rows) > MAX_GRADES:
        raise InvalidInput(f"{len(rows)} grades: at most {MAX_GRADES}", details={"field": "grades"})
    grades = []
    for row, item in enumerate(rows, start=1):
        if not isinstance(item, Mapping):
            raise InvalidInput(
                f"row {row}: a grade (name, lower, upper), not {type(item).__name__}",
                details={"row": row},
            )
        grades.append(_grade(row, item))
    return scale_of(grades, name=name or source)


def scale_of(grades: Iterable[Grade], *, name: str = "custom") -> MasterScale:
    """A scale of ``grades``; :class:`~loanrisk.errors.InvalidInput` naming the row and
    field (``details``: ``row``, ``field``) when they are not one."""
    listed = tuple(grades)
    problem = scale_problem(listed)
    if problem is not None:
        row, field, message = problem
        raise InvalidInput(message, details={"row": row, "field": field})
    return MasterScale(name=name.strip()[:200] or "custom", grades=listed)
