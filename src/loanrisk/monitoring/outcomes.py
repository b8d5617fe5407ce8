"""Outcomes: what became of scored loans (defaulted or repaid), joined to the prediction log.

Layout, under a directory of the storage (setting ``outcome_directory``)::

    <directory>/<stamp>-<token>.parquet      one file per upload: loan_id, defaulted, observed_on

Storing is idempotent on the loan id: a loan's outcome is the one of its latest upload (the
same file sent twice changes nothing). Loan ids the prediction log does not know are counted,
not refused: the outcome of a loan scored elsewhere, or before logging began, is kept for
when it is needed.
"""

from __future__ import annotations

import io
import secrets
from datetime import UTC, date, datetime
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from loanrisk.errors import InvalidInput, NotFound, TooLarge
from loanrisk.schema import invalid_from_issues
from loanrisk.schema.validate import Issue
from loanrisk.storage.base import Storage

COLUMNS = pa.schema([
    ("loan_id", pa.string()),
    ("defaulted", pa.bool_()),
    ("observed_on", pa.date32()),
    ("stored_at", pa.timestamp("us", tz="UTC")),
])  # fmt: skip
TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}
MAX_ID_CHARS = 128


class Outcome(BaseModel):
    """One loan's outcome: ``defaulted`` is 0/1 (or true/false)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loan_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    defaulted: bool
    observed_on: date


def _problem(column: str, message: str, rows: list[int], values: list[str]) -> Issue:
    return Issue(column, "bad_outcome", message, len(rows), rows[:5], values[:5])


def parse_outcomes(frame: pd.DataFrame, *, max_rows: int) -> pd.DataFrame:
    """Outcomes from a frame of text (``loan_id``, ``defaulted``, ``observed_on``): every bad
    value refused with its row (1-based) and column."""
    frame = frame.rename(columns={c: str(c).strip().lower() for c in frame.columns})
    missing = [c for c in ("loan_id", "defaulted", "observed_on") if c not in frame.columns]
    if missing:
        raise InvalidInput(f"missing required column(s): {', '.join(missing)}",
                           details={"issues": [{"problem": "missing_column",
                                                "columns": missing}]})  # fmt: skip
    if len(frame) == 0:
        raise InvalidInput("no outcomes: the input has a header but no rows")
    if len(frame) > max_rows:
        raise TooLarge(f"{len(frame):,} outcomes: at most {max_rows:,} at once")
    text = {c: frame[c].astype("string").str.strip() for c in ("loan_id", "defaulted",
                                                                "observed_on")}  # fmt: skip
    rows = np.arange(1, len(frame) + 1)
    issues = []
    ids = text["loan_id"]
    bad_id = (ids.isna() | (ids == "") | (ids.str.len() > MAX_ID_CHARS)).to_numpy(dtype=bool)
    if bad_id.any():
        message = f"a loan id of 1 to {MAX_ID_CHARS} characters"
        values = ids[bad_id].fillna("").astype(str).tolist()
        issues.append(_problem("loan_id", message, rows[bad_id].tolist(), values))
    flag = text["defaulted"].str.lower()
    defaulted = flag.isin(TRUE).to_numpy(dtype=bool)
    bad_flag = ~(defaulted | flag.isin(FALSE).to_numpy(dtype=bool))
    if bad_flag.any():
        values = flag[bad_flag].fillna("").astype(str).tolist()
        issues.append(_problem("defaulted", "must be 0 or 1 (or true/false)",
                               rows[bad_flag].tolist(), values))  # fmt: skip
    when = pd.to_datetime(text["observed_on"], errors="coerce", format="ISO8601")
    bad_date = when.isna().to_numpy(dtype=bool)
    if bad_date.any():
        values = text["observed_on"][bad_date].fillna("").astype(str).tolist()
        issues.append(_problem("observed_on", "not an ISO date, e.g. 2026-11-30",
                               rows[bad_date].tolist(), values))  # fmt: skip
    if issues:
        raise invalid_from_issues(issues)
    return pd.DataFrame({"loan_id": ids.astype(str), "defaulted": defaulted,
                         "observed_on": when.dt.date})  # fmt: skip


def read_outcome_csv(stream: IO[bytes], *, max_rows: int) -> pd.DataFrame:
    try:
        frame = pd.read_csv(stream, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            nrows=max_rows + 1)  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not a readable outcomes CSV: {str(exc).splitlines()[-1]}") from None
    return parse_outcomes(frame.replace("", None), max_rows=max_rows)


def outcomes_frame(items: list[Outcome]) -> pd.DataFrame:
    return pd.DataFrame({"loan_id": [o.loan_id for o in items],
                         "defaulted": [o.defaulted for o in items],
                         "observed_on": [o.observed_on for o in items]})  # fmt: skip


def store_outcomes(storage: Storage, directory: str, outcomes: pd.DataFrame) -> str:
    """Write one upload (its last row per loan id); the stored file's path."""
    now = datetime.now(UTC)
    latest = outcomes.drop_duplicates("loan_id", keep="last")
    table = pa.Table.from_pandas(latest.assign(stored_at=now), schema=COLUMNS,
                                 preserve_index=False)  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    path = storage.join(directory, f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.parquet")
    storage.write_bytes(path, buffer.getvalue())
    return path


def read_outcomes(storage: Storage, directory: str) -> pd.DataFrame:
    """Every loan's latest outcome: ``loan_id``, ``defaulted``, ``observed_on``."""
    try:
        names = sorted(n for n in storage.list(directory) if n.endswith(".parquet"))
    except NotFound:
        names = []
    tables = [pq.read_table(io.BytesIO(storage.read_bytes(storage.join(directory, n))),
                            schema=COLUMNS) for n in names]  # fmt: skip
    table = pa.concat_tables(tables) if tables else COLUMNS.empty_table()
    frame: pd.DataFrame = table.to_pandas()
    latest: pd.DataFrame = frame.sort_values("stored_at", kind="stable").drop_duplicates(
        "loan_id", keep="last"
    )
    return latest.drop(columns=["stored_at"]).reset_index(drop=True)


def summary(stored: pd.DataFrame, known_ids: Any) -> dict[str, int]:
    """How many outcomes were stored, and how many name loans the log does not know."""
    unique = stored["loan_id"].drop_duplicates()
    unknown = int((~unique.isin(set(known_ids))).sum())
    return {"received": len(stored), "stored": len(unique), "unknown_loans": unknown}
