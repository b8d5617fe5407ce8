"""A scorecard as SQL: one expression that scores a loan in a database, as the scorer does.

:func:`score_sql` writes the score (whole points) of a scorecard version as one SQL
expression over a table whose columns are the schema's attribute names: the base points
plus one ``CASE`` per attribute. :func:`probability_sql` wraps it in a ``CASE`` that maps
each score the scorecard can reach to the PD the scorer serves for it
(``scaling.probability_of(score)``, written to 17 significant digits).

Each ``CASE`` reads a raw value the way the served scorer cleans it
(:mod:`loanrisk.inference.records`) and bins it the way the scorecard does
(:meth:`loanrisk.registry.scorecard.Characteristic.index_of`):

* ``NULL``, or text that is blank once trimmed, is missing: the missing bin (``NULL`` when
  the schema refuses a missing value).
* Trimming strips the whitespace Python's ``str.strip`` strips, less the control characters
  a loan's text may not hold (``TRIM(x, chars)``, as SQLite spells it: the SQL is tested on
  SQLite only).
* Numbers: text holding anything but digits, signs, points, exponent letters and whitespace
  is ``NULL`` (not a number: the scorer refuses it); the rest is ``CAST(x AS DOUBLE
  PRECISION)``; a declared special code first (its own bin where
  the scorecard has one, else the missing bin); a value outside the schema's valid range, or
  not whole for an integer column, is ``NULL`` (the scorer refuses it); then the regular bins,
  ``[lower, upper)``: ``x < edge`` in ascending order, as ``bisect_right`` places a value on an
  edge (in the bin above it).
* Booleans: the schema's true and false words, trimmed and lower-cased (``1``/``0`` and
  ``true``/``false`` included); anything else is ``NULL``.
* Categories: trimmed and upper-cased, then matched against each bin's categories; a special
  code as above; an unknown category as the column's ``unknown`` policy says (``refuse``:
  ``NULL``; otherwise the bin the scorecard gives it, the missing bin). SQLite's ``UPPER``
  folds ASCII letters only, so the letters Python upper-cases into a category's letters
  (dotless i to ``I``, long s to ``S``, ``é`` to ``É`` where a category has ``É``) are replaced
  first.

A ``NULL`` score is a loan the scorer would refuse. Not detected (the scorer refuses them;
the SQL scores or mis-reads them): text of number characters that is not a number (``1-2``,
``e``: the database's cast reads it), control characters, text over 10,000 characters, a
category stored as a non-whole float. Numbers are read as the database holds them: keep them numbers
(SQLite's text-to-number conversion is not correctly rounded for every decimal).

Identifiers are double-quoted and literals single-quoted, their quotes doubled; a name,
category or code holding a control character is refused (it cannot be written safely).
Number literals are exact: the shortest decimal where it is the double's exact value, else
17 significant digits, which SQLite 3.40 (not correctly rounded for shorter ones) reads back
exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from functools import cache

from loanrisk.errors import InvalidInput
from loanrisk.registry.scorecard import Characteristic, Scorecard
from loanrisk.schema import LoanSchema
from loanrisk.schema.model import FALSE_TOKENS, TRUE_TOKENS, Column
from loanrisk.schema.text import text_problem

#: Control characters (C0, DEL, C1): never inside SQL text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f]")
#: ... nor in a comment, with the line separators (an editor may end a line there).
_NOT_IN_COMMENT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: What the scorer's ``str.strip()`` strips from text a loan may hold.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and text_problem(c) is None)
#: The characters of a decimal number as the scorer reads one (``loanrisk.schema.text``).
NUMBER_CHARACTERS = "0123456789+-.eE"
_INDENT = "  "


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (``"`` doubled); InvalidInput for control chars."""
    if _UNSAFE.search(name):
        raise InvalidInput(f"{name!r}: a control character cannot be written in SQL")
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    """``value`` as a SQL string literal (``'`` doubled); InvalidInput for control chars.
    (The whitespace literal :data:`WHITESPACE` holds none of them.)"""
    if _UNSAFE.search(value):
        raise InvalidInput(f"{value!r}: a control character cannot be written in SQL")
    return "'" + value.replace("'", "''") + "'"


