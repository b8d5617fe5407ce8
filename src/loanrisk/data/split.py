"""Seeded train/test split, stratified on the label by default."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loanrisk.schema import builtin_schema


def split_indices(
    labels: np.ndarray | None,
    n: int,
    *,
    test_fraction: float = 0.25,
    seed: int | list[int] = 0,
    allow_empty: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted (train, test) row positions.

    With ``labels`` the split is stratified: each class contributes ``round(test_fraction *
    count)`` rows to the test part, so both parts keep the label rate. Without labels it is a
    plain random split. Raises ``ValueError`` when either part would be empty (unless
    ``allow_empty``: one chunk of a longer input may be too small for both).
    """
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must lie strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == v) for v in (0, 1)]
    test_parts = []
    for group in groups:
        take = round(test_fraction * group.size)
        test_parts.append(rng.permutation(group)[:take])
    test = np.sort(np.concatenate(test_parts))
    mask = np.ones(n, dtype=bool)
    mask[test] = False
    train = np.flatnonzero(mask)
    if (train.size == 0 or test.size == 0) and not allow_empty:
        raise ValueError(
            f"{n} rows are too few to split {1 - test_fraction:.0%}/{test_fraction:.0%}"
        )
    return train, test


def split_frame(
    frame: pd.DataFrame,
    *,
    test_fraction: float = 0.25,
    seed: int | list[int] = 0,
    stratify: bool = True,
    allow_empty: bool = False,
    label: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a validated loans frame into (train, test) frames with fresh 0-based indexes,
    stratified on the ``label`` column (the schema's declared label; default the built-in
    schema's) when it is there."""
    label = label or builtin_schema().label_name
    labels = frame[label].to_numpy() if stratify and label in frame.columns else None
    train, test = split_indices(
        labels, len(frame), test_fraction=test_fraction, seed=seed, allow_empty=allow_empty
    )
    return (
        frame.take(train).reset_index(drop=True),
        frame.take(test).reset_index(drop=True),
    )
