"""Drafting a schema from data: ``loanrisk schema infer FILE.csv``.

The draft is for a person to review, not to trust: each column carries a comment with what
was observed (type evidence, distinct values, missing rate, range) and, where the guess is
weak, a ``REVIEW`` note. Rules, in order, for each column of a sample of the file:

* every present value a number: ``integer`` (all whole) or ``numeric``, with ``valid.min: 0``
  when nothing is negative and the observed range as ``plausible``; all-distinct whole
  numbers whose name says id become the ``id`` column;
* two values that read as true/false (true/false, yes/no, y/n): ``boolean``;
* at most ``max_categories`` distinct values: ``categorical``, most frequent first;
* mostly dates: ``date``, role ``ignored`` (a date is not a feature; derive a number);
* all values distinct: the ``id`` column (the first such), else ``ignored``;
* more distinct text values than ``max_categories``: ``ignored``, never silently a category.

The label is ``--label``, or a two-valued column named like a label (``loan_status``,
``default``, ``target``, ``bad`` ...). Its positive value is ``1``, or a value that reads as
a default (``bad``, ``default``, ``yes`` ...), else the rarer value, marked for review.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from loanrisk.defaults import MAX_CATEGORIES as MAX_CATEGORIES
from loanrisk.defaults import SCHEMA_SAMPLE_ROWS
from loanrisk.errors import InvalidInput
from loanrisk.schema.model import (
    FALSE_TOKENS,
    TRUE_TOKENS,
    Column,
    ColumnType,
    LabelValue,
    LoanSchema,
    Range,
    Role,
    Special,
)
from loanrisk.schema.rawcsv import iter_csv_chunks
from loanrisk.schema.validate import header_name

#: Rows read to draft a schema (the first ones of the file).
SAMPLE_ROWS = SCHEMA_SAMPLE_ROWS
#: Share of present values that must parse for a column to be read as numbers or dates.
PARSE_SHARE = 0.99
#: Most rows of a label column with a third value (refused rows) for a label to be drafted.
STRAY_LABEL_SHARE = 0.005
_LABEL_NAMES = re.compile(
    r"(^|_)(status|default|defaulted|label|target|bad|outcome|y|creditability)($|_)"
    r"|dlq|delinq|default"  # inside a name too: SeriousDlqin2yrs
)
#: Names of an origination date and of a loan amount, drafted as such (whole words).
_ORIGINATION_NAMES = re.compile(
    r"(^|_)(orig|origination|originated|opened|open_date|issue_d|issued|issue_date|funded|"
    r"disbursed|disbursement|booked|booking|start_date)($|_)"
)
_AMOUNT_NAMES = re.compile(
    r"(^|_)(amount|amnt|amt|principal|loan_amount|funded_amnt|exposure)($|_)"
)
_POSITIVE_WORDS = ("1", "bad", "default", "defaulted", "charged off", "yes", "y", "true")
_ID_NAMES = re.compile(r"(^|_)(id|key|number|no|ref|reference)($|_)")
#: Names of possible protected attributes: ECOA's (Regulation B's) prohibited bases (race,
#: colour, religion, national origin, sex, marital status, age, public assistance) and the
#: like. Such a column is drafted as ``protected``: never a feature unless a reviewer says so.
_PROTECTED_NAMES = re.compile(
    r"(^|[_\W])(age|sex|gender|marital|marriage|married|race|racial|ethnic|ethnicity|religion|"
    r"religious|national|nationality|origin|foreign|foreigner|citizen|citizenship|colou?r|"
    r"disability|disabled|pregnan\w*|birth|dob|assistance|welfare)($|[_\W])"
)
_CODE_NAMES = re.compile(r"(^|_)(code|cod|zip|postal|area|shop|branch|booth)($|_)")
#: Numbers lenders use as codes for "unknown", "not applicable" and the like.
_SENTINELS = frozenset(
    [
        9,
        99,
        999,
        9999,
        99999,
        999999,
        96,
        97,
        98,
        996,
        997,
        998,
        9996,
        9997,
        9998,
        -1,
        -9,
        -99,
        -999,
        -9999,
    ]
)
#: A sentinel is proposed as special when it is seen at least this often and is isolated
#: (beyond SPECIAL_GAP times the rest's 99th percentile: Give Me Some Credit's 96 and 98
#: past-due codes hold 0.18% of rows, far above counts of 0 to 3) ...
SPECIAL_MIN_COUNT = 5
SPECIAL_GAP = 1.5
#: ... or is a spike: at least this share of the values and SPECIAL_SPIKE times the median
#: count of the other values (PAKDD's catch-all profession code 999, 13% of rows).
SPECIAL_SHARE = 0.005
SPECIAL_SPIKE = 5
#: Categories drafted: values seen in at least this share of the rows (rarer ones are
#: stray values, such as a shifted line's text, left out and named in a REVIEW note).
RARE_CATEGORY_SHARE = 0.001
#: The plausible range is drafted from these quantiles of the values (never min..max: a
#: range that holds every value flags nothing).
PLAUSIBLE_QUANTILES = (0.001, 0.999)


@dataclass
class Draft:
    """A drafted schema and, per column, the notes written above it in the YAML."""

    schema: LoanSchema
    notes: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0
    source: str = ""


@dataclass(frozen=True, slots=True)
class _Drafted:
    """A column as drafted, before the schema checks it (:meth:`column`)."""

    name: str
    type: ColumnType
    role: Role = "feature"
    categories: tuple[str, ...] | None = None
    positive: tuple[LabelValue, ...] | None = None
    negative: tuple[LabelValue, ...] | None = None
    special: tuple[float | int, ...] = ()
    valid_min: float | int | None = None
    plausible: tuple[float | int, float | int] | None = None
    origination: bool = False
    amount: bool = False

    def column(self) -> Column:
        """The declared column; raises ValidationError where the draft breaks a rule."""
        return Column(
            name=self.name,
            role=self.role,
            type=self.type,
            categories=self.categories,
            positive=self.positive,
            negative=self.negative,
            special=(
                (Special(values=self.special, meaning="unknown (drafted: a code)"),)
                if self.special
                else None
            ),
            valid=Range(min=self.valid_min) if self.valid_min is not None else None,
            plausible=Range(min=self.plausible[0], max=self.plausible[1])
            if self.plausible is not None
            else None,
            origination=self.origination,
            amount=self.amount,
        )


def _numbers(text: pd.Series[Any]) -> pd.Series[Any]:
    return pd.to_numeric(text, errors="coerce")


def _looks_like_dates(text: pd.Series[Any]) -> bool:
    sample = text.head(1000)
    if sample.str.fullmatch(r"[+-]?\d+(\.\d+)?").mean() > 0.5:  # plain numbers are not dates
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    return bool(parsed.notna().mean() >= PARSE_SHARE)


def _round(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(f"{value:.6g}")


def _two_values(values: pd.Series[Any]) -> pd.Series[Any] | None:
    """The counts of a label's two values, when two values hold all but at most
    :data:`STRAY_LABEL_SHARE` of its rows (a few stray values are rows to refuse, such as a
    file's shifted lines); None otherwise."""
    counts = values.value_counts()
    if len(counts) < 2 or counts.iloc[:2].sum() < (1 - STRAY_LABEL_SHARE) * counts.sum():
        return None
    return counts.iloc[:2]


def _label_column(name: str, text: pd.Series[Any], notes: list[str]) -> _Drafted:
    values = text.str.strip()
    values = values[values != ""]
    counts = _two_values(values)
    if counts is None:
        distinct = values.value_counts()
        raise InvalidInput(
            f"label {name!r} has {len(distinct)} distinct values "
            f"({', '.join(map(str, distinct.index[:5]))}); a label has two"
        )
    stray = values[~values.isin(counts.index)]
    if len(stray):
        shown = ", ".join(f"{v!r} ({n:,})" for v, n in stray.value_counts().head(5).items())
        notes.append(
            f"REVIEW: {len(stray):,} rows have another label value ({shown}): "
            "they are refused as bad rows (process with --skip-bad-rows)"
        )
    values = values[values.isin(counts.index)]
    numbers = _numbers(values)
    if numbers.notna().all() and set(numbers.unique()) == {0, 1}:
        return _Drafted(name, "integer", "label", positive=(1,), negative=(0,))
    words = [str(v) for v in counts.index]
    positive = next((w for w in words if w.lower() in _POSITIVE_WORDS), None)
    if positive is None:
        positive = words[-1]  # the rarer one: defaults are the minority in loan books
        notes.append(f"REVIEW: is {positive!r} the value of a default? (guessed: the rarer one)")
    negative = next(w for w in words if w != positive)
    return _Drafted(name, "categorical", "label", positive=(positive,), negative=(negative,))


def _draft_column(
    name: str, text: pd.Series[Any], *, max_categories: int, have_id: bool
) -> tuple[_Drafted, list[str]]:
    present = text[text.notna() & (text.str.strip() != "")].str.strip()
    total, gaps = len(text), len(text) - len(present)
    notes = [f"missing {gaps:,} of {total:,} ({gaps / max(total, 1):.1%})"]
    if present.empty:
        notes.append("REVIEW: no values in the sample; ignored")
        return _Drafted(name, "numeric", "ignored"), notes
    numbers = _numbers(present)
    parsed = numbers.notna().mean()
    distinct = present.nunique()
    if parsed >= PARSE_SHARE:
        if parsed < 1:
            bad = present[numbers.isna()].head(3).tolist()
            notes.append(f"REVIEW: {int(numbers.isna().sum())} values are not numbers, e.g. {bad}")
        values = numbers.dropna().to_numpy(dtype=np.float64)
        whole = bool(np.all(values == np.round(values)))
        low, high = float(values.min()), float(values.max())
        p1, p99 = np.quantile(values, [0.01, 0.99])
        notes.append(
            f"{distinct:,} distinct; observed {low:g} to {high:g} (1%: {p1:g}, 99%: {p99:g})"
        )
        if whole and distinct == len(present) and not have_id and _ID_NAMES.search(name):
            notes.append("all distinct whole numbers named like an id: the id column")
            return _Drafted(name, "integer", "id"), notes
        column = _Drafted(name, "integer" if whole else "numeric")
        if distinct == 1:
            notes.append("REVIEW: one value only: it tells no loan from another; ignored")
            return replace(column, role="ignored"), notes
        special = _special_values(values)
        if special:
            shown = ", ".join(f"{v:g}" for v in special)
            verb = "looks like a code" if len(special) == 1 else "look like codes"
            notes.append(
                f"REVIEW: {shown} {verb}, not an amount (isolated or far more frequent than "
                "other values): drafted as special values treated as missing; say what they mean"
            )
            column = replace(column, special=tuple(special))
            values = values[~np.isin(values, special)]
        if values.size and values.min() >= 0:
            column = replace(column, valid_min=0)
        if values.size:
            q_low, q_high = np.quantile(values, PLAUSIBLE_QUANTILES)
            if whole:  # whole numbers get whole bounds, rounded outwards
                q_low, q_high = np.floor(q_low), np.ceil(q_high)
            outside = float(np.mean((values < q_low) | (values > q_high)))
            column = replace(column, plausible=(_round(q_low), _round(q_high)))
            notes.append(
                f"plausible: the {PLAUSIBLE_QUANTILES[0]:.1%} and "
                f"{PLAUSIBLE_QUANTILES[1]:.1%} quantiles ({outside:.2%} of values "
                "outside are flagged, kept)"
            )
        if _CODE_NAMES.search(name):
            notes.append(
                "REVIEW: named like a code: if its numbers label things rather than "
                "count them, make it categorical (and group the rare codes)"
            )
        return column, notes
    tokens = {v.lower() for v in present.unique()[: max_categories + 1]}
    if distinct == 2 and tokens <= {*TRUE_TOKENS, *FALSE_TOKENS} - {"1", "0"}:
        notes.append(f"two values read as true/false: {', '.join(sorted(present.unique()))}")
        return _Drafted(name, "boolean"), notes
    counts = present.str.upper().value_counts()
    common = counts[counts >= max(RARE_CATEGORY_SHARE * total, 1)]
    if len(common) <= max_categories and len(common) < len(counts) and len(common):
        rare = counts.drop(common.index)
        notes.append(
            f"REVIEW: {len(rare):,} rare values in {int(rare.sum()):,} rows left out of "
            f"the categories (each under {RARE_CATEGORY_SHARE:.1%} of rows), e.g. "
            f"{', '.join(map(repr, rare.index[:3]))}: training refuses them as "
            "unknown categories"
        )
        counts = common
    if len(counts) == 1:
        notes.append(
            f"REVIEW: one value only ({counts.index[0]}): it tells no loan from another; ignored"
        )
        return _Drafted(name, "categorical", "ignored"), notes
    if len(counts) <= max_categories:
        notes.append(
            "counts: "
            + ", ".join(f"{k} {v:,}" for k, v in counts.head(12).items())
            + (" ..." if len(counts) > 12 else "")
        )
        notes.append("REVIEW: if the categories have an order, make it ordinal and order them")
        return _Drafted(name, "categorical", categories=tuple(counts.index)), notes
    if _looks_like_dates(present):
        notes.append("dates: a date is not a feature; derive a number from it (ignored here)")
        return _Drafted(name, "date", "ignored"), notes
    if distinct == len(present) and not have_id:
        notes.append("every value distinct: the id column")
        return _Drafted(name, "categorical", "id"), notes
    notes.append(
        f"REVIEW: {distinct:,} distinct text values, more than {max_categories} for a "
        "category: ignored. Group them into fewer categories to use the column"
    )
    return _Drafted(name, "categorical", "ignored"), notes


def _special_values(values: np.ndarray) -> list[float | int]:
    """Sentinel numbers (99, 999, 98, -1 ...) at the end of a column's range that look like
    codes: each seen at least :data:`SPECIAL_MIN_COUNT` times and either isolated (beyond
    :data:`SPECIAL_GAP` times the rest's 99th percentile, or below zero when the rest is
    not) or a spike (at least :data:`SPECIAL_SHARE` of the values and :data:`SPECIAL_SPIKE`
    times the median count of the others)."""
    distinct, counts = np.unique(values, return_counts=True)
    candidates = [
        v
        for v, n in zip(distinct, counts, strict=True)
        if v in _SENTINELS and n >= SPECIAL_MIN_COUNT
    ]
    if not candidates:
        return []
    rest = values[~np.isin(values, candidates)]
    if rest.size == 0:
        return []
    others = counts[~np.isin(distinct, candidates)]
    typical = float(np.median(others)) if others.size else 0.0
    top = float(np.quantile(rest, 0.99))
    found = []
    for value in candidates:
        count = int(counts[distinct == value][0])
        at_end = value > rest.max() if value > 0 else value < rest.min()
        # 9 dependants or 9 cards are rare but real: alone, only a two-digit code isolates.
        far = value >= 90 and value > SPECIAL_GAP * max(top, 1)
        isolated = far if value > 0 else rest.min() >= 0
        spike = count >= SPECIAL_SHARE * values.size and count >= SPECIAL_SPIKE * typical
        if at_end and (isolated or spike):
            found.append(_round(value))
    return found


def infer_schema(
    stream: IO[bytes],
    *,
    label: str | None = None,
    name: str = "my-loans",
    max_categories: int = MAX_CATEGORIES,
    sample_rows: int = SAMPLE_ROWS,
    source: str = "",
) -> Draft:
    """Draft a schema from the first ``sample_rows`` rows of a CSV (see the module's rules).
    Raises :class:`InvalidInput` for unreadable CSV, or when no label can be found."""
    with contextlib.closing(
        iter_csv_chunks(stream, chunk_rows=sample_rows, all_text=True)
    ) as chunks:
        first = next(chunks, None)
    if first is None or len(first[1]) == 0:
        raise InvalidInput("no rows: the input has a header but no loans")
    frame = first[1]
    frame.columns = [header_name(c) for c in frame.columns]
    label_name = label.strip().lower() if label else _guess_label(frame)
    if label_name not in frame.columns:
        raise InvalidInput(
            f"label column {label_name!r} is not in the file (columns: {', '.join(frame.columns)})"
        )
    columns: list[_Drafted] = []
    notes: dict[str, list[str]] = {}
    have_id = False
    for column_name in frame.columns:
        text = frame[column_name].astype("string")
        if column_name == label_name:
            notes[column_name] = []
            columns.append(_label_column(column_name, text.dropna(), notes[column_name]))
            continue
        column, notes[column_name] = _draft_column(
            column_name, text, max_categories=max_categories, have_id=have_id
        )
        if _PROTECTED_NAMES.search(column_name) and column.role == "feature":
            column = _protected(column, notes[column_name])
        have_id = have_id or column.role == "id"
        columns.append(column)
    columns = _vintage_columns(columns, notes)
    try:
        schema = LoanSchema(name=name, columns=tuple(c.column() for c in columns))
    except ValidationError as exc:
        raise InvalidInput(f"cannot draft a schema from this file: {exc}") from None
    return Draft(schema, notes, rows=len(frame), source=source)


def _vintage_columns(columns: list[_Drafted], notes: dict[str, list[str]]) -> list[_Drafted]:
    """The first date named like an origination date becomes the kept ``origination``
    column, the first non-negative number named like a loan amount the ``amount`` column
    (its role unchanged: a feature stays one), each with a REVIEW note."""
    out = list(columns)
    dated = next(
        (i for i, c in enumerate(out) if c.type == "date" and _ORIGINATION_NAMES.search(c.name)),
        None,
    )
    if dated is not None:
        out[dated] = replace(out[dated], role="kept", origination=True)
        notes[out[dated].name].append(
            "REVIEW: named like an origination date: kept (never a feature) as the loans' "
            "origination date, which vintages date them by (origination: true)"
        )
    weighed = next(
        (
            i
            for i, c in enumerate(out)
            if c.type in ("numeric", "integer")
            and c.role in ("feature", "kept")
            and c.valid_min is not None
            and _AMOUNT_NAMES.search(c.name)
        ),
        None,
    )
    if weighed is not None:
        out[weighed] = replace(out[weighed], amount=True)
        notes[out[weighed].name].append(
            "REVIEW: named like the loan's amount: vintages report default rates by it "
            "(amount: true); its role decides whether the model uses it"
        )
    return out


def _protected(column: _Drafted, notes: list[str]) -> _Drafted:
    """A column named like a protected attribute, drafted as one: carried for the fairness
    report, never a feature (features' fields dropped)."""
    notes.append(
        "REVIEW: named like a protected attribute (ECOA's prohibited bases: race, colour, "
        "religion, national origin, sex, marital status, age, public assistance): carried for "
        "the fairness report, never a feature unless a reviewer decides so. Say which group "
        "is privileged: privileged: VALUE, {values: [...]} or {min: 25}"
    )
    return _Drafted(column.name, column.type, "protected", categories=column.categories)


def _guess_label(frame: pd.DataFrame) -> str:
    for name in frame.columns:
        values = frame[name].dropna().astype("string").str.strip()
        if _LABEL_NAMES.search(name) and _two_values(values[values != ""]) is not None:
            return str(name)
    raise InvalidInput("no label column found: name it with --label COLUMN")


def render_yaml(draft: Draft) -> str:
    """The draft as commented YAML, for a person to review (docs/schema.md)."""
    lines = [
        f"# Draft schema for {draft.source or 'a loan file'}, from its first {draft.rows:,} rows.",
        "# Review every column, above all those marked REVIEW: roles (feature, label, id,",
        "# protected, kept, ignored), types, ranges, categories and their order, preprocessing",
        "# (numbers: none, median, power or scale; categories: onehot or ordinal), the",
        "# direction of risk (risk: increasing | decreasing) and a plain-language title and",
        "# reason. docs/schema.md explains each field. Check it with: loanrisk schema check FILE",
        "format: loanrisk.schema",
        "version: 1",
        f"name: {draft.schema.name}",
        "columns:",
    ]
    for column in draft.schema.columns:
        for note in draft.notes.get(column.name, []):
            lines.append(f"  # {note}")
        doc = _whole(column.model_dump(mode="json", exclude_defaults=True))
        body = yaml.safe_dump(
            [doc], sort_keys=False, default_flow_style=None, width=96, allow_unicode=True
        )
        lines += ["  " + line for line in body.rstrip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def _whole(value: Any) -> Any:
    """Floats that are whole numbers written as integers (``min: 0``, not ``min: 0.0``)."""
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
