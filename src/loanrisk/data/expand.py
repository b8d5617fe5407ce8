"""Synthetic expansion of a loans table to N rows, for benchmarking at scale.

Follows the reference (REFERENCE.md, pipeline step 1): rows are repeated in order until there
are ``size`` of them, then every row gets noise so copies differ; the label is kept. The noise
is the schema's, per declared type: each number gets its column's ``noise`` (default: normal
with 1% of the column's standard deviation for numeric columns, an integer in {-1, 0, +1} for
integer ones), and each category, ordinal or boolean value is redrawn with the column's
``swap`` probability (default 0.1, the reference's) from the values present. The built-in
schema declares the reference's noise, except where we differ on purpose:

* integer noise on age and employment length is drawn from {-1, 0, +1}; the reference's draw
  (``randint(-1, 0)`` semantics) can only subtract, which shifts both columns down by 0.5 years
  on average. Credit-history noise stays in {0, +1} as in the reference;
* noised values are clipped to the column's valid range (the reference can produce an
  employment length of -1 years, which our own validation would refuse), and integer columns
  stay whole;
* it is vectorised and seeded (``numpy.random.Generator``, one stream per fixed-size chunk),
  so the same seed and size give the same rows, and it is made chunk by chunk
  (:func:`expand_chunks`): a consumer that writes each chunk away holds one chunk, never the
  expanded table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loanrisk.schema import Column, LoanSchema, builtin_schema
from loanrisk.schema.model import Noise

#: Rows per chunk. Part of the seeding contract: changing it changes the generated rows.
CHUNK_ROWS = 1 << 20

Progress = Callable[[int, int], None]

#: Share of a column's standard deviation that a numeric column's default noise has.
DEFAULT_NOISE_SHARE = 0.01


def _noise(column: Column, values: np.ndarray) -> Noise:
    """The column's declared noise, or its type's default (sized on the input's values)."""
    if column.noise is not None and (column.noise.kind != "normal" or column.noise.sd is not None):
        return column.noise
    if column.type == "integer" and column.noise is None:
        return Noise(kind="integers", low=-1, high=1)
    present = values[~np.isnan(values)]
    sd = float(present.std()) * DEFAULT_NOISE_SHARE if present.size else 0.0
    return Noise(kind="normal", sd=sd)


def expand(
    frame: pd.DataFrame,
    size: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    schema: LoanSchema | None = None,
) -> pd.DataFrame:
    """Return ``frame`` expanded to ``size`` rows with noise, or ``frame`` itself when
    ``size <= len(frame)`` (no expansion, as in the reference).

    ``frame`` must be validated (float64 numerics, categoricals with the schema's categories,
    optional int8 label). ``progress(done, total)`` is called after every chunk. The whole
    result is in memory: :func:`expand_chunks` gives it chunk by chunk instead.
    """
    if size <= len(frame):
        if len(frame) == 0:
            raise ValueError("cannot expand an empty table")
        return frame
    chunks = expand_chunks(frame, size, seed=seed, progress=progress, schema=schema)
    return pd.concat(list(chunks), ignore_index=True)


def expand_chunks(
    frame: pd.DataFrame,
    size: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    schema: LoanSchema | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows of :func:`expand` (``size > len(frame)``), :data:`CHUNK_ROWS` at a time:
    nothing proportional to ``size`` is ever held, and the rows are the same as
    :func:`expand`'s for the same seed."""
    n = len(frame)
    if n == 0:
        raise ValueError("cannot expand an empty table")
    source = _Source.of(frame, schema or builtin_schema())
    for chunk, start in enumerate(range(0, size, CHUNK_ROWS)):
        stop = min(start + CHUNK_ROWS, size)
        # The chunk's child of SeedSequence(seed), made when needed: the same stream as
        # ``SeedSequence(seed).spawn(n)[chunk]``, without a list of n seeds up front.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
        rows = np.arange(start, stop) % n
        # The draws are made in this order (numbers, categories, booleans): the seeding
        # contract depends on it.
        columns = {
            **_noised_numbers(source, rows, rng),
            **_swapped_categories(source, rows, rng),
            **_flipped_booleans(source, rows, rng),
        }
        table = _ordered(source, rows, columns)
        if progress is not None:
            progress(stop, size)
        yield table


@dataclass(frozen=True)
class _Source:
    """What an expansion draws from, prepared once: the input, its columns by type, each
    number's noise, each category column's codes and the codes present."""

    frame: pd.DataFrame
    schema: LoanSchema
    numbers: list[Column]
    noise: dict[str, Noise]
    categorical: list[Column]
    booleans: list[Column]
    codes: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    label: np.ndarray | None
    #: Kept extra columns (e.g. a protected attribute): repeated as they are, without noise.
    extras: dict[str, np.ndarray]

    @classmethod
    def of(cls, frame: pd.DataFrame, schema: LoanSchema) -> _Source:
        features, label_name = schema.feature_names, schema.label_name
        numbers = [c for c in schema.features if c.type in ("numeric", "integer")]
        categorical = [c for c in schema.features if c.type in ("categorical", "ordinal")]
        codes = {c.name: frame[c.name].cat.codes.to_numpy() for c in categorical}
        return cls(
            frame=frame,
            schema=schema,
            numbers=numbers,
            noise={c.name: _noise(c, frame[c.name].to_numpy(dtype=np.float64)) for c in numbers},
            categorical=categorical,
            booleans=[c for c in schema.features if c.type == "boolean"],
            codes=codes,
            # "A category drawn uniformly from that column's values": those in the input.
            present={c: np.unique(v[v >= 0]).astype(np.int16) for c, v in codes.items()},
            label=frame[label_name].to_numpy() if label_name in frame.columns else None,
            extras={
                c: frame[c].cat.codes.to_numpy()
                for c in frame.columns
                if c not in features and c != label_name
            },
        )


def _noised_numbers(
    source: _Source, rows: np.ndarray, rng: np.random.Generator
) -> dict[str, object]:
    """The numbers at ``rows`` with their noise, clipped to the valid range (whole numbers
    for integer columns)."""
    m = len(rows)
    columns: dict[str, object] = {}
    for column in source.numbers:
        kind = source.noise[column.name]
        values = source.frame[column.name].to_numpy()[rows]
        if kind.kind == "integers":
            values = values + rng.integers(kind.low, kind.high + 1, m) * kind.step
        elif kind.kind == "normal":
            values = values + rng.normal(0, kind.sd or 0.0, m)
            if column.type == "integer":
                values = np.round(values)
        valid = column.valid_range
        columns[column.name] = np.clip(values, valid.low, valid.high)
    return columns


def _swapped_categories(
    source: _Source, rows: np.ndarray, rng: np.random.Generator
) -> dict[str, object]:
    """The categories at ``rows``, each present one redrawn with its column's ``swap``
    probability from the categories present in the input."""
    m = len(rows)
    columns: dict[str, object] = {}
    for column in source.categorical:
        name = column.name
        chunk_codes = source.codes[name][rows]
        swap = (rng.random(m) < column.swap) & (chunk_codes >= 0)
        chunk_codes[swap] = rng.choice(source.present[name], size=int(swap.sum()))
        columns[name] = pd.Categorical.from_codes(
            chunk_codes, categories=source.frame[name].cat.categories
        )
    return columns


def _flipped_booleans(
    source: _Source, rows: np.ndarray, rng: np.random.Generator
) -> dict[str, object]:
    """The booleans at ``rows``, each present one redrawn with its column's ``swap``
    probability."""
    m = len(rows)
    columns: dict[str, object] = {}
    for column in source.booleans:
        values = source.frame[column.name].to_numpy()[rows].copy()
        flip = (rng.random(m) < column.swap) & ~np.isnan(values)
        values[flip] = rng.integers(0, 2, int(flip.sum()))
        columns[column.name] = values
    return columns


def _ordered(source: _Source, rows: np.ndarray, columns: dict[str, object]) -> pd.DataFrame:
    """A chunk's table: the features in schema order, the label, then the extra columns."""
    ordered: dict[str, object] = {name: columns[name] for name in source.schema.feature_names}
    if source.label is not None:
        ordered[source.schema.label_name] = source.label[rows]
    for name, codes in source.extras.items():
        ordered[name] = pd.Categorical.from_codes(
            codes[rows], categories=source.frame[name].cat.categories
        )
    return pd.DataFrame(ordered, copy=False)