def number(value: float) -> str:
    """A finite float as a SQL literal that reads back as the same double."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{value!r} cannot be written as a SQL number")
    shortest = repr(value)
    if Decimal(shortest) == Decimal(value):  # exact (22.5, 35000.0): any parser reads it
        return shortest
    return format(value, ".17g")


def _comment(words: str) -> str:
    return "-- " + _NOT_IN_COMMENT.sub("?", words)


@cache
def _upper_table() -> tuple[tuple[str, str], ...]:
    """Every non-ASCII character Python upper-cases, with its upper case."""
    return tuple(
        (c, c.upper())
        for c in map(chr, range(0x80, 0x110000))
        if not 0xD800 <= ord(c) <= 0xDFFF and c.upper() != c
    )


def _folds(alphabet: set[str]) -> list[tuple[str, str]]:
    """The non-ASCII characters whose upper case is made of ``alphabet``'s characters."""
    return [(c, u) for c, u in _upper_table() if all(ch in alphabet for ch in u)]


def _trimmed(column: str) -> str:
    return f"TRIM(CAST({column} AS VARCHAR), {text(WHITESPACE)})"


def _blank(column: str) -> str:
    return f"COALESCE({_trimmed(column)}, '') = ''"


def _points(c: Characteristic, index: int | None) -> str:
    return "NULL" if index is None else str(c.bins[index].points)


def _label(c: Characteristic, index: int | None) -> str:
    return "refused by the scorer" if index is None else c.bins[index].label


def _grouped(outcomes: Iterable[tuple[str, int | None]]) -> dict[int | None, list[str]]:
    """Literals grouped by outcome (a bin, or None: refused), bins in order, refused last."""
    groups: dict[int | None, list[str]] = {}
    for literal, outcome in outcomes:
        groups.setdefault(outcome, []).append(literal)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def _missing(c: Characteristic, column: Column) -> int | None:
    return None if column.missing == "refuse" else c.missing_index


def _check_numeric(c: Characteristic) -> None:
    ranges = [i for i, b in enumerate(c.bins) if b.kind == "range"]
    if ranges != list(range(len(c.edges) + 1)):
        raise InvalidInput(
            f"{c.name}: its bins are not {len(c.edges) + 1} ranges over its edges, first",
            details={"attribute": c.name},
        )


def _numeric(c: Characteristic, column: Column, name: str) -> list[str]:
    _check_numeric(c)
    value = f"CAST({name} AS DOUBLE PRECISION)"
    lines = [
        f"WHEN {_blank(name)} THEN {_points(c, _missing(c, column))}  {_comment('missing')}",
        f"WHEN TRIM(CAST({name} AS VARCHAR), {text(NUMBER_CHARACTERS + WHITESPACE)}) <> '' "
        f"THEN NULL  {_comment('not a number: refused')}",
    ]
    codes = sorted(float(v) for v in column.special_missing)
    specials = _grouped((number(v), c.index_of(None, v)) for v in codes)
    for index, literals in specials.items():
        lines.append(
            f"WHEN {value} IN ({', '.join(literals)}) THEN {_points(c, index)}  "
            f"{_comment('special code: ' + _label(c, index))}"
        )
    valid = column.valid_range
    bounds = [f"{value} < {number(valid.low)}"] if valid.min is not None else []
    bounds += [f"{value} > {number(valid.high)}"] if valid.max is not None else []
    if bounds:
        lines.append(f"WHEN {' OR '.join(bounds)} THEN NULL  {_comment('impossible: refused')}")
    if column.type == "integer":
        lines.append(
            f"WHEN CAST({value} AS BIGINT) <> {value} THEN NULL  "
            f"{_comment('not a whole number: refused')}"
        )
    for i, edge in enumerate(c.edges):
        lines.append(
            f"WHEN {value} < {number(edge)} THEN {_points(c, i)}  {_comment(_label(c, i))}"
        )
    last = len(c.edges)
    lines.append(f"ELSE {_points(c, last)}  {_comment(_label(c, last))}")
    return lines


def _boolean(c: Characteristic, column: Column, name: str) -> list[str]:
    _check_numeric(c)
    token = f"LOWER({_trimmed(name)})"
    words = {True: TRUE_TOKENS, False: FALSE_TOKENS}
    lines = [f"WHEN {_blank(name)} THEN {_points(c, _missing(c, column))}  {_comment('missing')}"]
    for truth, tokens in words.items():
        index = c.index_of(1.0 if truth else 0.0)
        listed = ", ".join(text(t) for t in tokens)
        lines.append(
            f"WHEN {token} IN ({listed}) THEN {_points(c, index)}  "
            f"{_comment(f'{str(truth).lower()}: {_label(c, index)}')}"
        )
    lines.append(f"ELSE NULL  {_comment('not true/false: refused')}")
    return lines


