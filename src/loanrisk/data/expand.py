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
  so the same seed and size give the same rows, and it is made chunk by chunk
  (:func:`expand_chunks`): a consumer that writes each chunk away holds one chunk, never the
  expanded table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
    optional int8 label). ``progress(done, total)`` is called after every chunk. The whole
    result is in memory: :func:`expand_chunks` gives it chunk by chunk instead.
    """
    if size <= len(frame):
        if len(frame) == 0:
            raise ValueError("cannot expand an empty table")
        return frame
    return pd.concat(list(expand_chunks(frame, size, seed=seed, progress=progress)),
                     ignore_index=True)  # fmt: skip


def expand_chunks(
    frame: pd.DataFrame,
    size: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows of :func:`expand` (``size > len(frame)``), :data:`CHUNK_ROWS` at a time:
    nothing proportional to ``size`` is ever held, and the rows are the same as
    :func:`expand`'s for the same seed."""
    n = len(frame)
    if n == 0:
        raise ValueError("cannot expand an empty table")
    numeric = [c for c in FEATURES if c in NUMERIC_BY_NAME]
    categorical = [c for c in FEATURES if c in CATEGORICAL_BY_NAME]
    source_codes = {c: frame[c].cat.codes.to_numpy() for c in categorical}
    # "A category drawn uniformly from that column's values": the values present in the input.
    present = {c: np.unique(v[v >= 0]).astype(np.int8) for c, v in source_codes.items()}
    label = frame[LABEL].to_numpy() if LABEL in frame.columns else None
    # Kept extra columns (e.g. a protected attribute) are repeated as they are, without noise.
    extras = {c: frame[c].cat.codes.to_numpy() for c in frame.columns
              if c not in FEATURES and c != LABEL}  # fmt: skip

    for chunk, start in enumerate(range(0, size, CHUNK_ROWS)):
        stop = min(start + CHUNK_ROWS, size)
        # The chunk's child of SeedSequence(seed), made when needed: the same stream as
        # ``SeedSequence(seed).spawn(n)[chunk]``, without a list of n seeds up front.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
        rows = np.arange(start, stop) % n
        m = stop - start
        columns: dict[str, object] = {}
        for name in numeric:
            kind, a, b = _NOISE[name]
            values = frame[name].to_numpy()[rows]
            if kind == "int":
                values = values + rng.integers(int(a), int(b) + 1, m)
            elif kind == "thousandths":
                values = values + rng.integers(int(a), int(b) + 1, m) / 1000
            else:
                values = values + rng.normal(a, b, m)
            low, high = NUMERIC_BY_NAME[name].valid
            columns[name] = np.clip(values, low, high)
        for name in categorical:
            chunk_codes = source_codes[name][rows]
            swap = (rng.random(m) < CATEGORY_SWAP_PROBABILITY) & (chunk_codes >= 0)
            chunk_codes[swap] = rng.choice(present[name], size=int(swap.sum()))
            columns[name] = pd.Categorical.from_codes(
                chunk_codes, categories=frame[name].cat.categories
            )
        ordered: dict[str, object] = {name: columns[name] for name in FEATURES}
        if label is not None:
            ordered[LABEL] = label[rows]
        for name, codes in extras.items():
            ordered[name] = pd.Categorical.from_codes(
                codes[rows], categories=frame[name].cat.categories
            )
        if progress is not None:
            progress(stop, size)
        yield pd.DataFrame(ordered, copy=False)
