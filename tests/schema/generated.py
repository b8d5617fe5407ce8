"""Schemas and loan files nobody here wrote: Hypothesis strategies for the declared schema.

:func:`schemas` draws a schema with every role (feature, label, id, protected, kept,
ignored), every type (numeric, integer, categorical, ordinal, boolean, date), a kept
origination date (ISO or a ``date_format``) and an amount (a feature or a kept number), every
preprocessing
step of each type, both missing policies, every unknown-category policy, special codes,
risk directions, integer, text and boolean labels, and protected groups by value, by set
and by numeric rule. Column names are drawn too: long, with digits, '=' and '-'.

:func:`loans_of` then makes a loan file that fits a schema (with the messes the schema
allows: blanks, special codes, stray case and spaces, unknown categories where they are
scored), from a seed, so a failing example replays exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from loanrisk.schema import LoanSchema
from loanrisk.schema.model import PREPROCESSING

ROWS = 240

_names = st.from_regex(r"[a-z][a-z0-9_=\-]{0,39}", fullmatch=True).filter(lambda n: n != "id")
_words = st.from_regex(r"[A-Z][A-Z0-9 _\-]{0,11}[A-Z0-9]", fullmatch=True)


@st.composite
def _categories(draw: st.DrawFn, low: int, high: int) -> list[str]:
    return draw(
        st.lists(_words, min_size=low, max_size=high, unique_by=lambda w: w.strip().upper())
    )


@st.composite
def _number(draw: st.DrawFn, name: str) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": draw(st.sampled_from(["numeric", "integer"]))}
    preprocess = draw(st.sampled_from([None, *PREPROCESSING["numeric"]]))
    if preprocess is not None:
        column["preprocess"] = preprocess
    column["missing"] = draw(st.sampled_from(["allow", "refuse"]))
    if draw(st.booleans()):
        column["valid"] = {"min": 0}
    if draw(st.booleans()):
        column["plausible"] = {"min": 1, "max": draw(st.integers(50, 5_000))}
    if draw(st.booleans()):
        column["special"] = [
            {"values": [draw(st.sampled_from([999, 9999, 98]))], "meaning": "unknown"}
        ]
    if draw(st.booleans()):
        column["risk"] = draw(st.sampled_from(["increasing", "decreasing"]))
    return column


@st.composite
def _category(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["categorical", "ordinal"]))
    categories = draw(_categories(2 if kind == "ordinal" else 1, 5))
    column: dict[str, Any] = {"name": name, "type": kind, "categories": categories}
    column["preprocess"] = draw(st.sampled_from([None, *PREPROCESSING[kind]]))
    if column["preprocess"] is None:
        del column["preprocess"]
    column["missing"] = draw(st.sampled_from(["allow", "refuse"]))
    column["unknown"] = draw(st.sampled_from(["refuse", "refuse_in_training", "missing"]))
    if draw(st.booleans()):
        column["special"] = [{"values": ["NOT GIVEN"], "meaning": "not answered"}]
    elif kind == "categorical" and draw(st.booleans()):
        column["special"] = [
            {"values": [categories[0]], "meaning": "catch-all", "treat": "category"}
        ]
    if kind == "ordinal" and draw(st.booleans()):
        column["risk"] = draw(st.sampled_from(["increasing", "decreasing"]))
    return column


@st.composite
def _boolean(draw: st.DrawFn, name: str) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": "boolean"}
    column["missing"] = draw(st.sampled_from(["allow", "refuse"]))
    if draw(st.booleans()):
        column["risk"] = draw(st.sampled_from(["increasing", "decreasing"]))
    return column


@st.composite
def _label(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "categorical", "boolean"]))
    column: dict[str, Any] = {"name": name, "role": "label", "type": kind}
    if kind == "categorical":
        positive, negative = draw(_categories(2, 2))
        column |= {"positive": [positive], "negative": [negative]}
    return column


@st.composite
def _protected(draw: st.DrawFn, name: str) -> dict[str, Any]:
    if draw(st.booleans()):
        return {
            "name": name,
            "role": "protected",
            "type": "integer",
            "privileged": {"min": draw(st.integers(25, 45))},
        }
    groups = draw(_categories(2, 4))
    rule: Any = groups[0] if draw(st.booleans()) else {"values": groups[:1]}
    column = {"name": name, "role": "protected", "type": "categorical", "categories": groups}
    return column | ({"privileged": rule} if draw(st.booleans()) else {})


@st.composite
def _kept(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A kept column: text, the origination date (ISO or a ``date_format``), or the amount."""
    kind = draw(st.sampled_from(["categorical", "origination", "amount"]))
    if kind == "origination":
        column = {"name": name, "role": "kept", "type": "date", "origination": True}
        date_format = draw(st.sampled_from([None, "%d/%m/%Y"]))
        return column | ({"date_format": date_format} if date_format else {})
    if kind == "amount":
        return {"name": name, "role": "kept", "type": "numeric", "amount": True}
    return {"name": name, "role": "kept", "type": "categorical"}