def _category_outcome(c: Characteristic, column: Column, value: str) -> int | None:
    """The bin the scorer gives the cleaned (trimmed, upper-case) category ``value``."""
    if value in column.special_missing:
        return c.index_of(None, value)
    if value in (column.categories or ()):
        return c.index_of(value)
    if column.unknown == "refuse":
        return None
    return c.index_of(None if column.unknown == "missing" else value)


def _categorical(c: Characteristic, column: Column, name: str) -> list[str]:
    specials = {str(v) for v in column.special_missing}
    domain = sorted({*(column.categories or ()), *specials, *c.category_index})
    key = _trimmed(name)
    for source, target in _folds({ch for value in domain for ch in value}):
        key = f"REPLACE({key}, {text(source)}, {text(target)})"
    key = f"UPPER({key})"
    lines = [f"WHEN {_blank(name)} THEN {_points(c, _missing(c, column))}  {_comment('missing')}"]
    groups = _grouped((v, _category_outcome(c, column, v)) for v in domain)
    for index, values in groups.items():
        listed = ", ".join(text(v) for v in values)
        lines.append(
            f"WHEN {key} IN ({listed}) THEN {_points(c, index)}  {_comment(_label(c, index))}"
        )
    unknown = _category_outcome(c, column, "\x00 unknown")
    lines.append(
        f"ELSE {_points(c, unknown)}  {_comment('unknown category: ' + _label(c, unknown))}"
    )
    return lines


def _case(c: Characteristic, schema: LoanSchema) -> str:
    name = identifier(c.name)
    try:
        column = schema.column(c.name)
    except KeyError:
        raise InvalidInput(
            f"{c.name}: the scorecard's attribute is not in schema {schema.name!r}",
            details={"attribute": c.name},
        ) from None
    if column.type == "boolean":
        lines = _boolean(c, column, name)
    elif c.type == "numeric":
        lines = _numeric(c, column, name)
    else:
        lines = _categorical(c, column, name)
    body = "\n".join(f"{_INDENT * 2}{line}" for line in lines)
    return f"+ {_comment(f'{c.name}: {column.label_text}')}\n{_INDENT}CASE\n{body}\n{_INDENT}END"


def _sums(scorecard: Scorecard) -> tuple[int, int]:
    """The lowest and highest sum of the points table (base points included)."""
    characteristics = scorecard.characteristics
    low = sum(min(b.points for b in c.bins) for c in characteristics)
    high = sum(max(b.points for b in c.bins) for c in characteristics)
    return scorecard.base_points + low, scorecard.base_points + high


def score_range(scorecard: Scorecard) -> tuple[int, int]:
    """The lowest and highest score the scorecard can serve (its sums, clipped as served)."""
    low, high = _sums(scorecard)
    served_low, served_high = scorecard.score_range
    return max(low, served_low), min(high, served_high)


def score_sql(scorecard: Scorecard, schema: LoanSchema) -> str:
    """The score of a loan as one SQL expression: the base points plus one ``CASE`` per
    attribute (the module states how each reads a raw value), clipped to the range the
    scorer serves where the sums can leave it. ``NULL`` for a loan the scorer refuses.
    InvalidInput when an attribute is not in ``schema`` or a name cannot be written."""
    cases = "\n".join(_case(c, schema) for c in scorecard.characteristics)
    total = f"{_INDENT}{scorecard.base_points}  {_comment('base points')}\n{cases}"
    low, high = _sums(scorecard)
    served_low, served_high = scorecard.score_range
    if served_low <= low and high <= served_high:
        return total
    return (
        f"CASE WHEN (\n{total}\n) < {served_low} THEN {served_low}\nWHEN (\n{total}\n) > "
        f"{served_high} THEN {served_high}\nELSE (\n{total}\n) END"
    )


def probability_sql(scorecard: Scorecard, schema: LoanSchema) -> str:
    """The PD the scorer serves for a loan, as one SQL expression: each reachable score
    mapped to ``scaling.probability_of(score)`` (NULL where the score is NULL)."""
    low, high = score_range(scorecard)
    arms = "\n".join(
        f"{_INDENT}WHEN {s} THEN {number(scorecard.scaling.probability_of(s))}"
        for s in range(low, high + 1)
    )
    return f"CASE (\n{score_sql(scorecard, schema)}\n)\n{arms}\nEND"
