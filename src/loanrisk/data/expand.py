"""Synthetic expansion of a loans table to N rows, for benchmarking at scale.

Follows the reference (REFERENCE.md, pipeline step 1): rows are repeated in order until there
are ``size`` of them, then every row gets noise so copies differ; the label is kept. Where we
differ from the reference, on purpose:

* integer noise on age and employment length is drawn from {-1, 0, +1}; the reference's draw
  (``randint(-1, 0)`` semantics) can only subtract, which shifts both columns down by 0.5 years
  on average. Credit-history noise stays in {0, +1} as in the reference;
* noised values are clipped to the schema's valid range (the reference can produce an
  employment length of -1 years, which our own validation would refuse);
* it is vectorised and seeded (``numpy.random.Generator``, one stream per fixed-size chunk),
  so the same seed and size give the same rows, and it fills one preallocated table chunk by
  chunk: peak memory is the output plus one chunk's working set, never a list of rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from loanrisk.schema import CATEGORICAL_BY_NAME, FEATURES, LABEL, NUMERIC_BY_NAME

#: Rows per chunk. Part of the seeding contract: changing it changes the generated rows.
CHUNK_ROWS = 1 << 20

Progress = Callable[[int, int], None]

#: (kind, spread) per numeric column: "int" adds an integer in [low, high], "normal" N(0, sd).
_NOISE: dict[str, tuple[str, float, float]] = {
    "person_age": ("int", -1, 1),
    "person_income": ("normal", 0, 10),
    "person_emp_length": ("int", -1, 1),
    "loan_amnt": ("normal", 0, 5),
    "loan_int_rate": ("normal", 0, 0.2),
    "loan_percent_income": ("thousandths", 0, 99),
    "cb_person_cred_hist_length": ("int", 0, 1),
}
CATEGORY_SWAP_PROBABILITY = 0.1


def expand(
    frame: pd.DataFrame,
    size: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Return ``frame`` expanded to ``size`` rows with noise, or ``frame`` itself when
    ``size <= len(frame)`` (no expansion, as in the reference).

    ``frame`` must be validated (float64 numerics, categoricals with the schema's categories,
    optional int8 label). ``progress(done, total)`` is called after every chunk.
    """
    n = len(frame)
    if n == 0:
        raise ValueError("cannot expand an empty table")
    if size <= n:
        return frame
    numeric = {c: np.empty(size, dtype=np.float64) for c in FEATURES if c in NUMERIC_BY_NAME}
    codes = {c: np.empty(size, dtype=np.int8) for c in FEATURES if c in CATEGORICAL_BY_NAME}
    source_codes = {c: frame[c].cat.codes.to_numpy() for c in codes}
    # "A category drawn uniformly from that column's values": the values present in the input.
    present = {c: np.unique(v[v >= 0]).astype(np.int8) for c, v in source_codes.items()}
    label = frame[LABEL].to_numpy() if LABEL in frame.columns else None
    # Kept extra columns (e.g. a protected attribute) are repeated as they are, without noise.
    extras = {c: frame[c].cat.codes.to_numpy() for c in frame.columns
              if c not in FEATURES and c != LABEL}  # fmt: skip
    extra_codes = {c: np.empty(size, dtype=v.dtype) for c, v in extras.items()}
    labels = np.empty(size, dtype=np.int8) if label is not None else None

    for chunk, start in enumerate(range(0, size, CHUNK_ROWS)):
        stop = min(start + CHUNK_ROWS, size)
        # The chunk's child of SeedSequence(seed), made when needed: the same stream as
        # ``SeedSequence(seed).spawn(n)[chunk]``, without a list of n seeds up front.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
        rows = np.arange(start, stop) % n
        m = stop - start
        for name, out in numeric.items():
            kind, a, b = _NOISE[name]
            values = frame[name].to_numpy()[rows]
            if kind == "int":
                values = values + rng.integers(int(a), int(b) + 1, m)
            elif kind == "thousandths":
                values = values + rng.integers(int(a), int(b) + 1, m) / 1000
            else:
                values = values + rng.normal(a, b, m)
            low, high = NUMERIC_BY_NAME[name].valid
            np.clip(values, low, high, out=out[start:stop])
        for name, out_codes in codes.items():
            chunk_codes = source_codes[name][rows]
            swap = (rng.random(m) < CATEGORY_SWAP_PROBABILITY) & (chunk_codes >= 0)
            chunk_codes[swap] = rng.choice(present[name], size=int(swap.sum()))
            out_codes[start:stop] = chunk_codes
        if labels is not None and label is not None:
            labels[start:stop] = label[rows]
        for name, source in extras.items():
            extra_codes[name][start:stop] = source[rows]
        if progress is not None:
            progress(stop, size)

    columns: dict[str, object] = {}
    for name in FEATURES:
        if name in numeric:
            columns[name] = numeric[name]
        else:
            categories = frame[name].cat.categories
            columns[name] = pd.Categorical.from_codes(codes[name], categories=categories)
    if labels is not None:
        columns[LABEL] = labels
    for name, extra in extra_codes.items():
        columns[name] = pd.Categorical.from_codes(extra, categories=frame[name].cat.categories)
    return pd.DataFrame(columns, copy=False)