@st.composite
def schemas(draw: st.DrawFn) -> LoanSchema:
    """A valid schema of 1 to 6 features and, at random, an id, protected, kept and ignored
    columns, in a random order."""
    n = draw(st.integers(1, 6))
    extras = draw(
        st.lists(st.sampled_from(["id", "protected", "kept", "ignored"]), unique=True, max_size=4)
    )
    names = draw(
        st.lists(_names, min_size=n + len(extras) + 1, max_size=n + len(extras) + 1, unique=True)
    )
    makers = [_number, _category, _boolean]
    columns = [draw(st.sampled_from(makers).flatmap(lambda m, nm=nm: m(nm))) for nm in names[:n]]
    columns.append(draw(_label(names[n])))
    for extra, name in zip(extras, names[n + 1 :], strict=True):
        if extra == "id":
            columns.append({"name": name, "role": "id", "type": "integer"})
        elif extra == "protected":
            columns.append(draw(_protected(name)))
        elif extra == "kept":
            columns.append(draw(_kept(name)))
        else:
            columns.append({"name": name, "role": "ignored", "type": "numeric"})
    numbers = [c for c in columns[:n] if c["type"] in ("numeric", "integer")]
    if numbers and not any(c.get("amount") for c in columns) and draw(st.booleans()):
        numbers[0]["amount"] = True
        numbers[0]["valid"] = {"min": 0}
    order = draw(st.permutations(range(len(columns))))
    return LoanSchema.model_validate({"name": "generated", "columns": [columns[i] for i in order]})


def _messy(rng: np.random.Generator, text: pd.Series) -> pd.Series:
    """Text as people type it: stray case and surrounding spaces on some values."""
    lower = rng.random(len(text)) < 0.2
    padded = rng.random(len(text)) < 0.2
    text = text.where(~lower, text.str.lower())
    return text.where(~padded, " " + text + " ")


def _feature_values(rng: np.random.Generator, column: Any, risk: np.ndarray) -> pd.Series:
    n = len(risk)
    noisy = risk + rng.normal(0, 0.7, n)
    if column.type in ("numeric", "integer"):
        values = np.exp(0.6 * noisy) * 40 + 1
        values = np.round(values) if column.type == "integer" else np.round(values, 3)
        out = pd.Series(values, dtype=object)
        special = column.special_missing
        if special:
            out[rng.random(n) < 0.04] = int(next(iter(special)))
    elif column.type == "boolean":
        tokens = np.where(
            noisy > 0,
            rng.choice(["yes", "Y", "true", "1"], n),
            rng.choice(["no", "n", "FALSE", "0"], n),
        )
        out = pd.Series(tokens, dtype=object)
    else:
        categories = list(column.categories)
        position = np.clip(((noisy + 2) / 4 * len(categories)).astype(int), 0, len(categories) - 1)
        out = _messy(rng, pd.Series(np.array(categories, dtype=object)[position]))
        if column.special_missing:
            out[rng.random(n) < 0.04] = next(iter(column.special_missing))
        if column.unknown == "missing":
            out[rng.random(n) < 0.03] = "NEVER-DECLARED"
    if column.missing == "allow":
        out[rng.random(n) < 0.05] = None
    return out


def _label_values(column: Any, defaulted: np.ndarray) -> pd.Series:
    if column.type == "integer":
        return pd.Series(defaulted.astype(int))
    if column.type == "boolean":
        return pd.Series(np.where(defaulted, "true", "false"))
    positive, negative = column.positive[0], column.negative[0]
    return pd.Series(np.where(defaulted, positive, negative))


def loans_of(schema: LoanSchema, seed: int, rows: int = ROWS) -> pd.DataFrame:
    """A loan file for ``schema``: defaults driven by a latent risk that every feature
    reflects, both classes present, the messes the schema allows."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(0, 1, rows)
    defaulted = risk + rng.normal(0, 0.8, rows) > 0.7
    defaulted[:2] = [True, False]
    frame: dict[str, pd.Series] = {}
    for column in schema.columns:
        if column.role == "feature":
            frame[column.name] = _feature_values(rng, column, risk)
        elif column.role == "label":
            frame[column.name] = _label_values(column, defaulted)
        elif column.role == "id":
            frame[column.name] = pd.Series(np.arange(1, rows + 1) * 7)
        elif column.role == "protected" and column.type == "integer":
            frame[column.name] = pd.Series(rng.integers(18, 80, rows))
        elif column.role == "protected":
            frame[column.name] = pd.Series(rng.choice(list(column.categories or ["A"]), rows))
        elif column.type == "date":
            days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), "D")
            frame[column.name] = pd.Series(days.strftime(column.date_format or "%Y-%m-%d"))
        else:
            frame[column.name] = pd.Series(rng.integers(0, 1000, rows))
    return pd.DataFrame(frame)


def record_of(schema: LoanSchema, loans: pd.DataFrame, row: int) -> dict[str, Any]:
    """Row ``row`` of a loan file as a JSON loan: the features (numbers as JSON numbers,
    blanks as null), and the kept origination date and amount when the schema declares them."""
    record: dict[str, Any] = {
        c.name: loans[c.name].iloc[row]
        for c in (schema.origination, schema.amount)
        if c is not None and c.role == "kept"
    }
    record = {k: v.item() if isinstance(v, np.generic) else v for k, v in record.items()}
    for column in schema.features:
        value = loans[column.name].iloc[row]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            record[column.name] = None
        elif column.type in ("numeric", "integer"):
            record[column.name] = float(value)
        else:
            record[column.name] = str(value)
    return record
