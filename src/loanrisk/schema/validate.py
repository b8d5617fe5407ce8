"""Validating loans against a declared schema, with row/column-precise errors.

What is an error and what is cleaned (docs/data.md has the full table):

* errors (the input is refused, with every problem grouped by column and capped; or, with
  ``on_error="drop"``, only the rows concerned are dropped and listed): text that breaks the
  rule every format shares (``loanrisk.schema.text``: a control character, text UTF-8 cannot
  encode, more than ``MAX_TEXT_CHARS`` characters) in a declared column, a missing column,
  non-numeric text in a numeric column, an impossible value (negative amount, age over 150),
  a label that is missing or neither a declared positive nor negative value, an unknown
  category in training data (as the column's ``unknown`` policy says), no rows;
* missing feature values (counted in the report; an error only where the column declares
  ``missing: refuse``): the model handles them, as the reference does. A missing number is
  imputed where the preprocessing imputes it and left missing for XGBoost elsewhere; a
  missing category encodes as none of its one-hot categories, or NaN where it is encoded
  ordinal. Unknown categories that are not refused (``unknown: missing``, or scoring) are
  kept as missing values, and counted with them;
* cleaned (noted in the report, never an error): surrounding whitespace, the case of category
  values and column names, a UTF-8 BOM, CRLF line endings, extra columns (dropped);
* flagged (kept, counted in the report with example rows): values outside the plausible range,
  such as the public dataset's ages of 144 and employment lengths of 123 years.

With ``on_error="drop"``, the flagged values, kept unknown categories and the missing and
special counts are those of the kept rows only: a dropped row is reported once, as rejected.

Row numbers in messages are 1-based data rows: row 1 is the first loan after the header.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loanrisk.errors import InvalidInput
from loanrisk.schema.files import builtin_schema
from loanrisk.schema.model import FALSE_TOKENS, TRUE_TOKENS, Column, LoanSchema, label_token
from loanrisk.schema.quality import Issue as Issue
from loanrisk.schema.quality import QualityReport
from loanrisk.schema.text import example, shown, text_problem

MAX_EXAMPLE_ROWS = 5
MAX_ISSUES = 25
#: Rejected row numbers listed in a report (the count is always exact).
MAX_REJECTED_ROWS = 10_000

Mode = Literal["train", "score"]


@dataclass
class ValidationReport:
    """What validation found and did, stored in dataset manifests as the data-quality report."""

    rows: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    cleaned: dict[str, int] = field(default_factory=dict)
    #: Per feature, the values the model receives as missing: blank ones, special codes
    #: treated as missing, and unknown categories kept (``unknown: missing``, or scoring).
    missing: dict[str, int] = field(default_factory=dict)
    #: Values that are declared special codes and were treated as missing (also in missing).
    special: dict[str, int] = field(default_factory=dict)
    flagged: list[Issue] = field(default_factory=list)
    unknown_categories: list[Issue] = field(default_factory=list)
    rejected: list[Issue] = field(default_factory=list)
    rejected_rows: list[int] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        out = [f"extra column {c!r} dropped" for c in self.dropped_columns]
        out += [i.describe() for i in self.flagged + self.unknown_categories]
        return out

    def quality(self) -> QualityReport:
        """The report as a dataset manifest stores it (the first
        :data:`MAX_REJECTED_ROWS` rejected rows, and the warnings)."""
        return QualityReport(
            rows=self.rows,
            dropped_columns=self.dropped_columns,
            cleaned=self.cleaned,
            missing=self.missing,
            special=self.special,
            flagged=self.flagged,
            unknown_categories=self.unknown_categories,
            rejected=self.rejected,
            rejected_rows=self.rejected_rows[:MAX_REJECTED_ROWS],
            warnings=self.warnings,
        )

    def to_dict(self) -> dict[str, Any]:
        """:meth:`quality` as JSON."""
        return self.quality().model_dump(mode="json")


@dataclass
class Validated:
    """Clean, typed loans: float64 numbers (booleans as 0/1), categoricals over the schema's
    categories (upper-case), an int8 label if present, and carried columns as text.

    ``row_numbers`` are the 1-based input row numbers of the frame's rows (rejected rows are
    missing from it when validation dropped them).

    ``special`` (training data only: ``mode="train"``) keeps what the frame no longer shows:
    which declared special code treated as missing each loan held. One column per feature
    declaring such codes (even when no loan holds one), aligned with ``frame``'s rows: a
    categorical whose categories are the declared codes (numbers as floats, text upper-case),
    missing where the loan held no code. In ``frame`` those values are missing, as the model
    receives them; the binning engine gives each code a bin of its own."""

    frame: pd.DataFrame
    report: ValidationReport
    row_numbers: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    special: pd.DataFrame = field(default_factory=pd.DataFrame)


class _Problems:
    """Grouped issues, and which rows they touch (for dropping bad rows instead of failing).

    It also holds what the report says about the rows that are kept (warnings, counts of
    missing and special values) until :meth:`settle`: only then are the refused rows known,
    and a row that is dropped must be neither reported as kept nor counted as missing."""

    def __init__(self, n: int, offset: int) -> None:
        self.issues: list[Issue] = []
        self.rows = np.zeros(n, dtype=bool)
        self.offset = offset
        self._notes: list[
            tuple[list[Issue], Issue, np.ndarray[Any, np.dtype[np.bool_]], pd.Series[Any]]
        ] = []
        self._counts: list[tuple[dict[str, int], str, np.ndarray[Any, np.dtype[np.bool_]]]] = []

    def note(
        self,
        into: list[Issue],
        issue: Issue,
        mask: np.ndarray[Any, np.dtype[np.bool_]],
        values: pd.Series[Any],
    ) -> None:
        """Report ``issue`` (its column, problem and message) in ``into`` for the rows of
        ``mask`` that are kept, once :meth:`settle` knows them."""
        self._notes.append((into, issue, mask, values))

    def count(
        self, into: dict[str, int], name: str, mask: np.ndarray[Any, np.dtype[np.bool_]]
    ) -> None:
        """Add the kept rows of ``mask`` to ``into[name]`` (0 if none), at :meth:`settle`."""
        into.setdefault(name, 0)
        self._counts.append((into, name, mask))

    def settle(self, dropped: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        """Write the notes and counts, leaving out the ``dropped`` rows."""
        for into, issue, mask, values in self._notes:
            kept = mask & ~dropped
            if kept.any():
                into.append(
                    _issue(issue.column, issue.problem, issue.message, kept, values, self.offset)
                )
        for counts, name, mask in self._counts:
            counts[name] += int((mask & ~dropped).sum())

    def add(
        self,
        column: str | None,
        problem: str,
        message: str,
        mask: np.ndarray[Any, np.dtype[np.bool_]],
        values: pd.Series[Any] | None = None,
    ) -> None:
        self.issues.append(_issue(column, problem, message, mask, values, self.offset))
        self.rows |= mask


def _positions(mask: np.ndarray[Any, np.dtype[np.bool_]], offset: int = 0) -> tuple[int, list[int]]:
    idx = np.flatnonzero(mask)
    return int(idx.size), [int(i) + 1 + offset for i in idx[:MAX_EXAMPLE_ROWS]]


def _issue(
    column: str | None,
    problem: str,
    message: str,
    mask: np.ndarray[Any, np.dtype[np.bool_]],
    values: pd.Series[Any] | None = None,
    offset: int = 0,
) -> Issue:
    count, rows = _positions(mask, offset)
    examples = [str(values.iloc[r - 1 - offset]) for r in rows] if values is not None else []
    return Issue(column, problem, message, count, rows, examples)


def header_name(name: object) -> str:
    """A column name as a file's header is matched against a schema: trimmed, without a
    byte-order mark, lower case."""
    return str(name).strip().lstrip("\ufeff").strip().lower()


def _normalise_columns(frame: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    renamed = {c: header_name(c) for c in frame.columns}
    if any(str(k) != v for k, v in renamed.items()):
        report.cleaned["column_names"] = sum(str(k) != v for k, v in renamed.items())
    frame = frame.rename(columns=renamed)
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise InvalidInput(
            f"duplicate column(s): {', '.join(sorted(set(duplicated)))}",
            details={"issues": [{"problem": "duplicate_column", "columns": duplicated}]},
        )
    return frame


def _numeric(
    raw: pd.Series[Any],
    spec: Column,
    errors: _Problems,
    report: ValidationReport,
    codes: dict[str, pd.Categorical[Any]] | None = None,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    if pd.api.types.is_bool_dtype(raw):
        mask = raw.notna().to_numpy()
        errors.add(spec.name, "not_numeric", "true/false is not a number", mask)
        return np.full(len(raw), np.nan)
    bad = np.zeros(len(raw), dtype=bool)
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        bad = np.isinf(values)
        if bad.any():
            errors.add(spec.name, "not_numeric", "not a finite number", bad, raw)
            values[bad] = np.nan
    else:
        text = raw.astype("string").str.strip()
        blank = text.isna() | (text == "")
        values = pd.to_numeric(text.mask(blank), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        bad = (np.isnan(values) | np.isinf(values)) & ~blank.to_numpy()
        if bad.any():
            errors.add(spec.name, "not_numeric", "not a number", bad, raw)
            values[bad] = np.nan
        values[blank.to_numpy()] = np.nan
    special = np.zeros(len(values), dtype=bool)
    if spec.special_missing:
        declared = np.array(sorted(spec.special_missing), dtype=np.float64)
        special = np.isin(values, declared)
        errors.count(report.special, spec.name, special)
        if codes is not None:
            held = np.where(special, np.searchsorted(declared, values), -1).astype(np.int64)
            codes[spec.name] = pd.Categorical.from_codes(
                held, dtype=pd.CategoricalDtype(list(declared))
            )
        values[special] = np.nan
    missing = np.isnan(values)
    if not pd.api.types.is_numeric_dtype(raw):
        missing &= ~bad  # already reported as not a number
    _missing(spec, missing, errors, report, special=special)
    if spec.type == "integer":
        with np.errstate(invalid="ignore"):
            fractional = ~np.isnan(values) & (values != np.round(values))
        if fractional.any():
            errors.add(spec.name, "not_integer", "not a whole number", fractional, raw)
            values[fractional] = np.nan
    valid = spec.valid_range
    with np.errstate(invalid="ignore"):
        impossible = (values < valid.low) | (values > valid.high)
    if impossible.any():
        message = f"impossible value (must be {valid.describe()})"
        errors.add(spec.name, "out_of_range", message, impossible, raw)
    if spec.plausible is not None:
        low, high = spec.plausible.low, spec.plausible.high
        with np.errstate(invalid="ignore"):
            odd = ((values < low) | (values > high)) & ~impossible
        if odd.any():
            message = f"outside the plausible range {spec.plausible.describe()} (kept)"
            errors.note(report.flagged, Issue(spec.name, "implausible", message), odd, raw)
    return values


def _missing(
    spec: Column,
    missing: np.ndarray[Any, np.dtype[np.bool_]],
    errors: _Problems,
    report: ValidationReport,
    *,
    special: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
) -> None:
    """Count the missing values; under ``missing: refuse`` refuse them, except the declared
    special codes (``special``), which are known answers, not gaps."""
    errors.count(report.missing, spec.name, missing)
    absent = missing if special is None else missing & ~special
    if spec.missing == "refuse" and absent.any():
        errors.add(spec.name, "missing", "required value missing", absent)


def _tokens(raw: pd.Series[Any]) -> tuple[np.ndarray[Any, Any], list[str]]:
    """Codes of the distinct values (-1 where missing) and each value stripped, lower-cased."""
    codes, uniques = pd.factorize(raw.astype("string"), use_na_sentinel=True)
    return codes, [str(u).strip().lower() for u in uniques]


def _boolean(
    raw: pd.Series[Any], spec: Column, errors: _Problems, report: ValidationReport
) -> np.ndarray[Any, np.dtype[np.float64]]:
    codes, tokens = _tokens(raw)
    if pd.api.types.is_float_dtype(raw.dtype):  # numbers (a stored split's 0/1): 1.0 is true
        tokens = [t.removesuffix(".0") for t in tokens]
    lookup = np.array(
        [
            1.0 if t in TRUE_TOKENS else 0.0 if t in FALSE_TOKENS else np.nan if not t else -1.0
            for t in tokens
        ]
        + [np.nan]
    )
    values: np.ndarray[Any, np.dtype[np.float64]] = lookup[codes]
    bad = values == -1.0
    if bad.any():
        errors.add(spec.name, "not_boolean", "not true/false (or yes/no, y/n, 1/0)", bad, raw)
        values[bad] = np.nan
    _missing(spec, np.isnan(values) & ~bad, errors, report)
    return values


def _dtype(spec: Column) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(spec.categories or ()))


def _categorical(
    raw: pd.Series[Any],
    spec: Column,
    mode: Mode,
    errors: _Problems,
    report: ValidationReport,
    codes: dict[str, pd.Categorical[Any]] | None = None,
) -> pd.Categorical:
    # Factorise first: a 4M-row column has a handful of distinct values to clean.
    positions, uniques = pd.factorize(raw.astype("string"), use_na_sentinel=True)
    cleaned_uniques = [str(u).strip().upper() for u in uniques]
    changed = [i for i, (u, c) in enumerate(zip(uniques, cleaned_uniques, strict=True)) if u != c]
    if changed:
        report.cleaned[spec.name] = int(np.isin(positions, changed).sum())
    categories = spec.categories or ()
    allowed = {c: i for i, c in enumerate(categories)}
    special = spec.special_missing
    lookup = np.array(
        [allowed.get(c, -2) if c and c not in special else -1 for c in cleaned_uniques] + [-1]
    )
    mapped = lookup[positions]  # position -1 (missing) indexes the trailing -1
    is_special = np.zeros(len(mapped), dtype=bool)
    if special:
        is_special = np.isin(positions, [i for i, c in enumerate(cleaned_uniques) if c in special])
        errors.count(report.special, spec.name, is_special)
        if codes is not None:
            declared = sorted(str(c) for c in special)
            code_of = [declared.index(c) if c in special else -1 for c in cleaned_uniques]
            held = np.array([*code_of, -1], dtype=np.int64)[positions]
            codes[spec.name] = pd.Categorical.from_codes(
                held, dtype=pd.CategoricalDtype(list(declared))
            )
    unknown = mapped == -2
    _missing(spec, mapped == -1, errors, report, special=is_special)
    if unknown.any():
        message = f"unknown category (allowed: {', '.join(categories)})"
        refuse = spec.unknown == "refuse" or (
            spec.unknown == "refuse_in_training" and mode == "train"
        )
        if refuse:
            errors.add(spec.name, "unknown_category", message, unknown, raw)
        else:
            issue = Issue(spec.name, "unknown_category", f"{message}, kept as a missing value")
            errors.note(report.unknown_categories, issue, unknown, raw)
            # Kept, an unknown category is a missing value in the frame (and to the model).
            errors.count(report.missing, spec.name, unknown)
    out = np.where(mapped < 0, -1, mapped)
    categorical: pd.Categorical = pd.Categorical.from_codes(out, dtype=_dtype(spec))
    return categorical


def _label(
    raw: pd.Series[Any], spec: Column, errors: _Problems
) -> np.ndarray[Any, np.dtype[np.int8]]:
    codes, uniques = pd.factorize(raw.astype("string"), use_na_sentinel=True)
    positive = {label_token(v) for v in spec.positive_values}
    negative = spec.negative_values
    negatives = None if negative is None else {label_token(v) for v in negative}
    values = []
    for unique in uniques:
        token = label_token(unique)
        if token in positive:
            values.append(1)
        elif token and (negatives is None or token in negatives):
            values.append(0)
        else:
            values.append(-1)
    mapped = np.array([*values, -1], dtype=np.int8)[codes]
    bad = mapped == -1
    if bad.any():
        allowed = [str(v) for v in negative or ()] + [str(v) for v in spec.positive_values]
        message = (
            f"label must be {', '.join(allowed[:-1])} or {allowed[-1]}"
            if negative is not None
            else "label missing"
        )
        errors.add(spec.name, "bad_label", message, bad, raw)
    return np.where(bad, 0, mapped).astype(np.int8)


def _date(raw: pd.Series[Any], spec: Column, errors: _Problems) -> None:
    text = raw.astype("string").str.strip()
    present = text.notna() & (text != "")
    parsed = pd.to_datetime(
        text.where(present), errors="coerce", format=spec.date_format or "ISO8601"
    )
    bad = (present & parsed.isna()).to_numpy(dtype=bool, na_value=False)
    if bad.any():
        expected = spec.date_format or "an ISO date, e.g. 2024-03-31"
        errors.add(spec.name, "not_a_date", f"not a date (expected {expected})", bad, raw)


def _amount(raw: pd.Series[Any], spec: Column, errors: _Problems) -> None:
    """A kept amount column (``amount: true``): present values are non-negative numbers."""
    text = raw.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool, na_value=False)
    numbers = pd.to_numeric(text.where(present), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = present & ~np.isfinite(numbers)
    if bad.any():
        errors.add(spec.name, "not_a_number", "not a number", bad, raw)
    negative = present & np.isfinite(numbers) & (numbers < 0)
    if negative.any():
        errors.add(spec.name, "negative_amount", "an amount is not negative", negative, raw)


def validate_frame(
    frame: pd.DataFrame,
    *,
    schema: LoanSchema | None = None,
    mode: Mode = "train",
    keep: Sequence[str] = (),
    on_error: Literal["raise", "drop"] = "raise",
    row_offset: int = 0,
) -> Validated:
    """Validate and clean a frame of loans against ``schema`` (default: the built-in one).

    ``mode="train"`` requires the label and the schema's protected and kept columns, and
    applies each column's ``unknown`` policy for training data; ``mode="score"`` ignores the
    label if present and, for ``unknown: refuse_in_training`` columns, reports unknown
    categories as warnings (they encode as all-zero one-hot columns, as the reference does).
    Protected and kept columns, and those named in ``keep``, are carried along as text,
    never as features; id and ignored columns are dropped; other extra columns are dropped
    with a warning.

    Returns a :class:`Validated` with the features in schema order (plus the label in train
    mode, then carried columns). Raises :class:`InvalidInput` whose message names the first
    problems and whose ``details["issues"]`` lists every group, each with a count and the
    first row numbers; with ``on_error="drop"`` the rows with problems are left out instead
    and listed in ``report.rejected``. ``row_offset`` shifts row numbers (for the chunks of
    a long file).
    """
    schema = schema or builtin_schema()
    report = ValidationReport()
    frame = _normalise_columns(frame, report)
    kept = _kept_columns(frame, schema, mode, keep)
    declared = schema.by_name
    report.dropped_columns = [c for c in frame.columns if c not in declared and c not in kept]
    if len(frame) == 0:
        raise InvalidInput("no rows: the input has a header but no loans")
    report.rows = len(frame)
    errors = _Problems(len(frame), row_offset)
    codes: dict[str, pd.Categorical[Any]] | None = {} if mode == "train" else None
    out = _columns(frame, schema, mode, kept, errors, report, codes)
    numbers = np.arange(row_offset + 1, row_offset + len(frame) + 1)
    result = pd.DataFrame(out, copy=False)
    special = pd.DataFrame(codes or {}, index=result.index, copy=False)
    errors.settle(errors.rows)  # raised below if on_error="raise", else these rows are dropped
    if errors.issues and on_error == "raise":
        raise invalid_from_issues(errors.issues)
    if errors.issues:
        report.rejected = errors.issues
        report.rejected_rows = [int(r) for r in numbers[errors.rows]]
        result = result[~errors.rows].reset_index(drop=True)
        special = special[~errors.rows].reset_index(drop=True)
        numbers = numbers[~errors.rows]
    return Validated(result, report, numbers, special)


def _kept_columns(
    frame: pd.DataFrame, schema: LoanSchema, mode: Mode, keep: Sequence[str]
) -> list[str]:
    """The columns carried along as text: the schema's carried ones (in train mode), then
    those named in ``keep``. Raises if one of ``keep`` is a feature or the label, or if a
    required column (feature, label in train mode, kept) is not in ``frame``."""
    label = schema.label_name
    features = schema.feature_names
    extra_kept = [k.strip().lower() for k in keep]
    clash = [k for k in extra_kept if k in features or k == label]
    if clash:
        raise InvalidInput(f"kept column(s) {', '.join(clash)} are loan features, not extras")
    carried = [c.name for c in schema.carried] if mode == "train" else []
    kept = list(dict.fromkeys([*carried, *(k for k in extra_kept if k not in carried)]))
    required = [*features, *([label] if mode == "train" else []), *kept]
    missing_columns = [c for c in required if c not in frame.columns]
    if missing_columns:
        raise InvalidInput(
            f"missing required column(s): {', '.join(missing_columns)}",
            details={"issues": [{"problem": "missing_column", "columns": missing_columns}]},
        )
    return kept


def _columns(
    frame: pd.DataFrame,
    schema: LoanSchema,
    mode: Mode,
    kept: Sequence[str],
    errors: _Problems,
    report: ValidationReport,
    codes: dict[str, pd.Categorical[Any]] | None = None,
) -> dict[str, np.ndarray[Any, np.dtype[Any]] | pd.Categorical[Any]]:
    """The validated columns: the features in schema order, the label in train mode, then
    the kept columns as categoricals (their problems go to ``errors``; with ``codes``, each
    feature's declared special codes treated as missing go there, per loan)."""
    out: dict[str, np.ndarray[Any, np.dtype[Any]] | pd.Categorical[Any]] = {}
    label = [schema.label_name] if mode == "train" else []
    checked = {n: _check_text(frame[n], n, errors) for n in [*schema.feature_names, *label, *kept]}
    for spec in schema.features:
        raw = checked[spec.name]
        if spec.type in ("numeric", "integer"):
            out[spec.name] = _numeric(raw, spec, errors, report, codes)
        elif spec.type == "boolean":
            out[spec.name] = _boolean(raw, spec, errors, report)
        else:
            out[spec.name] = _categorical(raw, spec, mode, errors, report, codes)
    if mode == "train":
        out[schema.label_name] = _label(checked[schema.label_name], schema.label, errors)
    for name in kept:
        column = schema.by_name.get(name)
        if column is not None and column.type == "date":
            _date(checked[name], column, errors)
        elif column is not None and column.amount:
            _amount(checked[name], column, errors)
        out[name] = pd.Categorical(checked[name].astype("string").str.strip())
    return out


def _check_text(raw: pd.Series[Any], name: str, errors: _Problems) -> pd.Series[Any]:
    """``raw`` with its text checked by the shared rule: each kind of bad text is one issue
    (the same message a JSON loan gets), and the bad values are blanked so that the column's
    own checks do not report them again. Only the distinct values are checked."""
    if not (raw.dtype == object or isinstance(raw.dtype, pd.StringDtype)):
        return raw
    found: dict[str, list[str]] = {}
    for value in raw.unique():
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            found.setdefault(problem, []).append(value)
    if not found:
        return raw
    bad = np.zeros(len(raw), dtype=bool)
    for problem, values in found.items():
        mask = raw.isin(values).to_numpy(dtype=bool, na_value=False)
        count, rows = _positions(mask, errors.offset)
        examples = [example(str(raw.iloc[r - 1 - errors.offset])) for r in rows]
        errors.issues.append(Issue(name, "bad_text", problem, count, rows, examples))
        errors.rows |= mask
        bad |= mask
    return raw.mask(bad)


def _merge_issues(groups: Iterable[Sequence[Issue]]) -> list[Issue]:
    """Issues of consecutive chunks as one list: the same problem of the same column is one
    issue, with the counts added and the first rows kept."""
    merged: dict[tuple[str | None, str, str], Issue] = {}
    for issues in groups:
        for issue in issues:
            key = (issue.column, issue.problem, issue.message)
            into = merged.setdefault(key, Issue(issue.column, issue.problem, issue.message))
            room = MAX_EXAMPLE_ROWS - len(into.rows)
            into.count += issue.count
            into.rows += issue.rows[:room]
            into.examples += issue.examples[:room] if issue.examples else []
    return list(merged.values())


def merge_reports(reports: Sequence[ValidationReport]) -> ValidationReport:
    """The report of a file validated chunk by chunk, as if validated whole."""
    merged = ValidationReport(
        rows=sum(r.rows for r in reports),
        dropped_columns=reports[0].dropped_columns if reports else [],
        flagged=_merge_issues(r.flagged for r in reports),
        unknown_categories=_merge_issues(r.unknown_categories for r in reports),
        rejected=_merge_issues(r.rejected for r in reports),
    )
    for report in reports:
        for name, count in report.cleaned.items():
            merged.cleaned[name] = merged.cleaned.get(name, 0) + count
        for name, count in report.missing.items():
            merged.missing[name] = merged.missing.get(name, 0) + count
        for name, count in report.special.items():
            merged.special[name] = merged.special.get(name, 0) + count
        merged.rejected_rows += report.rejected_rows
    return merged


def validate_chunks(
    chunks: Iterable[tuple[int, pd.DataFrame]],
    *,
    schema: LoanSchema | None = None,
    mode: Mode = "train",
    keep: Sequence[str] = (),
    on_error: Literal["raise", "drop"] = "raise",
) -> Validated:
    """Validate a long input chunk by chunk (``(row_offset, raw frame)`` pairs, e.g. from
    :func:`loanrisk.schema.rawcsv.iter_csv_chunks`): only one raw chunk is held at a time, and
    the validated rows are compact (numbers and category codes). Problems are gathered over
    every chunk, so the counts in the message (``on_error="raise"``) or the report
    (``"drop"``) are exact, as if the input had been validated whole."""
    frames: list[pd.DataFrame] = []
    reports: list[ValidationReport] = []
    numbers: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    specials: list[pd.DataFrame] = []
    for offset, chunk in chunks:
        if len(chunk) == 0:
            continue
        part = validate_frame(
            chunk, schema=schema, mode=mode, keep=keep, on_error="drop", row_offset=offset
        )
        frames.append(part.frame)
        reports.append(part.report)
        numbers.append(part.row_numbers)
        specials.append(part.special)
    if not frames:
        raise InvalidInput("no rows: the input has a header but no loans")
    report = merge_reports(reports)
    if report.rejected and on_error == "raise":
        raise invalid_from_issues(report.rejected)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    special = specials[0] if len(specials) == 1 else pd.concat(specials, ignore_index=True)
    schema = schema or builtin_schema()
    known = {*schema.feature_names, schema.label_name}
    for name in frame.columns:  # carried columns: each chunk found its own categories
        if name not in known:
            frame[name] = frame[name].astype("string").astype("category")
    return Validated(frame, report, np.concatenate(numbers), special)


@contextmanager
def builtin_schema_hint(hint: str) -> Iterator[None]:
    """Around reading loans with no declared schema: a refusal for missing columns (which
    then are the built-in schema's) is raised again saying that the built-in schema was
    used because none was given, followed by ``hint`` (how the front end's user gives one);
    its details gain ``"schema": <the built-in schema's name>``. Other errors pass as they
    are."""
    try:
        yield
    except InvalidInput as exc:
        issues = exc.details.get("issues") or [{}]
        if issues[0].get("problem") != "missing_column":
            raise
        name = builtin_schema().name
        raise InvalidInput(
            f"{exc.message} (the built-in {name!r} schema was used because none was given); {hint}",
            details={**exc.details, "schema": name},
        ) from None


def invalid_from_issues(issues: Sequence[Issue]) -> InvalidInput:
    """One :class:`InvalidInput` for many grouped issues: the message names the first three."""
    total = sum(i.count for i in issues)
    head = "; ".join(i.describe() for i in issues[:3])
    extra = len(issues) - 3
    more = f" (+{extra} more problem{'s' if extra > 1 else ''})" if extra > 0 else ""
    return InvalidInput(
        f"{total} invalid value{'s' if total != 1 else ''}: {head}{more}",
        details={"issues": [asdict(i) for i in issues[:MAX_ISSUES]], "invalid_values": total},
    )


def validate_records(
    records: Iterable[Mapping[str, Any]],
    *,
    schema: LoanSchema | None = None,
    mode: Mode = "score",
) -> Validated:
    """Validate loans given as mappings (e.g. parsed JSON); see :func:`validate_frame`."""
    rows = list(records)
    if not rows:
        raise InvalidInput("no records given")
    _refuse_bad_text(rows)  # before pandas, whose arrow strings cannot hold a lone surrogate
    return validate_frame(pd.DataFrame.from_records(rows), schema=schema, mode=mode)


def _refuse_bad_text(rows: Sequence[Mapping[str, Any]]) -> None:
    """Refuse records whose text breaks the shared rule, one issue per column and problem."""
    found: dict[tuple[str, str], Issue] = {}
    for number, row in enumerate(rows, start=1):
        for key, value in row.items():
            text = value if isinstance(value, str) else key if isinstance(key, str) else ""
            problem = text_problem(text) or (
                text_problem(key) if isinstance(key, str) and text is not key else None
            )
            if problem is None:
                continue
            column = header_name(shown(str(key)))
            issue = found.setdefault((column, problem), Issue(column, "bad_text", problem))
            issue.count += 1
            if len(issue.rows) < MAX_EXAMPLE_ROWS:
                issue.rows.append(number)
                issue.examples.append(example(str(value)))
    if found:
        raise invalid_from_issues(list(found.values()))
