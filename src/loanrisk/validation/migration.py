"""The migration matrix between two gradings of the same loans (two model versions, or one
model at the start and the end of a window), with the ECB's matrix-weighted bandwidths and
stability z-tests.

Source: ECB, "Instructions for reporting the validation results of internal models", IRB
Pillar I models for credit risk, February 2019, sections 2.5.5.1 (customer migrations: upper
and lower MWB) and 2.5.5.2 (stability of the migration matrix). Grades are indexed 0 (best) to
K - 1; the ECB's i and j are these plus one. Counts stream: :func:`migration_counts` of chunks
add up, and :func:`migration_from_counts` takes the sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats

from loanrisk.errors import InvalidInput


class Migration(BaseModel):
    """Rows: the initial grade; columns: the final grade (``grades`` names both, best first).
    ``counts[i][j]`` loans moved from i to j; ``loans[i]`` started in i; ``frequencies[i][j]``
    is counts / loans (None for an empty row). ``upper_mwb`` sums the moves to worse grades
    (j > i), ``lower_mwb`` to better ones, each weighted by the grades moved and normalised to
    [0, 1] (None when no loan could move that way). ``z[i][j]`` and ``p[i][j] = Phi(z)`` are
    the ECB's stability tests (None on the diagonal and where undefined): a small p says the
    frequencies do not fall off away from the diagonal as they should."""

    model_config = ConfigDict(frozen=True)

    grades: list[str]
    counts: list[list[int]]
    loans: list[int]
    frequencies: list[list[float | None]]
    upper_mwb: float | None
    lower_mwb: float | None
    z: list[list[float | None]]
    p: list[list[float | None]]


def migration_counts(initial: np.ndarray, final: np.ndarray, grades: int) -> np.ndarray:
    """The K x K matrix of loans per (initial grade, final grade); grade indices in 0..K-1.
    Raises :class:`InvalidInput` naming ``initial`` or ``final`` for a bad grade."""
    a, b = np.asarray(initial), np.asarray(final)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInput(
            "initial and final must be one grade per loan, of one length",
            details={"field": "final"},
        )
    for name, values in (("initial", a), ("final", b)):
        if values.size and (
            not np.issubdtype(values.dtype, np.integer)
            or values.min() < 0
            or values.max() >= grades
        ):
            raise InvalidInput(
                f"{name} must be grade indices in 0..{grades - 1}", details={"field": name}
            )
    flat = a.astype(np.intp) * grades + b.astype(np.intp)
    counts: np.ndarray = np.bincount(flat, minlength=grades * grades).reshape(grades, grades)
    return counts


def _z(p: np.ndarray, i: int, j: int, k: int, n: int) -> float | None:
    """The ECB's z_ij: against the neighbour nearer the diagonal (j + 1 below it, j - 1 above)."""
    neighbour = j + 1 if j < i else j - 1
    near, far = p[i, neighbour], p[i, j]
    variance = (near * (1 - near) + far * (1 - far) + 2 * near * far) / n
    if not variance > 0:
        return None
    return float((near - far) / math.sqrt(variance))


def _mwb(counts: np.ndarray, upper: bool) -> float | None:
    k = counts.shape[0]
    weighted, norm = 0.0, 0.0
    for i in range(k):
        moved = counts[i, i + 1 :] if upper else counts[i, :i]
        columns = np.arange(i + 1, k) if upper else np.arange(0, i)
        # N_i p_ij is the count N_ij; the normaliser weighs the row's moves by the farthest
        # move possible from i, max(|i - K|, |i - 1|) in the ECB's 1-based grades.
        weighted += float(np.sum(np.abs(columns - i) * moved))
        norm += max(k - 1 - i, i) * float(moved.sum())
    return weighted / norm if norm > 0 else None


def migration_from_counts(counts: np.ndarray, grade_names: Sequence[str]) -> Migration:
    """The migration statistics of a K x K count matrix (see :class:`Migration`)."""
    matrix = np.asarray(counts, dtype=np.int64)
    k = len(grade_names)
    if matrix.shape != (k, k) or (matrix < 0).any():
        raise InvalidInput(
            f"counts must be a {k} x {k} matrix of non-negative counts", details={"field": "counts"}
        )
    loans = matrix.sum(axis=1)
    freq = np.divide(
        matrix, loans[:, None], out=np.zeros(matrix.shape), where=loans[:, None] > 0
    ).astype(np.float64)
    z: list[list[float | None]] = [[None] * k for _ in range(k)]
    p: list[list[float | None]] = [[None] * k for _ in range(k)]
    for i in range(k):
        if loans[i] == 0:
            continue
        for j in range(k):
            if j != i:
                value = _z(freq, i, j, k, int(loans[i]))
                z[i][j] = value
                p[i][j] = None if value is None else float(stats.norm.cdf(value))
    return Migration(
        grades=[str(name) for name in grade_names],
        counts=matrix.tolist(),
        loans=loans.tolist(),
        frequencies=[[float(freq[i, j]) if loans[i] else None for j in range(k)] for i in range(k)],
        upper_mwb=_mwb(matrix, upper=True),
        lower_mwb=_mwb(matrix, upper=False),
        z=z,
        p=p,
    )


def migration(initial: np.ndarray, final: np.ndarray, grade_names: Sequence[str]) -> Migration:
    """The migration of loans from their ``initial`` grade to their ``final`` grade (indices
    0 = best .. K - 1 into ``grade_names``, one pair per loan)."""
    return migration_from_counts(migration_counts(initial, final, len(grade_names)), grade_names)
